"""Structure-from-motion benchmark: `python benchmarks/bench_sfm.py PHOTOS --work DIR [--truth IDR_DIR]`.

Runs `backend.capture.sfm.run_sfm` (or reuses DIR/sfm_result.pkl with --reuse), pickles the SfmResult there,
and prints registered photos, mean reprojection error, points and seconds. With --truth (an IDR/NeuS folder
whose cameras.npz belongs to the photos in sorted order, e.g. DTU) it also prints the rotation and centre
errors after the similarity fitted to the camera centres, and the focal length error; --capture CAP does the
same against a scenegen capture's truth (CAP/truth). Prints the wall seconds of each step (from the previous step's
last progress report to its own last), the load average, and the CPU seconds of each step's worker processes
(counted when a worker ends, so between one step's first report and the next's: a load-independent figure).
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from backend.capture.evaluate import align_cameras  # noqa: E402
from backend.capture.sfm import SfmResult, run_sfm  # noqa: E402
from backend.io.idr import _listing, decompose_projection, find_camera_file  # noqa: E402


def true_cameras(idr_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """Photo stem -> (K, R, t, width) of an IDR folder, without reading its images' pixels."""
    from PIL import Image

    cam_file = find_camera_file(idr_dir)
    cams = np.load(cam_file)
    images = _listing(cam_file.parent / "image") or _listing(cam_file.parent / "images")
    out = {}
    for i, path in enumerate(images):
        K, R, t = decompose_projection(cams[f"world_mat_{i}"])
        with Image.open(path) as im:
            out[path.stem] = (K, R, t, im.size[0])
    return out


def capture_cameras(capture: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """Photo stem -> (K, R, t, width) of a scenegen capture's truth (truth/truth.json names each photo's view)."""
    photos = json.loads((capture / "truth" / "truth.json").read_text())["photos"]
    job = json.loads((capture / "truth" / "job" / "job.json").read_text())
    by_view = {v["name"]: v for v in job["views"]}
    out = {}
    for photo, view in photos.items():
        v = by_view[view]
        K = np.asarray(v["K"], np.float64)
        out[Path(photo).stem] = (K, np.asarray(v["R"], np.float64), np.asarray(v["t"], np.float64),
                                 int(v.get("width", round(2 * K[0, 2]))))
    return out


def score(result: SfmResult, truth: dict) -> dict:
    """Rotation (deg), centre (% of the camera ring's diameter) and focal (%) errors of the registered cameras."""
    cams = [c for c in result.cameras if c.name in truth]
    R_est, t_est = np.stack([c.R for c in cams]), np.stack([c.t for c in cams])
    R0, t0 = np.stack([truth[c.name][1] for c in cams]), np.stack([truth[c.name][2] for c in cams])
    rot, centre, _ = align_cameras(R_est, t_est, R0, t0)
    centres = np.stack([-R.T @ t for R, t in zip(R0, t0)])
    diameter = float(np.linalg.norm(centres.max(0) - centres.min(0)))
    focal = np.array([c.K[0, 0] * truth[c.name][3] / c.width / truth[c.name][0][0, 0] - 1 for c in cams])
    return {"rot_median_deg": float(np.median(rot)), "rot_max_deg": float(rot.max()),
            "centre_median_pct": float(100 * np.median(centre) / diameter),
            "focal_median_pct": float(100 * np.median(np.abs(focal)))}


def main() -> None:
    """Run or reuse, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", type=Path)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--truth", type=Path, default=None)
    ap.add_argument("--max-image-size", type=int, default=1600)
    ap.add_argument("--matcher", default="auto")
    ap.add_argument("--capture", type=Path, default=None, help="a scenegen capture folder whose truth/ scores the run")
    ap.add_argument("--reuse", action="store_true", help="score DIR/sfm_result.pkl instead of running")
    args = ap.parse_args()
    pkl = args.work / "sfm_result.pkl"
    if args.reuse and pkl.exists():
        result = pickle.loads(pkl.read_bytes())
    else:
        last: dict[str, float] = {}
        ends: dict[str, float] = {"start": time.monotonic()}
        cpu: dict[str, float] = {}

        def progress(step: str, fraction: float) -> None:
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.setdefault(step, usage.ru_utime + usage.ru_stime)
            ends.pop(step, None)
            ends[step] = time.monotonic()
            if fraction - last.get(step, -1.0) >= 0.25 or fraction >= 1.0:
                last[step] = fraction
                print(f"  {time.strftime('%H:%M:%S')} {step} {fraction:.0%}", file=sys.stderr, flush=True)

        result = run_sfm(args.photos, args.work, progress=progress, max_image_size=args.max_image_size,
                         matcher=args.matcher)
        pkl.write_bytes(pickle.dumps(result))
        marks = list(ends.items())
        print("seconds per step (to its last report from the previous one's): "
              + ", ".join(f"{k} {t - marks[i][1]:.1f}" for i, (k, t) in enumerate(marks[1:]))
              + f"; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        firsts = list(cpu.items()) + [("end", usage.ru_utime + usage.ru_stime)]
        print("CPU seconds of each step's child processes: "
              + ", ".join(f"{k} {firsts[i + 1][1] - c:.1f}" for i, (k, c) in enumerate(firsts[:-1])))
    n = len(result.cameras) + len(result.unregistered) + len(result.left_out)
    print(f"{args.photos}: registered {len(result.cameras)}/{n}, unregistered {result.unregistered}, "
          f"left out {result.left_out}")
    print(f"reprojection {result.reprojection_px:.3f} px, {len(result.points)} points, {result.seconds:.1f} s, "
          f"max_image_size {args.max_image_size}")
    for w in result.warnings:
        print("warning:", w)
    if args.truth is not None or args.capture is not None:
        s = score(result, true_cameras(args.truth) if args.truth is not None else capture_cameras(args.capture))
        print(f"rotation error median {s['rot_median_deg']:.3f} deg, max {s['rot_max_deg']:.3f} deg; "
              f"centre error median {s['centre_median_pct']:.3f} % of the camera spread; "
              f"focal error median {s['focal_median_pct']:.2f} %")


if __name__ == "__main__":
    main()
