#!/usr/bin/env bash
# Installs hvbackup, restic and borg, then runs the benchmark (bench/run.py; --quick for a small one).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
for pkg in restic borgbackup time; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null; }
done
exec .venv/bin/python bench/run.py "$@"
