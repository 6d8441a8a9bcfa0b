# Sourced by scripts/test.sh. Not a server: headless Chromium (Debian `chromium`), which
# tests/report_render.rs uses to render a trained model's report.html and check the screenshot.
# Installed only if missing.
if [ -z "${BCIOPS_CHROMIUM:-}" ] && ! command -v chromium >/dev/null; then
  echo "installing chromium with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
export BCIOPS_CHROMIUM="${BCIOPS_CHROMIUM:-$(command -v chromium)}"
