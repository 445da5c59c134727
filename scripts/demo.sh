#!/usr/bin/env bash
# Set up (or reuse) .venv and run the demo: Suzanne rendered with Cycles, reconstructed through the add-on.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/python scripts/demo.py "$@"
