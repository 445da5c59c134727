#!/usr/bin/env bash
# Render the GPU benchmark's jobs HERE (Cycles via bpy, CPU), into .gpujob/ for `run` to carry:
# the GPU machine has no bpy. DTU-sized: 49 views at 1600x1200 (the 800x600 runs downscale it there).
# Usage: bash benchmarks/gpu/make_jobs.sh [mesh]   (default: suzanne; the shared mesh file when present)
set -euo pipefail
cd "$(dirname "$0")/../.."
mesh=${1:-suzanne}
src=$mesh
[ -f "../shared/meshes/$mesh.obj" ] && src="../shared/meshes/$mesh.obj"
for res in 1600x1200; do
  dst=".gpujob/${mesh}_49v_${res}"
  [ -f "$dst/job.json" ] && { echo "exists: $dst"; continue; }
  .venv/bin/python -m scenegen --mesh "$src" --views 49 --res "$res" --samples 8 --out "$dst"
done
du -sh .gpujob/*
