"""Topology stage benchmark (issue 24): `python benchmarks/bench_topology.py --object torus|mug|spot`.

torus, mug (genus 1): a clean run from the visual hull (topology off, today's pipeline) against a run started from
a genus-0 mesh around the object (`initial_mesh`: the reference's convex hull grown 3 %) with topology on; prints
the genus of each result and the Chamfer ratio. spot (genus 0): topology off against auto (which should decide
not to run) — Chamfer and wall time. Scenes are rendered by scenegen (cached under OUT/jobs); records go to
OUT/topology_<object>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def mug_mesh(path: Path) -> Path:
    """A mug of genus 1 (a cup with a cavity open at the top and a handle), meshed from its signed distance."""
    from backend.topology.extract import extract_surface
    from backend.topology.sdf_grid import GridSpec

    spec = GridSpec(res=160)
    p = spec.points()
    radial = np.linalg.norm(p[:, :2], axis=1)
    body = np.maximum(radial - 0.5, np.abs(p[:, 2]) - 0.5)
    cavity = np.maximum(radial - 0.42, -0.38 - p[:, 2])
    cup = np.maximum(body, -cavity)
    q = p - np.array([0.62, 0.0, 0.0])
    ring = np.sqrt(q[:, 0] ** 2 + q[:, 2] ** 2) - 0.28
    handle = np.maximum(np.sqrt(ring ** 2 + q[:, 1] ** 2) - 0.07, 0.45 - p[:, 0])
    v, f = extract_surface(np.minimum(cup, handle).reshape((spec.res,) * 3), spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fh.writelines(f"v {a:.6f} {b:.6f} {c:.6f}\n" for a, b, c in v)
        fh.writelines(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in f)
    return path


def rendered_job(name: str, args: argparse.Namespace) -> Path:
    """The object's job folder (rendered once, then cached)."""
    from bench_reconstruct import mesh_source
    from scenegen import render_job_subprocess

    job = args.out / "jobs" / f"{name}_{args.views}v_{args.res}"
    if not (job / "job.json").is_file():
        source = str(mug_mesh(args.out / "jobs" / "mug.obj")) if name == "mug" else mesh_source(name)
        render_job_subprocess(job, mesh=source, n_views=args.views, resolution=args.res, samples=args.samples,
                              timeout=3600)
    return job


def enclosing_start(reference: Path, out: Path) -> Path:
    """The reference's convex hull grown 3 % about its centre: a genus-0 start around the object."""
    import trimesh

    from backend.mesh.metrics import load_mesh

    hull = trimesh.Trimesh(*load_mesh(reference)).convex_hull
    centre = hull.vertices.mean(axis=0)
    hull.vertices = centre + 1.03 * (hull.vertices - centre)
    hull.export(out)
    return out


def run(job: Path, out: Path, args: argparse.Namespace, stage: dict | None = None, **settings: object) -> dict:
    """One reconstruction; its result.json plus wall time, genus and Chamfer to the reference."""
    from bench_reconstruct import surface_metrics

    from backend.io.detect import load_any
    from backend.io.validate import validate_scene
    from backend.mesh.metrics import load_mesh
    from backend.pipelines.reconstruct import reconstruct
    from backend.runtime.protocol import Reporter
    from backend.mesh.metrics import genus

    scene = load_any(job)
    scene.settings.update(device="cpu", iterations=args.iterations, symmetry="off", texture_size=256, **settings)
    validate_scene(scene)
    with open(out.with_suffix(".jsonl"), "w") as log:
        t = time.monotonic()
        result = reconstruct(scene, out, Reporter(stream=log, json_mode=True, quiet_logs=True),
                             topology_overrides=stage)
        wall = time.monotonic() - t
    v, f = load_mesh(out / result["mesh"])
    chamfer, nc = surface_metrics(*load_mesh(job / "reference.obj"), v, f)
    return {"settings": {k: str(x) for k, x in settings.items()}, "wall_s": round(wall, 2),
            "load_average": os.getloadavg()[0], "genus": genus(v, f), "chamfer": chamfer,
            "normal_consistency": nc, "topology": result["topology"], "timings_s": result["timings_s"]}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark for one object."""
    ap = argparse.ArgumentParser(prog="python benchmarks/bench_topology.py", description=__doc__.splitlines()[0])
    ap.add_argument("--object", required=True, choices=["torus", "mug", "spot"])
    ap.add_argument("--views", type=int, default=16)
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--out", type=Path, default=REPO / "bench_out" / "topology")
    ap.add_argument("--grid-res", type=int, default=None, help="the stage's grid, nodes per axis (default 64)")
    ap.add_argument("--reuse-base", action="store_true",
                    help="take the baseline run from an earlier topology_<object>.json instead of running it again")
    args = ap.parse_args(argv)
    stage = {"grid_res": args.grid_res} if args.grid_res else None
    record = args.out / f"topology_{args.object}.json"
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.object
    job = rendered_job(name, args)
    runs = args.out / "runs"
    runs.mkdir(exist_ok=True)
    reused = json.loads(record.read_text())["base"] if args.reuse_base and record.is_file() else None
    if name == "spot":
        base = reused or run(job, runs / f"{name}_off", args, topology="off")
        other = run(job, runs / f"{name}_auto", args, stage, topology="auto")
        labels = ("topology off", "topology auto")
    else:
        from backend.mesh.metrics import load_mesh
        from backend.mesh.metrics import genus as mesh_genus

        start = enclosing_start(job / "reference.obj", args.out / f"{name}_start.obj")
        print(f"[{name}] reference genus {mesh_genus(*load_mesh(job / 'reference.obj'))}, start genus "
              f"{mesh_genus(*load_mesh(start))}", flush=True)
        base = reused or run(job, runs / f"{name}_hull_off", args, topology="off")
        other = run(job, runs / f"{name}_start_on", args, stage, topology="on", initial_mesh=str(start))
        labels = ("visual hull, topology off", "genus-0 start, topology on")
    for label, r in zip(labels, (base, other)):
        t = r["topology"]
        print(f"[{name}] {label}: genus {r['genus']}  Chamfer {100 * r['chamfer']:.3f}%  NC "
              f"{r['normal_consistency']:.4f}  wall {r['wall_s']:.1f}s  load {r['load_average']:.1f}  topology: "
              f"ran {t['ran']}, {t.get('genus_before')} -> {t.get('genus_after')}, accepted {t.get('accepted')}, "
              f"{t.get('seconds')} s, grid {t.get('grid_res')}, edge {t.get('edge_length')} ({t['reason']}; "
              f"{t.get('decision')})", flush=True)
    ratio = other["chamfer"] / base["chamfer"]
    print(f"[{name}] Chamfer ratio {ratio:.3f}x, wall {base['wall_s']:.1f} s vs {other['wall_s']:.1f} s", flush=True)
    record.write_text(json.dumps({"object": name, "views": args.views, "res": args.res,
                                                               "iterations": args.iterations, "base": base,
                                                               "other": other, "chamfer_ratio": ratio}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
