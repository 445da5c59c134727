"""Texture quality: bake from some Cycles views onto the reference mesh, PSNR on held-out views.

python benchmarks/bench_texture.py [--mesh suzanne] [--views 24] [--res 256] [--size 1024] [--uv xatlas|fast]
                                   [--out bench_out/texture]
Writes result.json, texture.png and side_by_side.png (held-out photo | our render | |diff| x4) under --out.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.io.job import load_job  # noqa: E402
from backend.post.symmetry import detect_symmetry  # noqa: E402
from backend.post.texture import bake_texture, render_textured  # noqa: E402
from backend.post.fast_uv import fast_uv  # noqa: E402
from backend.post.uv import compute_uv  # noqa: E402
from backend.raster import get_rasterizer  # noqa: E402
from scenegen import render_job_subprocess  # noqa: E402


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two [0, 1] arrays."""
    return float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12)))


def main() -> None:
    """Render (or reuse) the job, bake, evaluate, write figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mesh", default="suzanne")
    ap.add_argument("--views", type=int, default=24)
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--uv", choices=["xatlas", "fast"], default="xatlas", help="UV method (fast: the fallback)")
    ap.add_argument("--hold-every", type=int, default=4, help="every N-th view is held out")
    ap.add_argument("--out", type=Path, default=ROOT / "bench_out" / "texture")
    args = ap.parse_args()
    job_dir = args.out / f"job_{args.mesh}_{args.views}_{args.res}"
    t0 = time.perf_counter()
    if not (job_dir / "job.json").is_file():
        render_job_subprocess(job_dir, mesh=args.mesh, n_views=args.views, resolution=args.res)
    t_render = time.perf_counter() - t0
    scene = load_job(job_dir)
    ref = trimesh.load(job_dir / "reference.obj", force="mesh", process=False)
    vertices, faces = np.asarray(ref.vertices, dtype=np.float64), np.asarray(ref.faces)
    held = [v for i, v in enumerate(scene.views) if i % args.hold_every == 0]
    used = [v for i, v in enumerate(scene.views) if i % args.hold_every != 0]
    rasterizer = get_rasterizer("torch", "cpu")

    t0 = time.perf_counter()
    plane, symmetric = detect_symmetry(vertices, faces)
    t_sym = time.perf_counter() - t0
    t0 = time.perf_counter()
    uv_fn = fast_uv if args.uv == "fast" else compute_uv
    mesh = uv_fn(vertices, faces, plane if symmetric else None, resolution=args.size)
    t_uv = time.perf_counter() - t0
    t0 = time.perf_counter()
    texture = bake_texture(mesh, used, args.size, rasterizer)
    t_bake = time.perf_counter() - t0

    scores, panels = [], []
    for view in held:
        image, covered = render_textured(mesh, texture, view, rasterizer)
        inside = covered & view.mask
        scores.append(psnr(image[inside], view.image[inside, :3]))
        diff = np.clip(np.abs(image - view.image[..., :3]) * 4, 0, 1) * inside[..., None]
        panels.append(np.concatenate([view.image[..., :3], image, diff], axis=1))
    args.out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(texture).save(args.out / "texture.png")
    Image.fromarray((np.concatenate(panels, axis=0) * 255 + 0.5).astype(np.uint8)).save(args.out / "side_by_side.png")
    result = {"mesh": args.mesh, "views_used": len(used), "views_held_out": len(held), "resolution": args.res,
              "texture_size": args.size, "psnr_db_per_view": [round(s, 2) for s in scores],
              "psnr_db_mean": round(float(np.mean(scores)), 2), "symmetry_plane": plane.to_dict(),
              "symmetric": bool(symmetric), "uv_vertices": len(mesh.vertices), "faces": len(mesh.faces),
              "seconds": {"cycles_render": round(t_render, 1), "symmetry": round(t_sym, 2),
                          "uv": round(t_uv, 2), "bake": round(t_bake, 2)}}
    (args.out / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
