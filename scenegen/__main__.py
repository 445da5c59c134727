"""Command line: `python -m scenegen --mesh suzanne --views 24 --res 256 --out DIR`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parse_resolution(text: str) -> int | tuple[int, int]:
    """'256' -> 256, '320x240' -> (320, 240)."""
    if "x" in text.lower():
        w, h = text.lower().split("x")
        return int(w), int(h)
    return int(text)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, render the job and print its folder on the last stdout line."""
    ap = argparse.ArgumentParser(prog="python -m scenegen", description=__doc__)
    ap.add_argument("--out", required=True, type=Path, help="job folder to write")
    ap.add_argument("--mesh", default="suzanne", help="suzanne, sphere, torus, cube or a path to an .obj")
    ap.add_argument("--views", type=int, default=24, help="number of cameras on the sphere")
    ap.add_argument("--res", type=parse_resolution, default=256, help="N or WxH pixels")
    ap.add_argument("--samples", type=int, default=8, help="Cycles samples per pixel")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--filter", dest="views_filter", default=None,
                    help="keep only cameras whose centre satisfies e.g. 'x>0' or 'z<=0.5'")
    ap.add_argument("--settings", type=json.loads, default=None, help="JSON object merged into job settings")
    ap.add_argument("--bbox-margin", type=float, default=0.1)
    ap.add_argument("--roughness", type=float, default=0.6,
                    help="principled BSDF roughness of the object (lower: glossier, sharper highlights)")
    a = ap.parse_args(argv)
    from scenegen.api import render_job

    out = render_job(a.out, mesh=a.mesh, n_views=a.views, resolution=a.res, samples=a.samples,
                     seed=a.seed, views_filter=a.views_filter, settings=a.settings,
                     bbox_margin=a.bbox_margin, roughness=a.roughness)
    sys.stdout.flush()
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
