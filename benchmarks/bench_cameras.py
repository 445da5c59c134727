"""Camera refinement benchmark: `python benchmarks/bench_cameras.py` (issue 10).

For each mesh (rendered with scenegen, cached under --jobs-dir) runs: exact cameras with refinement off and on,
seeded perturbed cameras (rotations of 0.75-1.5 degrees, centre moves of 1.5 % of the bbox diagonal) off and on,
one view given another view's image (refinement on), and exact cameras but one turned by 2-3 degrees and moved
by 1.5 % (off and on). Prints the Chamfer distance (point-to-surface, % of the
bbox diagonal), normal consistency, wall time, the cameras' rotation and centre errors against the true ones
before and after refinement (raw, and with the unobservable similarity gauge removed) and the views warned about.
The Chamfer distance is also given after a rigid alignment to the reference: camera errors that are common to
all views (their mean) move the whole reconstruction and no set of images can reveal them.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.bench_reconstruct import mesh_source, parse_overrides, surface_metrics  # noqa: E402

CASES = ("exact_off", "exact_on", "perturbed_off", "perturbed_on", "wrong_on", "one_off_off", "one_off_on")


def camera_errors(true_views: list, R: np.ndarray, t: np.ndarray, diag: float, depth: float) -> dict:
    """Median and max rotation error (deg) and centre error (% of bbox diagonal), raw and gauge-free."""
    from backend.cameras.pose import gauge_free_errors, pose_errors

    R0 = np.stack([v.R for v in true_views])
    t0 = np.stack([v.t for v in true_views])
    raw = np.array([pose_errors(R[i], t[i], R0[i], t0[i]) for i in range(len(R))])
    rot_g, cen_g = gauge_free_errors(R, t, R0, t0, depth)
    stats = {}
    for key, values, scale in (("rot", raw[:, 0], 1.0), ("centre", raw[:, 1], 100 / diag),
                               ("rot_gauge_free", rot_g, 1.0), ("centre_gauge_free", cen_g, 100 / diag)):
        stats[f"{key}_median"] = float(np.median(values) * scale)
        stats[f"{key}_max"] = float(np.max(values) * scale)
    return stats


def most_different_view(views: list, target: int) -> int:
    """Index of the view whose mask overlaps view `target`'s least (a clearly wrong image for it)."""
    from backend.optim.alignment import silhouette_iou

    ious = [silhouette_iou(v.mask, views[target].mask) if i != target else 2.0 for i, v in enumerate(views)]
    return int(np.argmin(ious))


def make_scene(base: object, case: str, diag: float, seed: int) -> tuple[object, str | None]:
    """The scene of one case (views perturbed or one image swapped) and the name of the swapped view."""
    from backend.cameras.pose import perturb_views
    from backend.io.views import View

    views = list(base.views)
    wrong = None
    if case.startswith("perturbed"):
        views = perturb_views(views, diag, seed)
    if case.startswith("one_off"):
        k = len(views) // 3
        views[k] = perturb_views(views[k:k + 1], diag, seed, rot_deg=(2.0, 3.0))[0]
    if case.startswith("wrong"):
        k = len(views) // 3
        j = most_different_view(views, k)
        v = views[k]
        views[k] = View(v.name, views[j].image, views[j].mask, v.K, v.R, v.t)
        wrong = v.name
    settings = {**base.settings, "refine_cameras": case.endswith("_on")}
    return dataclasses.replace(base, views=views, settings=settings), wrong


def run_case(name: str, case: str, base: object, job: Path, args: argparse.Namespace) -> dict:
    """Reconstruct one case and measure it."""
    from backend.io.validate import validate_scene
    from backend.mesh.align import align_meshes
    from backend.mesh.metrics import bbox_diagonal, load_mesh
    from backend.pipelines.reconstruct import reconstruct
    from backend.runtime.protocol import Reporter

    ref_v, ref_f = load_mesh(job / "reference.obj")
    diag = float(bbox_diagonal(ref_v))
    scene, wrong = make_scene(base, case, diag, args.seed)
    validate_scene(scene)
    out = args.out / "runs" / f"{name}_{case}"
    with open(args.out / f"{name}_{case}.jsonl", "w") as log:
        t = time.monotonic()
        result = reconstruct(scene, out, Reporter(stream=log, json_mode=True, quiet_logs=True),
                             schedule_overrides=parse_overrides(args.set),
                             refine_overrides=parse_overrides(args.refine_set))
        wall = time.monotonic() - t
    v, f = load_mesh(out / result["mesh"])
    chamfer, nc = surface_metrics(ref_v, ref_f, v, f)
    m = align_meshes(v, f, ref_v, ref_f)
    aligned, _ = surface_metrics(ref_v, ref_f, v @ m[:3, :3].T + m[:3, 3], f)
    rec = {"mesh": name, "case": case, "chamfer_pct": 100 * chamfer, "chamfer_aligned_pct": 100 * aligned,
           "normal_consistency": nc,
           "wall_s": round(wall, 1), "load_average": os.getloadavg()[0], "warnings": result["warnings"],
           "wrong_view": wrong}
    depth = float(np.median([np.linalg.norm(x.center - np.asarray(result["normalization"]["center"]))
                             for x in base.views]))
    if case.startswith(("perturbed", "one_off")):
        given = camera_errors(base.views, np.stack([x.R for x in scene.views]), np.stack([x.t for x in scene.views]),
                              diag, depth)
        rec.update({f"before_{k}": val for k, val in given.items()})
    if "cameras" in result:
        cams = result["cameras"]
        true_views = base.views
        keep = [i for i, c in enumerate(cams) if c["name"] != wrong]
        R = np.array([cams[i]["R"] for i in keep])
        t = np.array([cams[i]["t"] for i in keep])
        after = camera_errors([true_views[i] for i in keep], R, t, diag, depth)
        rec.update({f"after_{k}": val for k, val in after.items()})
        rec["focal_scale"] = result["camera_focal_scale"]
        rec["unaligned"] = [c["name"] for c in cams if not c["aligned"]]
    return rec


def describe(rec: dict) -> str:
    """One printed line per run."""
    text = (f"[{rec['mesh']} {rec['case']}] Chamfer {rec['chamfer_pct']:.3f}% (rigidly aligned "
            f"{rec['chamfer_aligned_pct']:.3f}%)  NC {rec['normal_consistency']:.4f}  "
            f"wall {rec['wall_s']:.0f}s  load {rec['load_average']:.1f}")
    for when in ("before", "after"):
        if f"{when}_rot_median" in rec:
            text += (f"  {when}: rot median {rec[f'{when}_rot_median']:.3f} max {rec[f'{when}_rot_max']:.3f} deg, "
                     f"centre median {rec[f'{when}_centre_median']:.3f}% max {rec[f'{when}_centre_max']:.3f}% "
                     f"(gauge-free rot median {rec[f'{when}_rot_gauge_free_median']:.3f} max "
                     f"{rec[f'{when}_rot_gauge_free_max']:.3f} deg, centre median "
                     f"{rec[f'{when}_centre_gauge_free_median']:.3f}%)")
    if "unaligned" in rec:
        text += f"  focal {rec['focal_scale']:.4f}  unaligned {rec['unaligned']}"
    if rec["wrong_view"]:
        text += f"  (wrong image given to {rec['wrong_view']})"
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    from backend.io.detect import load_any
    from scenegen import render_job_subprocess

    ap = argparse.ArgumentParser(prog="python benchmarks/bench_cameras.py", description=__doc__.splitlines()[0])
    ap.add_argument("--meshes", default="suzanne,spot")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    ap.add_argument("--views", type=int, default=24)
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=700, help="the step count of the camera figures in BENCHMARKS.md")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0, help="seed of the camera perturbation")
    ap.add_argument("--texture-size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=REPO / "bench_out" / "cameras")
    ap.add_argument("--jobs-dir", type=Path, default=None, help="rendered jobs cache (default OUT/jobs)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="schedule override")
    ap.add_argument("--refine-set", action="append", default=[], metavar="NAME=VALUE",
                    help="camera refinement setting override (backend.optim.camera_refine.RefineSettings)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    for name in [m.strip() for m in args.meshes.split(",") if m.strip()]:
        job = (args.jobs_dir or args.out / "jobs") / f"{name}_{args.views}v_{args.res}"
        if not (job / "job.json").is_file():
            render_job_subprocess(job, mesh=mesh_source(name), n_views=args.views, resolution=args.res,
                                  samples=args.samples, timeout=3600)
        base = load_any(job)
        base.settings.update(device=args.device, iterations=args.iterations, symmetry="off",
                             texture_size=args.texture_size)
        for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
            rec = run_case(name, case, base, job, args)
            print(describe(rec), flush=True)
            records.append(rec)
    if args.json is not None:
        args.json.write_text(json.dumps(records, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
