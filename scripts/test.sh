#!/usr/bin/env bash
# Installs what the tests need, then runs the whole suite (root tests included; CI runs as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
exec .venv/bin/python -m pytest "$@"
