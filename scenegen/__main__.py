"""Command line: `python -m scenegen --mesh suzanne --views 24 --res 256 --out DIR` renders a job folder;
`python -m scenegen --capture --mesh spot --views 36 --rings 3 --res 640x480 --out DIR` a phone-like photo capture."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

JOB_DEFAULTS = {"views": 24, "res": 256, "samples": 8, "mesh": "suzanne"}
CAPTURE_DEFAULTS = {"views": 36, "res": (640, 480), "samples": 16, "mesh": "spot"}


def parse_resolution(text: str) -> int | tuple[int, int]:
    """'256' -> 256, '320x240' -> (320, 240)."""
    if "x" in text.lower():
        w, h = text.lower().split("x")
        return int(w), int(h)
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The options of both modes; --views, --res, --samples and --mesh default per mode."""
    ap = argparse.ArgumentParser(prog="python -m scenegen", description=__doc__)
    ap.add_argument("--out", required=True, type=Path, help="job folder (or capture folder) to write")
    ap.add_argument("--capture", action="store_true",
                    help="phone-like capture: OUT/photos/*.jpg and OUT/truth/ (cameras, masks, mesh)")
    ap.add_argument("--mesh", default=None, help="suzanne, sphere, torus, cube, a shared mesh name or an .obj path")
    ap.add_argument("--views", type=int, default=None, help="number of cameras (photos with --capture)")
    ap.add_argument("--res", type=parse_resolution, default=None, help="N or WxH pixels")
    ap.add_argument("--samples", type=int, default=None, help="Cycles samples per pixel")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--filter", dest="views_filter", default=None,
                    help="keep only cameras whose centre satisfies e.g. 'x>0' or 'z<=0.5'")
    ap.add_argument("--settings", type=json.loads, default=None, help="JSON object merged into job settings")
    ap.add_argument("--bbox-margin", type=float, default=0.1)
    ap.add_argument("--roughness", type=float, default=0.6,
                    help="principled BSDF roughness of the object (lower: glossier, sharper highlights)")
    ap.add_argument("--rings", type=int, default=3, help="--capture: camera heights walked around the object")
    ap.add_argument("--jpeg-quality", type=int, default=90, help="--capture: JPEG quality of the photos")
    ap.add_argument("--no-exif", action="store_true", help="--capture: write the photos without EXIF")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, render the job or capture and print its folder on the last stdout line."""
    ap = build_parser()
    a = ap.parse_args(argv)
    defaults = CAPTURE_DEFAULTS if a.capture else JOB_DEFAULTS
    for key, value in defaults.items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    if a.capture:
        if a.views_filter is not None or a.settings is not None:
            ap.error("--filter and --settings apply to job folders, not to --capture")
        res = (a.res, a.res) if isinstance(a.res, int) else a.res
        from scenegen.api import render_capture

        out = render_capture(a.out, mesh=a.mesh, n_photos=a.views, rings=a.rings, resolution=res,
                             samples=a.samples, seed=a.seed, jpeg_quality=a.jpeg_quality,
                             exif_focal=not a.no_exif)
    else:
        from scenegen.api import render_job

        out = render_job(a.out, mesh=a.mesh, n_views=a.views, resolution=a.res, samples=a.samples,
                         seed=a.seed, views_filter=a.views_filter, settings=a.settings,
                         bbox_margin=a.bbox_margin, roughness=a.roughness)
    sys.stdout.flush()
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
