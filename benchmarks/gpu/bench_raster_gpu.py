"""CUDA micro-benchmark of both rasterizers: 49 views at 800x600 and 1600x1200, forward + backward.

    python benchmarks/gpu/bench_raster_gpu.py --json $OUT/raster_gpu.json

Each configuration reports median milliseconds per batch (per part and total) and the peak CUDA
memory (torch.cuda.max_memory_allocated); one that fails (out of memory, nvdiffrast missing) is
recorded with its error instead of stopping the others.
"""
from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import torch  # noqa: E402

from bench_raster import run  # noqa: E402


def main(argv: list[str] | None = None) -> list[dict]:
    """Run every (rasterizer, resolution) configuration and write one JSON list."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=20000)
    ap.add_argument("--views", type=int, default=49)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rasterizers", nargs="+", default=["nvdiffrast", "torch"])
    ap.add_argument("--res", nargs="+", default=["800x600", "1600x1200"])
    ap.add_argument("--json", default="bench_out/raster_gpu.json")
    a = ap.parse_args(argv)
    results = []
    for res in a.res:
        width, height = (int(x) for x in res.split("x"))
        for name in a.rasterizers:
            torch.cuda.empty_cache()
            try:
                out = run(name, "cuda", a.faces, width, height, a.views, a.repeats)
                out["gpu"] = torch.cuda.get_device_name(0)
                out["ms_per_view"] = round(out["median_ms"]["total"] / a.views, 3)
            except Exception as exc:  # recorded, so one failing configuration leaves the others' figures
                out = {"rasterizer": name, "width": width, "height": height, "views": a.views,
                       "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}
            print(json.dumps(out), flush=True)
            results.append(out)
            path = Path(a.json)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
