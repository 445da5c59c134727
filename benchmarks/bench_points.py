"""Points to Mesh benchmark: meshes sampled into noisy point clouds with outliers, meshed, compared to the source.

Prints one JSON line per case and a Markdown table. Quality: exact point-to-surface Chamfer L1 / bbox diagonal
and normal consistency (`backend.mesh.metrics.compare_meshes`, 50k samples); wall time of the whole
`points_to_mesh` run (read, outliers, normals, Poisson, trim, write; symmetry off).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.mesh.distance import sample_surface  # noqa: E402
from backend.mesh.meshmath import bbox_diagonal, face_normals  # noqa: E402
from backend.mesh.metrics import compare_meshes, load_mesh  # noqa: E402
from backend.pipelines.points import points_to_mesh  # noqa: E402
from backend.runtime.protocol import Reporter  # noqa: E402

MESHES = Path(__file__).resolve().parents[2] / "shared" / "meshes"


def noisy_cloud(v: np.ndarray, f: np.ndarray, n: int, noise: float, outliers: float,
                seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """n surface samples with Gaussian noise (sigma = noise x bbox diagonal) plus outliers uniform in the
    bbox grown by 10 % (a share `outliers` of n), and their normals (face normals; random for outliers)."""
    rng = np.random.default_rng(seed)
    pts, fi = sample_surface(v, f, n, seed=seed)
    nrm = face_normals(v, f[fi])
    pts = pts + rng.normal(scale=noise * bbox_diagonal(v), size=pts.shape)
    m = int(round(outliers * n))
    lo, hi = v.min(axis=0), v.max(axis=0)
    pad = 0.1 * (hi - lo)
    out = rng.uniform(lo - pad, hi + pad, size=(m, 3))
    on = rng.normal(size=(m, 3))
    on /= np.linalg.norm(on, axis=1, keepdims=True)
    return np.concatenate([pts, out]), np.concatenate([nrm, on])


def run_case(mesh: str, n: int, noise: float, outliers: float, with_normals: bool, work: Path) -> dict:
    """Mesh one noisy cloud and compare the result with the source mesh."""
    v, f = load_mesh(MESHES / f"{mesh}.obj")
    pts, nrm = noisy_cloud(v, f, n, noise, outliers)
    src = work / f"{mesh}.npz"
    if with_normals:
        np.savez(src, points=pts, normals=nrm)
    else:
        np.savez(src, points=pts)
    out = work / f"{mesh}_out"
    reporter = Reporter(stream=io.StringIO(), json_mode=True, quiet_logs=True)
    t0 = time.perf_counter()
    result = points_to_mesh(src, out, reporter, {"symmetry": "off"})
    wall = time.perf_counter() - t0
    vr, fr = load_mesh(out / "mesh.obj")
    m = compare_meshes(v, f, vr, fr)
    return {"mesh": mesh, "points": n + int(round(outliers * n)), "noise": noise, "outliers": outliers,
            "normals": "given" if with_normals else "estimated",
            "chamfer_l1_norm": round(m["chamfer_l1_norm"], 6), "normal_consistency": round(m["normal_consistency"], 4),
            "fscore_1pct": round(m["fscore"], 4), "wall_s": round(wall, 2),
            "timings_s": result["timings_s"], "faces": result["faces"],
            "outliers_removed": result["outliers_removed"], "depth": result["poisson"]["depth"]}


def main() -> None:
    """Run the grid (or the 1M case) and print JSON lines and a table."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--meshes", nargs="+", default=["spot", "teapot", "fandisk"])
    p.add_argument("--points", type=int, default=200_000)
    p.add_argument("--noise", nargs="+", type=float, default=[0.0025, 0.005, 0.01])
    p.add_argument("--outliers", type=float, default=0.03)
    p.add_argument("--normals", nargs="+", choices=["given", "estimated"], default=["given", "estimated"])
    p.add_argument("--large", action="store_true", help="only the 1M-points-with-normals case (spot, 0.25 %% noise)")
    args = p.parse_args()
    if args.large:
        args.meshes, args.points, args.noise, args.normals = ["spot"], 1_000_000, [0.0025], ["given"]
    print(json.dumps({"load_average": os.getloadavg(), "cpus": os.cpu_count()}), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mesh in args.meshes:
            for noise in args.noise:
                for normals in args.normals:
                    row = run_case(mesh, args.points, noise, args.outliers, normals == "given", Path(tmp))
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print("\n| mesh | points | noise | normals | Chamfer L1 / diag | normal consistency | F-score 1 % | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mesh']} | {r['points']} | {100 * r['noise']:g} % | {r['normals']} | "
              f"{100 * r['chamfer_l1_norm']:.3f} % | {r['normal_consistency']:.4f} | {r['fscore_1pct']:.3f} | "
              f"{r['wall_s']:.1f} |")
    print(json.dumps({"load_average_end": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
