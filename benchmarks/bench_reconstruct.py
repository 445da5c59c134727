"""Reconstruction benchmark: `python benchmarks/bench_reconstruct.py` renders scenes with scenegen and reconstructs them.

Prints wall and CPU time, peak memory, the visual hull's and the final normalised Chamfer distance and the
normal consistency; writes bench_out/<tag>.json, bench_out/<tag>.png (input view | reference | reconstruction,
same camera) and bench_out/chamfer_vs_time.png (Chamfer of the preview meshes over time).
`--set name=value` overrides a field of the schedule (`weights.laplacian=10`, `smoothing=0`) for ablations.
"""
from __future__ import annotations

import argparse
import os
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED_MESHES = REPO.parent / "shared" / "meshes"
N_SAMPLES = 50_000


def parse_res(text: str) -> int | tuple[int, int]:
    """"256" or "1600x1200"."""
    if "x" in text:
        w, h = text.lower().split("x")
        return int(w), int(h)
    return int(text)


def mesh_source(name: str) -> str:
    """scenegen's mesh argument: a shared mesh file when present, else a built-in name."""
    path = SHARED_MESHES / f"{name}.obj"
    return str(path) if path.is_file() else name


def normalised_chamfer(ref_v: np.ndarray, ref_f: np.ndarray, v: np.ndarray, f: np.ndarray) -> float:
    """Point-set Chamfer L1 (mean of both directions) over the reference bbox diagonal."""
    from backend.mesh.distance import sample_surface
    from backend.mesh.metrics import bbox_diagonal, chamfer

    pa, _ = sample_surface(ref_v, ref_f, N_SAMPLES, 0)
    pb, _ = sample_surface(v, f, N_SAMPLES, 0)
    return float(chamfer(pa, pb, bbox_diagonal(ref_v))["chamfer_l1_norm"])


def surface_metrics(ref_v: np.ndarray, ref_f: np.ndarray, v: np.ndarray, f: np.ndarray) -> tuple[float, float]:
    """Chamfer L1 with exact point-to-surface distances (no sampling floor) over the reference bbox diagonal,
    and normal consistency (mean |cos| at nearest points, both ways)."""
    from backend.mesh.metrics import compare_meshes

    m = compare_meshes(ref_v, ref_f, v, f, n_samples=N_SAMPLES)
    return float(m["chamfer_l1_norm"]), float(m["normal_consistency"])


def outer_surface_metrics(ref_v: np.ndarray, ref_f: np.ndarray, v: np.ndarray, f: np.ndarray) -> tuple[float, float]:
    """The same two figures against the reference's outer surface (its parts buried in its own solid left out:
    the teapot's spout and handle roots, Suzanne's eye backs; backend/mesh/outer_surface.py)."""
    from backend.mesh.metrics import outer_metrics

    m = outer_metrics(ref_v, ref_f, v, f, n_samples=N_SAMPLES)
    return float(m["chamfer_l1_norm"]), float(m["normal_consistency"])


def parse_overrides(items: list[str]) -> dict:
    """`name=value` pairs (values as JSON, else strings) into schedule overrides; `weights.x=v` merges."""
    out: dict = {}
    for item in items:
        key, _, text = item.partition("=")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if key.startswith("weights."):
            out.setdefault("weights", {})[key.split(".", 1)[1]] = value
        else:
            out[key] = value
    return out


def pixel_footprint_world(views: list, centre: np.ndarray) -> float:
    """Median over views of one image pixel's size at the object's centre, in world units: the unit in which
    a reconstruction error is what the views can resolve (issue 23: does the plateau follow the pixel size?)."""
    sizes = [float(np.linalg.norm(v.center - centre)) / (0.5 * (float(v.K[0, 0]) + float(v.K[1, 1])))
             for v in views]
    return float(np.median(sizes))


def shaded(v: np.ndarray, f: np.ndarray, view, rasterizer) -> np.ndarray:
    """Grey headlight rendering (H, W, 3) of a mesh in a view: what the surface looks like, bumps included."""
    from backend.post.geometry import vertex_normals
    from backend.post.texture import clip_positions, render_attribute

    _, clip = clip_positions(v, view)
    n = vertex_normals(v, f)
    values, covered = render_attribute(clip, f, n, view, rasterizer)
    rgb = np.ones((view.height, view.width, 3))
    d = -(view.R.T @ np.array([0.0, 0.0, 1.0]))
    shade = np.clip(np.abs(values @ d) / np.maximum(np.linalg.norm(values, axis=-1), 1e-12), 0, 1)
    rgb[covered] = (0.15 + 0.8 * shade[covered])[:, None]
    return rgb


def write_picture(path: Path, view, ref: tuple[np.ndarray, np.ndarray], ours: tuple[np.ndarray, np.ndarray]) -> None:
    """input view | reference | reconstruction, side by side in the same camera."""
    from PIL import Image

    from backend.raster import get_rasterizer

    rasterizer = get_rasterizer("auto", "cpu")
    img = np.asarray(view.image, dtype=np.float64)[..., :3]
    if view.mask is not None:
        img = img * view.mask[..., None] + (1 - view.mask[..., None])
    panels = [img, shaded(*ref, view, rasterizer), shaded(*ours, view, rasterizer)]
    Image.fromarray((np.clip(np.concatenate(panels, axis=1), 0, 1) * 255).astype(np.uint8)).save(path)


def peak_rss_mb() -> dict:
    """Peak resident memory of this process and of its largest child (MB)."""
    scale = 1 / 1024 if sys.platform.startswith("linux") else 1 / (1024 * 1024)
    return {"self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale,
            "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale}


def reset_gpu_peak(device: str) -> None:
    """Start a fresh peak-memory count on CUDA."""
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()


def gpu_peak_mb(device: str) -> float | None:
    """Peak GPU memory allocated by torch since the last reset (MB), None off CUDA."""
    if device != "cuda":
        return None
    import torch

    return torch.cuda.max_memory_allocated() / 2**20


def run_one(name: str, args: argparse.Namespace, out_root: Path) -> dict:
    """Render (cached), reconstruct and measure one mesh."""
    from backend.io.detect import load_any
    from backend.io.validate import validate_scene
    from backend.mesh.metrics import load_mesh
    from backend.pipelines.reconstruct import reconstruct
    from backend.runtime.protocol import Reporter
    from scenegen import render_job_subprocess

    res = parse_res(args.res)
    tag = f"{name}_{args.views}v_{args.res}" + ("" if args.roughness == 0.6 else f"_r{args.roughness:g}")
    job = (args.jobs_dir or out_root / "jobs") / tag
    if not (job / "job.json").is_file():
        t = time.monotonic()
        render_job_subprocess(job, mesh=mesh_source(name), n_views=args.views, resolution=res,
                              samples=args.samples, timeout=3600, roughness=args.roughness)
        print(f"[{name}] rendered {args.views} views at {args.res} in {time.monotonic() - t:.1f}s", flush=True)
    scene = load_any(job)
    if args.image_scale != 1.0:
        from backend.io.job import scale_view

        scene.views = [scale_view(v, args.image_scale) for v in scene.views]
        tag = f"{tag}_scale{args.image_scale:g}"
    scene.settings.update(device=args.device, rasterizer=args.rasterizer, iterations=args.iterations,
                          symmetry=args.symmetry, texture_size=args.texture_size)
    validate_scene(scene)
    out = out_root / "runs" / tag
    log_path = out_root / f"{tag}.jsonl"
    reset_gpu_peak(args.device)
    with open(log_path, "w") as log:
        reporter = Reporter(stream=log, json_mode=True, quiet_logs=True)
        t = time.monotonic()
        c0 = time.process_time()
        result = reconstruct(scene, out, reporter, preview_every=max(1, args.iterations // 20),
                             schedule_overrides=parse_overrides(args.set))
        wall = time.monotonic() - t
        cpu = time.process_time() - c0
    gpu_peak = gpu_peak_mb(args.device)
    ref_v, ref_f = load_mesh(job / "reference.obj")
    curve = []
    for p in result["previews"]:
        v, f = load_mesh(out / p["mesh"])
        curve.append({"step": p["step"], "elapsed_s": p["elapsed_s"],
                      "chamfer": normalised_chamfer(ref_v, ref_f, v, f), "faces": int(len(f))})
    v, f = load_mesh(out / result["mesh"])
    final = normalised_chamfer(ref_v, ref_f, v, f)
    final_surface, final_nc = surface_metrics(ref_v, ref_f, v, f)
    from backend.mesh.metrics import bbox_diagonal

    footprint = pixel_footprint_world(scene.views, 0.5 * (ref_v.min(axis=0) + ref_v.max(axis=0)))
    final_px = final_surface * bbox_diagonal(ref_v) / footprint
    hull_v, hull_f = load_mesh(out / result["previews"][0]["mesh"])
    hull_surface, hull_nc = surface_metrics(ref_v, ref_f, hull_v, hull_f)
    picture = out_root / f"{tag}.png"
    write_picture(picture, scene.views[0], (ref_v, ref_f), (v, f))
    record = {
        "mesh": name, "views": args.views, "res": args.res, "iterations": args.iterations,
        "image_scale": args.image_scale, "image_size": [scene.views[0].width, scene.views[0].height],
        "device": result["device"], "rasterizer": result["rasterizer"], "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "load_average": os.getloadavg()[0], "overrides": args.set,
        "timings_s": result["timings_s"], "peak_rss_mb": peak_rss_mb(), "peak_gpu_mb": gpu_peak,
        "visual_hull_chamfer": curve[0]["chamfer"], "final_chamfer": final,
        "ratio_to_visual_hull": final / curve[0]["chamfer"],
        "visual_hull_chamfer_surface": hull_surface, "final_chamfer_surface": final_surface,
        "pixel_footprint": footprint, "final_chamfer_px": final_px,
        "visual_hull_normal_consistency": hull_nc, "final_normal_consistency": final_nc, "picture": picture.name,
        "faces": result["faces"], "remeshes": result["remeshes"], "memory_plan": result.get("memory_plan"),
        "curve": curve,
    }
    (out_root / f"{tag}.json").write_text(json.dumps(record, indent=2))
    gpu_text = f"  peak GPU {gpu_peak:.0f} MB" if gpu_peak is not None else ""
    print(f"[{name}] wall {wall:.1f}s  CPU {cpu:.1f}s  load {record['load_average']:.1f}  peak RSS {record['peak_rss_mb']['self']:.0f} MB{gpu_text}  "
          f"visual hull Chamfer {100 * curve[0]['chamfer']:.3f}%  final Chamfer {100 * final:.3f}% "
          f"({100 * record['ratio_to_visual_hull']:.0f}% of the hull's; point-to-surface: hull "
          f"{100 * hull_surface:.3f}%, final {100 * final_surface:.3f}% = {final_px:.3f} px)  normal consistency hull {hull_nc:.4f} final {final_nc:.4f}  faces {len(f)}  timings {result['timings_s']}", flush=True)
    return record


def plot(records: list[dict], path: Path) -> None:
    """Chamfer (% of the bbox diagonal) of the preview meshes against wall time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in records:
        t = [c["elapsed_s"] for c in r["curve"]]
        ch = [100 * c["chamfer"] for c in r["curve"]]
        line, = ax.plot(t, ch, marker="o", ms=3, label=f"{r['mesh']} ({r['device']}, {r['rasterizer']})")
        ax.axhline(100 * r["visual_hull_chamfer"], color=line.get_color(), ls=":", lw=1)
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("Chamfer L1 / bbox diagonal (%)")
    ax.set_title("Reconstruction quality over time (dotted: visual hull)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(prog="python benchmarks/bench_reconstruct.py", description=__doc__.splitlines()[0])
    ap.add_argument("--meshes", default=None,
                    help="comma-separated (default: suzanne, plus spot when ../shared/meshes exists)")
    ap.add_argument("--views", type=int, default=24)
    ap.add_argument("--res", default="256", help="256 or WxH, e.g. 1600x1200")
    ap.add_argument("--samples", type=int, default=8, help="Cycles samples per pixel")
    ap.add_argument("--roughness", type=float, default=0.6,
                    help="the objects' material roughness (e.g. 0.15: glossy, with sharp highlights)")
    ap.add_argument("--iterations", type=int, default=None, help="default 500 on CPU, 2000 on GPU")
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])
    ap.add_argument("--rasterizer", default="auto", choices=["auto", "torch", "nvdiffrast"])
    ap.add_argument("--symmetry", default="off", choices=["detect", "enforce", "off"])
    ap.add_argument("--texture-size", type=int, default=1024)
    ap.add_argument("--gpu", action="store_true", help="GPU preset: cuda, 49 views at 1600x1200, 2000 iterations")
    ap.add_argument("--out", type=Path, default=REPO / "bench_out")
    ap.add_argument("--jobs-dir", type=Path, default=None,
                    help="where rendered jobs are cached (default OUT/jobs); a job found there is not rendered again")
    ap.add_argument("--json", type=Path, default=None, help="also write all records to this file")
    ap.add_argument("--image-scale", type=float, default=1.0,
                    help="downscale the rendered images (and K) by this factor, e.g. 0.5 for 800x600 from 1600x1200")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a schedule field, e.g. smoothing=0 or weights.laplacian=10 (repeatable)")
    args = ap.parse_args(argv)
    if args.gpu:
        args.device, args.views, args.res = "cuda", 49, "1600x1200"
    if args.iterations is None:
        args.iterations = 2000 if args.device in ("cuda", "mps") else 500
    names = args.meshes.split(",") if args.meshes else (["suzanne", "spot"] if SHARED_MESHES.is_dir() else ["suzanne"])
    args.out.mkdir(parents=True, exist_ok=True)
    records = [run_one(n.strip(), args, args.out) for n in names if n.strip()]
    plot(records, args.out / "chamfer_vs_time.png")
    if args.json is not None:
        args.json.write_text(json.dumps(records, indent=2))
    print(f"wrote {args.out}/*.json and {args.out / 'chamfer_vs_time.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
