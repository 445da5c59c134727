"""Symmetry: detection accuracy on moved meshes, and "enforce" vs "detect" on a one-sided job.

python benchmarks/bench_symmetry.py [--iterations 400] [--filter x>0.3] [--out bench_out/symmetry] [--detection-only]
First, detect_symmetry on the shared meshes (when ../shared/meshes exists) under 3 random rigid motions:
angle and offset error against the known plane (x or z through the bbox centre), score, seconds. Then it renders Suzanne (symmetric about x = 0) with Cycles from cameras on the +x side only, runs
`python -m backend reconstruct` with --symmetry detect and enforce, and measures, on the x < 0 half,
the Chamfer distance to the reference (both directions, divided by the reference bbox diagonal).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import trimesh
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.post.geometry import bbox_diagonal, sample_surface  # noqa: E402
from backend.post.symmetry import SymmetryPlane, detect_symmetry, symmetry_score  # noqa: E402
from scenegen import render_job_subprocess  # noqa: E402


def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of a mesh file."""
    mesh = trimesh.load(path, force="mesh", process=False)
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces)


SHARED = ROOT.parent / "shared" / "meshes"


def detection_accuracy(axes: dict[str, int] | None = None) -> dict:
    """Angle (degrees) and offset (fraction of diagonal) errors, score and time of detect_symmetry."""
    if not SHARED.is_dir():
        print(f"{SHARED} not present: detection accuracy skipped", file=sys.stderr)
        return {}
    out = {}
    for name, axis in (axes or {"suzanne": 0, "spot": 0, "teapot": 2}).items():
        v, f = load(SHARED / f"{name}.obj")
        centre = np.zeros(3)
        centre[axis] = 0.5 * (v[:, axis].min() + v[:, axis].max())
        rows = []
        for seed in range(3):
            rot = Rotation.random(random_state=seed).as_matrix()
            shift = np.random.default_rng(seed).uniform(-3, 3, 3)
            moved = v @ rot.T + shift
            t0 = time.perf_counter()
            plane, symmetric = detect_symmetry(moved, f)
            seconds = time.perf_counter() - t0
            n_true = rot[:, axis]
            p_true = rot @ centre + shift
            rows.append((np.degrees(np.arccos(min(1.0, abs(float(plane.normal @ n_true))))),
                         abs(float((plane.point - p_true) @ n_true)) / bbox_diagonal(moved),
                         plane.score, seconds, symmetric))
        a = np.array(rows, dtype=np.float64)
        out[name] = {"faces": int(len(f)), "max_angle_deg": round(float(a[:, 0].max()), 4),
                     "max_offset_frac": round(float(a[:, 1].max()), 6), "score": round(float(a[:, 2].mean()), 5),
                     "seconds": round(float(a[:, 3].mean()), 2), "symmetric": bool(a[:, 4].all())}
    return out


def half_chamfer(ref: tuple[np.ndarray, np.ndarray], rec: tuple[np.ndarray, np.ndarray], n: int = 40000) -> dict:
    """Chamfer restricted to x < 0 (the unseen half), both ways, normalised by the reference diagonal."""
    rng = np.random.default_rng(0)
    ref_pts, _ = sample_surface(*ref, n, rng)
    rec_pts, _ = sample_surface(*rec, n, rng)
    diag = bbox_diagonal(ref[0])
    ref_half, rec_half = ref_pts[ref_pts[:, 0] < 0], rec_pts[rec_pts[:, 0] < 0]
    d_ref = cKDTree(rec_pts).query(ref_half)[0] / diag
    d_rec = cKDTree(ref_pts).query(rec_half)[0] / diag
    return {"chamfer": round(float(0.5 * (d_ref.mean() + d_rec.mean())), 5),
            "ref_to_rec": round(float(d_ref.mean()), 5), "rec_to_ref": round(float(d_rec.mean()), 5),
            "hausdorff_ref_to_rec": round(float(d_ref.max()), 4)}


def reconstruct(job: Path, out: Path, mode: str, iterations: int) -> float:
    """Run the backend CLI; returns wall seconds."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "backend", "reconstruct", str(job), "--out", str(out), "--symmetry", mode,
           "--iterations", str(iterations), "--device", "cpu", "--texture-size", "512", "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"reconstruct --symmetry {mode} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def main() -> None:
    """Render the one-sided job, reconstruct twice, compare the unseen half."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--views", type=int, default=24)
    ap.add_argument("--res", type=int, default=192)
    ap.add_argument("--filter", default="x>0.3", help="which cameras are kept (scenegen view filter)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench_out" / "symmetry")
    ap.add_argument("--detection-only", action="store_true")
    args = ap.parse_args()
    detection = detection_accuracy()
    print(json.dumps({"detection": detection}, indent=1))
    if args.detection_only:
        return
    job = args.out / "job"
    if not (job / "job.json").is_file():
        render_job_subprocess(job, mesh="suzanne", n_views=args.views, resolution=args.res, views_filter=args.filter)
    ref = load(job / "reference.obj")
    true_plane = SymmetryPlane(np.zeros(3), np.array([1.0, 0.0, 0.0]), 0.0)
    n_views = len(json.loads((job / "job.json").read_text())["views"])
    report: dict = {"detection": detection, "mesh": "suzanne", "views_kept": n_views, "filter": args.filter, "iterations": args.iterations,
                    "reference_symmetry_score": round(symmetry_score(*ref, true_plane), 5)}
    for mode in ("detect", "enforce"):
        out = args.out / mode
        seconds = reconstruct(job, out, mode, args.iterations)
        result = json.loads((out / "result.json").read_text())
        rec = load(out / "mesh.obj")
        plane = result.get("symmetry")
        entry = {"seconds": round(seconds, 1), "unseen_half": half_chamfer(ref, rec), "plane": plane}
        if plane:
            n = np.asarray(plane["normal"], dtype=np.float64)
            entry["plane_angle_deg"] = round(float(np.degrees(np.arccos(min(1.0, abs(n[0]) / np.linalg.norm(n))))), 2)
        report[mode] = entry
    (args.out / "result.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
