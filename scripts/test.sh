#!/usr/bin/env bash
# Installs what the tests need, then runs the whole suite (root tests included; CI runs as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
# The house rules first (configured in pyproject.toml): lint, the format check, the types.
.venv/bin/ruff check src tests
.venv/bin/ruff format --check src tests
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
