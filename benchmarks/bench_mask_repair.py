"""Masks as evidence (issue 24): a torus with holes punched into the masks of a few views, mask repair off vs on.

`python benchmarks/bench_mask_repair.py` renders (cached) a Cycles torus, punches a disk into k views' masks where
the tube's core circle projects (`scenegen.damage`), and reconstructs it three ways: `old` (the hull's former
1-view tolerance, no repair), `strict` (strict hull, no repair) and `repair` (the defaults: strict hull, contradicted
holes repaired); it prints the normalised Chamfer distance and the genus of the visual hull and of the result. The
clean meshes (`--clean`, default torus, spot and teapot) run `old` and `repair` (no worse is the bar).
Writes OUT/records.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def render(name: str, args: argparse.Namespace) -> Path:
    """The cached Cycles job of a mesh."""
    from bench_reconstruct import mesh_source
    from scenegen import render_job_subprocess

    job = args.out / "jobs" / f"{name}_{args.views}v_{args.res}"
    if not (job / "job.json").is_file():
        render_job_subprocess(job, mesh=mesh_source(name), n_views=args.views, resolution=args.res,
                              samples=args.samples, timeout=3600)
    return job


def punched(job: Path, args: argparse.Namespace) -> tuple[Path, list[str]]:
    """The job with a disk punched into k views where the torus tube's core projects."""
    from backend.io.job import load_job
    from backend.mesh.metrics import load_mesh
    from scenegen.damage import enclosed_views, punch_job, tube_point

    point = tube_point(load_mesh(job / "reference.obj")[0])
    radius = args.radius * args.res
    views = enclosed_views(load_job(job).views, point, radius, args.punch)
    dst = job.parent / f"{job.name}_punched{args.punch}"
    return dst, punch_job(job, dst, views, point, radius)


def modes(n_views: int) -> dict[str, dict]:
    """The schedule overrides of each way to treat the masks (`topology`: the defaults with the topology stage
    on, so a tunnel the stage carved would show)."""
    return {"old": {"hull_vote": 1.0 / n_views, "mask_repair": False}, "strict": {"mask_repair": False},
            "repair": {}, "topology": {}}


def run(job: Path, tag: str, mode: str, args: argparse.Namespace) -> dict:
    """Reconstruct the job one way (`modes`); Chamfer and genus of the hull and the result."""
    from bench_reconstruct import normalised_chamfer, surface_metrics
    from backend.io.job import load_job
    from backend.mesh.metrics import genus, is_closed, load_mesh
    from backend.pipelines.reconstruct import reconstruct
    from backend.runtime.protocol import Reporter

    scene = load_job(job)
    scene.settings.update(device="cpu", iterations=args.iterations, symmetry="off", texture_size=256,
                          topology="on" if mode == "topology" else "auto")
    out = args.out / "runs" / f"{tag}_{mode}"
    with open(args.out / f"{out.name}.jsonl", "w") as log:
        t = time.monotonic()
        result = reconstruct(scene, out, Reporter(stream=log, json_mode=True, quiet_logs=True),
                             preview_every=args.iterations, schedule_overrides=modes(args.views)[mode])
        wall = time.monotonic() - t
    ref = load_mesh(job / "reference.obj")
    hull = load_mesh(out / result["previews"][0]["mesh"])
    mesh = load_mesh(out / result["mesh"])
    record = {"job": job.name, "mode": mode, "iterations": args.iterations, "wall_s": round(wall, 1),
              "load_average": round(os.getloadavg()[0], 2), "hull_genus": genus(*hull), "genus": genus(*mesh),
              "hull_closed": bool(is_closed(*hull)),
              "hull_chamfer": normalised_chamfer(*ref, *hull), "chamfer": normalised_chamfer(*ref, *mesh),
              "chamfer_surface": surface_metrics(*ref, *mesh)[0],
              "mask_consensus": result["mask_consensus"], "topology": result["topology"],
              "timings_s": result["timings_s"]}
    print(f"[{job.name} {mode}] hull genus {record['hull_genus']}{'' if record['hull_closed'] else ' (open)'} Chamfer {100 * record['hull_chamfer']:.3f}%  "
          f"final genus {record['genus']} Chamfer {100 * record['chamfer']:.3f}% (point-to-surface "
          f"{100 * record['chamfer_surface']:.3f}%)  "
          f"contradicted {record['mask_consensus']['contradicted']}  topology ran {result['topology']['ran']} "
          f"{result['topology'].get('decision', '')}  wall {wall:.0f}s  load "
          f"{record['load_average']:.1f}", flush=True)
    return record


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(prog="python benchmarks/bench_mask_repair.py", description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=16)
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--punch", type=int, default=2, help="views whose mask gets a hole")
    ap.add_argument("--radius", type=float, default=0.047, help="the hole's radius, share of the image side")
    ap.add_argument("--clean", default="torus,spot,teapot", help="clean meshes run old and repair ('' for none)")
    ap.add_argument("--modes", default="old,strict,repair", help="the punched torus's runs (old, strict, repair, "
                    "topology: repair with the topology stage on)")
    ap.add_argument("--clean-modes", default="old,repair", help="the clean meshes' runs")
    ap.add_argument("--out", type=Path, default=REPO / "bench_out" / "mask_repair")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    job, names = punched(render("torus", args), args)
    print(f"torus: holes of radius {args.radius * args.res:.1f} px punched into {', '.join(names)}", flush=True)
    for mode in filter(None, args.modes.split(",")):
        records.append(run(job, "torus_punched", mode, args))
    for name in filter(None, (n.strip() for n in args.clean.split(","))):
        clean = render(name, args)
        for mode in filter(None, args.clean_modes.split(",")):
            records.append(run(clean, name, mode, args))
    (args.out / "records.json").write_text(json.dumps(records, indent=2))
    print(f"wrote {args.out / 'records.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
