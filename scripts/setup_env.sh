#!/usr/bin/env bash
# Make (or reuse) .venv at the repository root with Python 3.11, bpy 5.0, CPU torch and the backend's dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then PY=$c; break; fi
  done
fi
[ -n "$PY" ] || { echo "error: Python 3.11 is required (bpy 4.2-5.0 wheels are built for it); set PYTHON=/path/to/python3.11" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.deps-$(cat requirements-dev.txt backend/requirements.txt | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # CPU build of torch first, from the PyTorch CPU index when the default index would pull CUDA wheels.
  if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
    .venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}" \
      || .venv/bin/python -m pip install -q --index-url https://download.pytorch.org/whl/cpu torch
  fi
  .venv/bin/python -m pip install -q -r requirements-dev.txt
  touch "$stamp"
fi
