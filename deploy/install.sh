#!/usr/bin/env bash
# Install ocigate into ./.venv on Debian 12 (run as root, or with python3-venv already present).
# Usage: bash deploy/install.sh [EXTRAS]     e.g. EXTRAS=test,load
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-}
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "ocigate needs Python >= 3.11 ($python is $("$python" --version 2>&1))" >&2; exit 1
fi
if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  else
    echo "python3-venv is missing: apt-get install python3-venv" >&2; exit 1
  fi
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e ".${extras:+[$extras]}"
echo "ocigate installed in $(pwd)/.venv"
