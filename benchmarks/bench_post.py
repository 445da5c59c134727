"""Post-processing at scale: decimate, symmetry, UV and texture of a big mesh seen by many big views.

python benchmarks/bench_post.py [--faces 100000] [--views 49] [--width 1600] [--height 1200] [--size 2048]
                                [--max-faces N] [--device cpu]

The mesh is Spot (../shared/meshes) remeshed isotropically to about --faces triangles, as the
optimisation leaves it; the views look at it from a Fibonacci sphere; each photo is the mesh
rendered with a colour pattern through our rasterizer (its coverage is the mask). Runs the
pipeline's own `post_process` and prints one JSON line: seconds per stage, UV charts and packing
efficiency, the decimation's Chamfer cost, and the load average.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.io.views import DEFAULT_SETTINGS, Scene, View  # noqa: E402
from backend.pipelines.finish import post_process  # noqa: E402
from backend.post.texture import clip_positions, render_attribute  # noqa: E402
from backend.raster import get_rasterizer  # noqa: E402
from backend.runtime.protocol import Reporter  # noqa: E402

MESH = ROOT.parent / "shared" / "meshes" / "spot.obj"


def big_mesh(faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Spot, centred and scaled to unit radius, remeshed to about `faces` triangles (cached under bench_out/)."""
    cache = ROOT / "bench_out" / "post" / f"spot_{faces}.npz"
    if cache.is_file():
        data = np.load(cache)
        return data["v"], data["f"]
    import gpytoolbox
    import trimesh

    mesh = trimesh.load(MESH, force="mesh")
    v = np.asarray(mesh.vertices, dtype=np.float64)
    v = (v - v.mean(0)) / np.linalg.norm(v - v.mean(0), axis=1).max()
    f = np.asarray(mesh.faces, dtype=np.int32)
    area = float(trimesh.Trimesh(v, f).area)
    v, f = gpytoolbox.remesh_botsch(v, f, i=5, h=float(np.sqrt(area / (0.433 * faces))), project=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, v=v, f=f)
    return v, np.asarray(f, dtype=np.int64)


def look_at(eye: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world-to-camera R, t of a camera at eye looking at the origin (z up)."""
    fwd = -eye / np.linalg.norm(eye)
    up = np.array([0.0, 0.0, 1.0]) if abs(fwd[2]) < 0.95 else np.array([0.0, 1.0, 0.0])
    right = np.cross(fwd, up)
    right /= np.linalg.norm(right)
    R = np.stack([right, np.cross(fwd, right), fwd])
    return R, -R @ eye


def views_of(vertices: np.ndarray, faces: np.ndarray, count: int, width: int, height: int,
             rasterizer: object) -> list[View]:
    """`count` cameras on a sphere of radius 3; photos = the mesh rendered with a position-based colour pattern."""
    i = np.arange(count) + 0.5
    z = 1 - 2 * i / count
    phi = np.pi * (1 + 5 ** 0.5) * i
    eyes = 3.0 * np.stack([np.sqrt(1 - z * z) * np.cos(phi), np.sqrt(1 - z * z) * np.sin(phi), z], 1)
    colour = 0.5 + 0.5 * np.sin(6.0 * vertices + np.array([0.0, 1.0, 2.0]))
    f = 1.1 * width
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    views = []
    for k, eye in enumerate(eyes):
        R, t = look_at(eye)
        view = View(f"cam_{k:03d}", np.zeros((height, width, 3), np.float32), np.ones((height, width), bool), K, R, t)
        _, clip = clip_positions(vertices, view)
        image, covered = render_attribute(clip, faces, colour, view, rasterizer)
        views.append(View(view.name, image.astype(np.float32), covered, K, R, t))
    return views


def main() -> None:
    """Build the case, run post_process, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=100_000)
    ap.add_argument("--views", type=int, default=49)
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--height", type=int, default=1200)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--max-faces", type=int, default=None)
    ap.add_argument("--symmetry", default="detect", choices=["detect", "enforce", "off"])
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    rasterizer = get_rasterizer("auto", args.device)
    if rasterizer.device.type == "cpu":
        import torch

        torch.set_num_threads(1)
    v, f = big_mesh(args.faces)
    t0 = time.perf_counter()
    scene = Scene(views_of(v, f, args.views, args.width, args.height, rasterizer))
    t_setup = time.perf_counter() - t0
    settings = {**DEFAULT_SETTINGS, "texture_size": args.size, "symmetry": args.symmetry,
                "max_faces": args.max_faces}
    timings: dict = {}
    reporter = Reporter(stream=io.StringIO(), json_mode=True, quiet_logs=True)
    t0 = time.perf_counter()
    post = post_process(v, f, scene, settings, rasterizer, reporter, timings)
    total = time.perf_counter() - t0
    progress = [x for x in reporter.lines if x["type"] == "progress"]
    print(json.dumps({
        "faces_in": len(f), "faces_out": len(post.faces), "views": args.views,
        "image": f"{args.width}x{args.height}", "texture": args.size, "device": str(rasterizer.device),
        "rasterizer": rasterizer.name, "seconds": timings, "post_total_s": round(total, 2),
        "setup_s": round(t_setup, 1), "info": post.info, "progress_lines": len(progress),
        "load_average": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
