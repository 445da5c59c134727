"""Which screened Poisson and normal orientation: gpytoolbox (our dependency) against open3d, same clouds.

open3d is not a dependency (338 MB installed, plus dash/plotly); give a Python that has it with
--open3d-python. Each library gets the same cleaned cloud; each surface gets the same trimming;
quality is `backend.mesh.metrics.compare_meshes` against the source mesh. Prints JSON lines.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_points import MESHES, noisy_cloud  # noqa: E402
from backend.mesh.metrics import compare_meshes, load_mesh  # noqa: E402
from backend.points.normals import estimate_normals  # noqa: E402
from backend.points.surface import compact, drop_small_parts, knn, outlier_mask, screened_poisson, trim_unsupported  # noqa: E402

OPEN3D_SCRIPT = textwrap.dedent("""
    import sys, time, json, numpy as np, open3d as o3d
    d = np.load(sys.argv[1]); depth = int(sys.argv[3]); out = {}
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(d["points"]))
    if "normals" in d.files:
        pc.normals = o3d.utility.Vector3dVector(d["normals"])
    else:
        t = time.perf_counter()
        pc.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(20))
        pc.orient_normals_consistent_tangent_plane(20)
        out["normals_s"] = time.perf_counter() - t
    t = time.perf_counter()
    mesh, dens = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(pc, depth=depth, n_threads=1)
    out["poisson_s"] = time.perf_counter() - t
    np.savez(sys.argv[2], v=np.asarray(mesh.vertices), f=np.asarray(mesh.triangles), n=np.asarray(pc.normals))
    print(json.dumps(out))
""")


def finish(v: np.ndarray, f: np.ndarray, pts: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pipeline's trimming, applied to either library's surface."""
    f = trim_unsupported(v, np.asarray(f, dtype=np.int64), pts, spacing, 2.5)
    return drop_small_parts(*compact(v, f))


def main() -> None:
    """Both libraries on one noisy cloud, with the file's normals and with estimated ones."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--open3d-python", required=True)
    p.add_argument("--mesh", default="spot")
    p.add_argument("--noise", type=float, default=0.005)
    p.add_argument("--depth", type=int, default=8)
    args = p.parse_args()
    v, f = load_mesh(MESHES / f"{args.mesh}.obj")
    pts, nrm = noisy_cloud(v, f, 200_000, args.noise, 0.03)
    dist = knn(pts, 10)[0][:, 1:].mean(axis=1)
    keep = outlier_mask(dist)
    pts, nrm, spacing = pts[keep], nrm[keep], dist[keep]
    print(json.dumps({"load_average": os.getloadavg(), "points": len(pts)}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "o3d.py"
        script.write_text(OPEN3D_SCRIPT)
        for normals in ("given", "estimated"):
            row: dict = {"mesh": args.mesh, "noise": args.noise, "normals": normals, "depth": args.depth}
            t = time.perf_counter()
            n = nrm if normals == "given" else estimate_normals(pts)
            row["ours_normals_s"] = round(time.perf_counter() - t, 2)
            t = time.perf_counter()
            gv, gf = screened_poisson(pts, n, args.depth)
            row["gpytoolbox_poisson_s"] = round(time.perf_counter() - t, 2)
            m = compare_meshes(v, f, *finish(gv, gf, pts, spacing))
            row["gpytoolbox"] = {"chamfer_l1_norm": round(m["chamfer_l1_norm"], 6),
                                 "normal_consistency": round(m["normal_consistency"], 4)}
            src = Path(tmp) / "cloud.npz"
            np.savez(src, **({"points": pts, "normals": nrm} if normals == "given" else {"points": pts}))
            env = {k: val for k, val in os.environ.items() if k != "PYTHONPATH"}
            proc = subprocess.run([args.open3d_python, str(script), str(src), str(Path(tmp) / "o.npz"),
                                   str(args.depth)], capture_output=True, text=True, env=env, check=True)
            times = json.loads(proc.stdout.strip().splitlines()[-1])
            o = np.load(Path(tmp) / "o.npz")
            m = compare_meshes(v, f, *finish(o["v"], o["f"], pts, spacing))
            row["open3d"] = {"chamfer_l1_norm": round(m["chamfer_l1_norm"], 6),
                             "normal_consistency": round(m["normal_consistency"], 4),
                             **{k: round(x, 2) for k, x in times.items()}}
            if normals == "estimated":
                m = compare_meshes(v, f, *finish(*screened_poisson(pts, o["n"], args.depth), pts, spacing))
                row["open3d_normals_gpytoolbox_poisson"] = {"chamfer_l1_norm": round(m["chamfer_l1_norm"], 6),
                                                            "normal_consistency": round(m["normal_consistency"], 4)}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
