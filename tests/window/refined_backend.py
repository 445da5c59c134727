"""Stand-in backend for the Refine Cameras window test: a result whose cameras carry known corrections.

Run as `python refined_backend.py reconstruct JOB --out OUT --json ...` (the add-on's command line). It
reads JOB/job.json and writes OUT/result.json by the contract of issue 10: each view's camera turned
by 1 degree about the world z axis (about its centre), its centre moved by (0.05, -0.02, 0.03), the
focal length scaled by 1.02, the last view marked as not aligned; plus a small tetrahedron as the mesh.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

TURN_DEG = 1.0
MOVE = np.array([0.05, -0.02, 0.03])
FOCAL_SCALE = 1.02


def refined_views(views: list[dict]) -> tuple[list[dict], list[str]]:
    """The contract's camera entries for the job's views, and the warnings."""
    c, s = math.cos(math.radians(TURN_DEG)), math.sin(math.radians(TURN_DEG))
    turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    entries, warnings = [], []
    for i, v in enumerate(views):
        K, R, t = np.array(v["K"]), np.array(v["R"]), np.array(v["t"])
        centre = -R.T @ t + MOVE
        R2 = R @ turn.T
        K2 = K.copy()
        K2[:2, :2] *= FOCAL_SCALE
        aligned = i < len(views) - 1
        entries.append({"name": v["name"], "K": K2.tolist(), "R": R2.tolist(), "t": (-R2 @ centre).tolist(),
                        "rotation_deg": TURN_DEG, "translation": float(np.linalg.norm(MOVE)),
                        "weight": 1.0 if aligned else 0.3, "aligned": aligned})
        if not aligned:
            warnings.append(f"View '{v['name']}' could not be aligned (silhouette overlap 0.41 after refinement).")
    return entries, warnings


def main() -> None:
    """Write the result folder and the protocol's done line."""
    args = sys.argv[1:]
    job = json.loads((Path(args[args.index("reconstruct") + 1]) / "job.json").read_text())
    out = Path(args[args.index("--out") + 1])
    out.mkdir(parents=True, exist_ok=True)
    print(json.dumps({"type": "stage", "name": "load"}), flush=True)
    (out / "mesh.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n")
    entries, warnings = refined_views(job["views"])
    result = {"mesh": "mesh.obj", "warnings": []}
    if job["settings"].get("refine_cameras"):
        result.update(cameras=entries, camera_focal_scale=FOCAL_SCALE, warnings=warnings)
    (out / "result.json").write_text(json.dumps(result))
    print(json.dumps({"type": "done", "result": "result.json"}), flush=True)


main()
