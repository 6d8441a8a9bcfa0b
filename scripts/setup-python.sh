#!/usr/bin/env bash
# Creates (or reuses) a Python virtual environment with the packages listed in a requirements
# file. Usage: scripts/setup-python.sh VENV_DIR REQUIREMENTS_FILE
# A venv is reused only when it was built from an identical requirements file.
set -euo pipefail
venv=$1
requirements=$2
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python=${PYTHON:-python3}
# A fresh Debian machine may lack Python or its venv module: install them when we can.
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing python3 and python3-venv with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  fi
fi
"$python" -c 'import venv, ensurepip' >/dev/null 2>&1 || {
  echo "error: \`$python\` with the venv module is needed; install Python 3.10+ (Debian: python3-venv)" >&2
  exit 1
}
echo "setting up $venv from $requirements (one time)" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
echo "$want" > "$stamp"
