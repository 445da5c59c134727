"""Copy a job folder (DESIGN layout, RGBA images) into the NDS layout that both pipelines read.

    python benchmarks/gpu/make_nds_job.py JOB DST

DST gets views/<name>.png (the image, mask in its alpha), views/<name>_k.txt, _r.txt, _t.txt (OpenCV
K, R, t), bbox.txt (min row, max row) and, when the job has one, reference.obj (the ground truth).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image


def convert(job: Path, dst: Path) -> Path:
    """Write the NDS copy of job into dst (which must not exist); returns dst."""
    spec = json.loads((job / "job.json").read_text())
    if dst.exists():
        raise SystemExit(f"{dst} exists: remove it first")
    views = dst / "views"
    views.mkdir(parents=True)
    for v in spec["views"]:
        src = job / v["image"]
        with Image.open(src) as im:
            if v.get("mask") is not None or im.mode != "RGBA":
                raise SystemExit(f"view {v['name']}: needs an RGBA image with the mask in its alpha ({src})")
        shutil.copyfile(src, views / f"{v['name']}.png")
        for key, name in (("K", "k"), ("R", "r"), ("t", "t")):
            np.savetxt(views / f"{v['name']}_{name}.txt", np.asarray(v[key], dtype=np.float64))
    box = spec.get("bbox")
    if box is None:
        raise SystemExit("the job has no bbox: the reference needs bbox.txt")
    np.savetxt(dst / "bbox.txt", np.array([box["min"], box["max"]], dtype=np.float64))
    if (job / "reference.obj").is_file():
        shutil.copyfile(job / "reference.obj", dst / "reference.obj")
    return dst


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("job", type=Path)
    ap.add_argument("dst", type=Path)
    a = ap.parse_args(argv)
    print(convert(a.job, a.dst))


if __name__ == "__main__":
    main()
