#!/usr/bin/env bash
# Everything GPU-side in one call on a lent GPU machine (see README.md beside this file):
#   setup    install the carried wheels (.whl/) and build nvdiffrast's CUDA plugin
#   parity   tests/test_gpu_parity.py (ours vs nvdiffrast) + tests/test_raster.py
#   raster   benchmarks/gpu/bench_raster_gpu.py (both rasterizers, 49 views, 800x600 and 1600x1200)
#   pipeline benchmarks/bench_reconstruct.py on the carried .gpujob/ jobs, nvdiffrast and ours
#            (PIPELINE_SET="smoothing=19 lr_vertices=0.01" passes schedule overrides, e.g. to try Large Steps)
#   compare  benchmarks/gpu/compare_gpu.py: the reference (.ref/nds), ours with nvdiffrast, ours with our
#            rasterizer, on the carried NDS job (.gpujob/nds/); one call: `run_all.sh setup compare`
# Usage: benchmarks/gpu/run_all.sh [step ...]   (default: setup parity raster pipeline). Results go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/bench_out/gpu}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-/tmp/torch_extensions}"
PY="${PYTHON:-python3}"
LOG="$OUT/run_all.log"
STEPS=("$@")
[ ${#STEPS[@]} -eq 0 ] && STEPS=(setup parity raster pipeline)
SHIMMED=("$PY" benchmarks/gpu/with_shims.py)   # stand-ins (scs, ...) after site-packages: installed ones win
status=0

say() { echo "[run_all $(date +%H:%M:%S)] $*" | tee -a "$LOG"; }

if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    >>"$LOG" 2>&1 || say "wheel install failed (see above)"
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  say "no .whl/ folder: nvdiffrast must already be installed"
fi

for step in "${STEPS[@]}"; do
  case "$step" in
    setup)
      say "setup: torch, GPU, nvdiffrast build (through our loader fix and self-test)"
      timeout 300 "$PY" - >>"$LOG" 2>&1 <<'PYEOF' || { say "setup failed"; status=1; }
import time, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
t = time.time()
from backend.raster.nvdiffrast_raster import NvdiffrastRasterizer
NvdiffrastRasterizer("cuda")
print(f"nvdiffrast ready in {time.time() - t:.1f} s")
PYEOF
      tail -n 2 "$LOG"
      "${SHIMMED[@]}" -m backend check --strict > "$OUT/check.json" 2>>"$LOG" || status=1
      ;;
    parity)
      say "parity tests"
      rm -f "$OUT/parity.json"
      RASTER_PARITY_JSON="$OUT/parity.json" timeout 420 "$PY" -m pytest -q -p no:cacheprovider \
        tests/test_gpu_parity.py tests/test_raster.py >"$OUT/parity_pytest.log" 2>&1 || status=1
      tail -n 15 "$OUT/parity_pytest.log" | tee -a "$LOG"
      ;;
    raster)
      say "raster benchmark"
      timeout 420 "$PY" benchmarks/gpu/bench_raster_gpu.py --json "$OUT/raster_gpu.json" 2>&1 | tee -a "$LOG" \
        || status=1
      ;;
    pipeline)
      # Jobs come pre-rendered in .gpujob/ (benchmarks/gpu/make_jobs.sh; no bpy here). Runs go to /tmp,
      # only the summary JSON and plots come back (the device returns at most 8 files).
      if ! ls -d .gpujob/*_49v_* >/dev/null 2>&1; then
        say "no .gpujob/ jobs carried: pipeline benchmark skipped (run benchmarks/gpu/make_jobs.sh and carry .gpujob)"
        status=1
      else
        for job in .gpujob/*_49v_*; do
          tag=$(basename "$job"); mesh=${tag%%_49v_*}; res=${tag##*_49v_}
          for scale in ${PIPELINE_SCALES:-1 0.5}; do
            for rast in ${PIPELINE_RASTERIZERS:-nvdiffrast torch}; do
              say "pipeline: $mesh $res x$scale $rast"
              sets=(); for kv in ${PIPELINE_SET:-}; do sets+=(--set "$kv"); done
              timeout "${PIPELINE_TIMEOUT:-240}" "${SHIMMED[@]}" benchmarks/bench_reconstruct.py --device cuda --rasterizer "$rast" "${sets[@]}" \
                --meshes "$mesh" --views 49 --res "$res" --image-scale "$scale" \
                --iterations "${PIPELINE_ITERATIONS:-2000}" --texture-size 2048 --jobs-dir .gpujob \
                --out "/tmp/bench_gpu/${rast}_${scale}" --json "$OUT/pipeline_${rast}_x${scale}.json" \
                >>"$OUT/pipeline.log" 2>&1 || { say "failed"; status=1; }
              tail -n 2 "$OUT/pipeline.log" | tee -a "$LOG"
            done
          done
        done
      fi
      ;;
    compare)
      say "compare: reference, ours + nvdiffrast, ours + torch (COMPARE_ITERATIONS, COMPARE_TIMEOUT per run)"
      "$PY" benchmarks/gpu/compare_gpu.py --out "$OUT" 2>&1 | tee -a "$LOG" || status=1
      ;;
    *)
      say "unknown step $step (use setup, parity, raster, pipeline, compare)"; status=2 ;;
  esac
done
say "done, status $status"
exit $status
