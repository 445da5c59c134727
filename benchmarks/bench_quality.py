"""Stop when done (issue 23): a quality level's converging run beside fixed step counts on the same scenes.

`python benchmarks/bench_quality.py --meshes spot,teapot,suzanne --configs standard,fixed2000,fixed500`
renders (once, cached like bench_reconstruct.py) 24 Cycles views at 256 px per mesh, reconstructs each with
every config (`draft` / `standard` / `high`: a converging run at that level; `standard@tail_steps=300@...`: that
level with some of its fields changed; `fixedN`: the fixed schedule of N steps) on the CPU (`--seed`, `--set
name=value` for every run), and prints steps run, stop reason, wall and CPU seconds, Chamfer L1 (exact point to
surface, % of the reference's bbox diagonal) and normal consistency as a Markdown table; writes OUT/quality.json
(after each run) and each run's progress lines (OUT/runs/NAME_CONFIG/progress.jsonl). Both figures also against the
reference's outer surface (its parts buried in its own solid left out: backend/mesh/outer_surface.py).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_reconstruct import mesh_source, outer_surface_metrics, parse_overrides, parse_res, surface_metrics  # noqa: E402


def config_settings(config: str) -> dict:
    """Job settings of a config name: a quality level, or fixedN for N fixed steps."""
    from backend.io.quality import LEVELS

    config = config.split("@")[0]
    if config in LEVELS:
        return {"iterations": None, "quality": config}
    if config.startswith("fixed") and config[5:].isdigit():
        return {"iterations": int(config[5:])}
    raise SystemExit(f"unknown config {config!r}: use {', '.join(LEVELS)} or fixedN")


@contextlib.contextmanager
def level_changes(config: str) -> Iterator[None]:
    """`standard@tail_steps=300@...`: the level runs with those fields changed (for trying a level's bounds
    before changing them in backend/io/quality.py); the level is restored afterwards."""
    from backend.io.quality import LEVELS

    name, *changes = config.split("@")
    if not changes:
        yield
        return
    level = LEVELS[name]
    fields = {k: type(getattr(level, k))(v) for k, v in (c.split("=", 1) for c in changes)}
    LEVELS[name] = dataclasses.replace(level, **fields)
    try:
        yield
    finally:
        LEVELS[name] = level


def scene_job(name: str, args: argparse.Namespace) -> Path:
    """The rendered job of a mesh (rendered once into the jobs folder, as bench_reconstruct.py names it; `mug` is
    bench_topology.py's genus-1 mug)."""
    from scenegen import render_job_subprocess

    job = args.jobs_dir / f"{name}_{args.views}v_{args.res}"
    if not (job / "job.json").is_file():
        from bench_topology import mug_mesh

        source = str(mug_mesh(args.jobs_dir / "mug.obj")) if name == "mug" else mesh_source(name)
        render_job_subprocess(job, mesh=source, n_views=args.views, resolution=parse_res(args.res),
                              samples=args.samples, timeout=3600)
    return job


def run(name: str, config: str, args: argparse.Namespace) -> dict:
    """Reconstruct one mesh with one config; the figures of the table."""
    from backend.io.detect import load_any
    from backend.io.validate import validate_scene
    from backend.mesh.metrics import load_mesh
    from backend.pipelines.reconstruct import reconstruct
    from backend.runtime.protocol import Reporter

    job = scene_job(name, args)
    scene = load_any(job)
    scene.settings.update(device="cpu", symmetry="off", texture_size=args.texture_size, **config_settings(config))
    if args.seed is not None:
        scene.settings["seed"] = args.seed
    validate_scene(scene)
    out = args.out / "runs" / (f"{name}_{config}" + ("" if args.seed is None else f"_seed{args.seed}"))
    stream = io.StringIO()
    t, c = time.monotonic(), time.process_time()
    with level_changes(config):
        result = reconstruct(scene, out, Reporter(stream=stream, json_mode=True, quiet_logs=True),
                             schedule_overrides=parse_overrides(args.set))
    wall, cpu = time.monotonic() - t, time.process_time() - c
    (out / "progress.jsonl").write_text(stream.getvalue())
    ref_v, ref_f = load_mesh(job / "reference.obj")
    v, f = load_mesh(out / result["mesh"])
    chamfer, nc = surface_metrics(ref_v, ref_f, v, f)
    outer_chamfer, outer_nc = outer_surface_metrics(ref_v, ref_f, v, f)
    record = {"mesh": name, "config": config, "seed": scene.settings.get("seed"), "set": args.set,
              "steps": result["iterations"], "stop_reason": result["stop_reason"],
              "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "optimize_s": result["timings_s"].get("optimize"),
              "chamfer_pct": round(100 * chamfer, 4), "normal_consistency": round(nc, 4),
              "outer_chamfer_pct": round(100 * outer_chamfer, 4), "outer_normal_consistency": round(outer_nc, 4),
              "load_average": round(os.getloadavg()[0], 2), "convergence": result.get("convergence")}
    print(json.dumps({k: v for k, v in record.items() if k != "convergence"}), flush=True)
    return record


def table(records: list[dict]) -> str:
    """The Markdown table of the records."""
    rows = ["| mesh | config | steps | stop | Chamfer % | NC | outer: Chamfer % | NC | CPU s | wall s | load |",
            "|---" * 11 + "|"]
    rows += [f"| {r['mesh']} | {r['config']} | {r['steps']} | {r['stop_reason']} | {r['chamfer_pct']:.4f} | "
             f"{r['normal_consistency']:.4f} | {r['outer_chamfer_pct']:.4f} | {r['outer_normal_consistency']:.4f} | "
             f"{r['cpu_s']:.0f} | {r['wall_s']:.0f} | {r['load_average']:.1f} |"
             for r in records]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run every mesh x config, print the table."""
    ap = argparse.ArgumentParser(prog="python benchmarks/bench_quality.py", description=__doc__.splitlines()[0])
    ap.add_argument("--meshes", default="spot,teapot,suzanne")
    ap.add_argument("--configs", default="standard,fixed2000,fixed500")
    ap.add_argument("--views", type=int, default=24)
    ap.add_argument("--res", default="256")
    ap.add_argument("--samples", type=int, default=8, help="Cycles samples per pixel")
    ap.add_argument("--texture-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=None, help="the job's seed (default: the job's own)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a schedule field for every run (as bench_reconstruct.py --set)")
    ap.add_argument("--out", type=Path, default=REPO / "bench_out" / "quality")
    ap.add_argument("--jobs-dir", type=Path, default=REPO / "bench_out" / "jobs")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    for m in filter(None, (x.strip() for x in args.meshes.split(","))):
        for c in filter(None, (x.strip() for x in args.configs.split(","))):
            records.append(run(m, c, args))
            (args.out / "quality.json").write_text(json.dumps(records, indent=2))  # each run kept as it ends
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
