# Prometheus (Debian `prometheus`, which ships `promtool`) for the serve tests. Sourced by
# scripts/test.sh. Nothing is started here: tests/serve.rs starts Prometheus itself with a
# generated config that scrapes the test's own server on 127.0.0.1, and stops it.
# Exports BCIOPS_PROMETHEUS_BIN and BCIOPS_PROMTOOL.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing prometheus with apt-get" >&2
    if [ -z "${BCIOPS_APT_UPDATED:-}" ]; then
      apt-get update -qq && export BCIOPS_APT_UPDATED=1
    fi
    # The package's postinst would start a daemon on :9090 where systemd runs; not here.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
fi
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  export BCIOPS_PROMETHEUS_BIN="$(command -v prometheus)"
  export BCIOPS_PROMTOOL="$(command -v promtool)"
else
  echo "warning: prometheus/promtool not available; the Prometheus serve test will skip (fail under CI)" >&2
fi
