#!/usr/bin/env bash
# Installs hvbackup and runs the demo on the built-in default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/hvbackup demo "$@"
