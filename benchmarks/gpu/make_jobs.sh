#!/usr/bin/env bash
# Render the GPU benchmark's job HERE (Cycles via bpy, CPU): the GPU machine has no bpy.
# DTU-sized: 49 views at 1600x1200 (the 800x600 runs downscale it there).
#   .gpujob/<mesh>_49v_1600x1200   our job layout (the `pipeline` step)
#   .gpujob/nds/<mesh>_1600x1200   the same views in the NDS layout, with reference.obj (the `compare`
#                                  step; both the reference and ours read it). Carry only one of the two.
# Usage: bash benchmarks/gpu/make_jobs.sh [mesh]   (default: suzanne; the shared mesh file when present)
set -euo pipefail
cd "$(dirname "$0")/../.."
mesh=${1:-suzanne}
src=$mesh
[ -f "../shared/meshes/$mesh.obj" ] && src="../shared/meshes/$mesh.obj"
for res in 1600x1200; do
  dst=".gpujob/${mesh}_49v_${res}"
  if [ -f "$dst/job.json" ]; then echo "exists: $dst"; else
    .venv/bin/python -m scenegen --mesh "$src" --views 49 --res "$res" --samples 8 --out "$dst"
  fi
  nds=".gpujob/nds/${mesh}_${res}"
  [ -d "$nds" ] && echo "exists: $nds" || .venv/bin/python benchmarks/gpu/make_nds_job.py "$dst" "$nds"
done
du -sh .gpujob/*_49v_* .gpujob/nds/*
