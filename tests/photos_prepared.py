"""A prepared photo folder (what `photos PHOTOS_DIR --out OUT --prepare-only` leaves) built from a Cycles render,
and a stand-in for the backend's `photos` command that streams progress and writes it. For the Import Photos tests.

No bpy here: the render runs in a child process (scenegen), so this module serves the bpy tests and the
real-window tests alike.
"""
from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from scenegen import render_job_subprocess


def write_ply(path: Path, points: np.ndarray, colors: np.ndarray, binary: bool) -> None:
    """A point cloud as PLY: x y z float, red green blue uchar."""
    header = (f"ply\nformat {'binary_little_endian' if binary else 'ascii'} 1.0\nelement vertex {len(points)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n").encode()
    if binary:
        dt = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
        arr = np.empty(len(points), dtype=dt)
        for i, k in enumerate("xyz"):
            arr[k] = points[:, i]
        for i, k in enumerate("rgb"):
            arr[k] = colors[:, i]
        body = arr.tobytes()
    else:
        body = "".join(f"{x:.7g} {y:.7g} {z:.7g} {r} {g} {b}\n"
                       for (x, y, z), (r, g, b) in zip(points, colors)).encode()
    path.write_bytes(header + body)


def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of scenegen's reference.obj."""
    v, f = [], []
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            v.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("f "):
            f.append([int(x.split("/")[0]) - 1 for x in line.split()[1:4]])
    return np.array(v), np.array(f)


def sample_surface(v: np.ndarray, f: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n points on the mesh surface, area-weighted."""
    rng = np.random.default_rng(seed)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    area = np.linalg.norm(np.cross(b - a, c - a), axis=1)
    tri = rng.choice(len(f), size=n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    return a[tri] * (1 - s)[:, None] + b[tri] * (s * (1 - r2))[:, None] + c[tri] * (s * r2)[:, None]


def build_prepared(base: Path, stems: Sequence[str], size: tuple[int, int]) -> Path:
    """OUT under `base`: job/ (jpg photos, 0/255 masks from the render's alpha, job.json with the true cameras,
    points.ply sampled from the mesh, sfm.json); `base/render` keeps the render with its reference.obj."""
    rendered = render_job_subprocess(Path(base) / "render", mesh="suzanne", n_views=len(stems), resolution=size,
                                     samples=2)
    out = Path(base) / "out"
    job_dir = out / "job"
    (job_dir / "images").mkdir(parents=True)
    (job_dir / "masks").mkdir()
    src = json.loads((rendered / "job.json").read_text())
    views = []
    for stem, view in zip(stems, src["views"]):
        rgba = cv2.imread(str(rendered / view["image"]), cv2.IMREAD_UNCHANGED)
        alpha = rgba[..., 3:4].astype(np.float64) / 255.0
        rgb = rgba[..., :3] * alpha + 90.0 * (1 - alpha)
        cv2.imwrite(str(job_dir / "images" / f"{stem}.jpg"), np.round(rgb).astype(np.uint8),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(job_dir / "masks" / f"{stem}.png"), np.where(rgba[..., 3] > 127, 255, 0).astype(np.uint8))
        views.append({**view, "name": stem, "image": f"images/{stem}.jpg", "mask": f"masks/{stem}.png"})
    job = {"version": 1, "views": views, "bbox": src["bbox"], "settings": src["settings"]}
    (job_dir / "job.json").write_text(json.dumps(job, indent=1))
    v, f = read_obj(rendered / "reference.obj")
    pts = sample_surface(v, f, 1500)
    colors = np.clip(np.round((pts - pts.min(0)) / np.ptp(pts, axis=0) * 255), 0, 255).astype(np.uint8)
    write_ply(job_dir / "points.ply", pts, colors, binary=True)
    (job_dir / "sfm.json").write_text(json.dumps({
        "registered": list(stems), "unregistered": ["DSC_0107"], "left_out": {"DSC_0107": "too few matches"},
        "reprojection_px": 0.42, "points": len(pts), "seconds": 3.5, "warnings": [],
        "floor": {"normal": [0.0, 0.0, 1.0], "offset": float(v[:, 2].min())}}))
    return out


STANDIN = r'''
import json, os, shutil, sys, time
args = sys.argv[1:]
if args[:3] != ["-m", "backend", "photos"] or args[4:] != ["--out", args[5], "--prepare-only", "--json"]:
    sys.stderr.write("unexpected command line: %r\n" % args)
    sys.exit(1)
photos, out = args[3], args[5]
mode = os.environ.get("STANDIN_MODE", "ok")
def emit(o): print(json.dumps(o), flush=True)
emit({"type": "stage", "name": "load"})
if mode == "error":
    emit({"type": "error", "message": "only 1 of 6 photos could be placed", "hint": "Take overlapping photos."})
    sys.exit(2)
emit({"type": "stage", "name": "sfm"})
steps = 200 if mode == "slow" else 3
for i in range(steps):
    emit({"type": "progress", "stage": "sfm", "step": i + 1, "total": steps, "elapsed_s": 0.1 * i})
    time.sleep(0.05 if mode == "slow" else 0)
emit({"type": "stage", "name": "masks"})
tmp = os.path.join(out, "job.tmp")
shutil.copytree(os.path.join(os.environ["STANDIN_SOURCE"], "job"), tmp)
os.replace(tmp, os.path.join(out, "job"))
emit({"type": "done", "result": "job/job.json"})
'''


def write_standin(folder: Path) -> Path:
    """An executable standing in for the backend Python (env STANDIN_SOURCE: the OUT to copy; STANDIN_MODE: ok,
    error or slow)."""
    script = Path(folder) / "standin.py"
    script.write_text(STANDIN)
    exe = Path(folder) / "standinpython"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe
