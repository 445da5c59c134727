"""Real photographs: `python benchmarks/bench_photos_real.py OUT [--truth IDR_FOLDER]` scores a `photos` run.

OUT is the folder `python -m backend photos PHOTOS --out OUT` wrote (OUT/job at least; OUT/mesh.obj when the
reconstruction ran). With --truth (an IDR/NeuS layout with the published cameras and masks, e.g. DTU scan65 from
jingz666/NeuF), prints the rotation error of the cameras found against the published ones after the similarity
the camera centres fix, and the IoU of the masks found against the published masks. Always writes
OUT/real.png: photo | mask found | reconstruction (when there is one), for a few photos, in their cameras.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A bool mask resampled (area average, then > 0.5) to shape (H, W)."""
    import cv2

    return cv2.resize(mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA) > 0.5


def score_against(job_dir: Path, truth_dir: Path) -> dict:
    """Cameras and masks of the photos run against a published IDR layout (views matched by file stem)."""
    from backend.capture.evaluate import align_cameras
    from backend.io.idr import load_idr
    from backend.io.job import load_job

    ours = {v.name: v for v in load_job(job_dir).views}
    truth = {v.name: v for v in load_idr(truth_dir).views}
    names = sorted(set(ours) & set(truth))
    rot, centre, _ = align_cameras([ours[n].R for n in names], [ours[n].t for n in names],
                                   [truth[n].R for n in names], [truth[n].t for n in names])
    ious = []
    for n in names:
        true = resize_mask(truth[n].mask, ours[n].mask.shape)
        ious.append(float((true & ours[n].mask).sum() / max((true | ours[n].mask).sum(), 1)))
    spread = np.ptp(np.stack([truth[n].center for n in names]), axis=0).max()
    return {"matched": len(names), "published": len(truth), "rotation_deg_median": float(np.median(rot)),
            "rotation_deg_max": float(rot.max()), "centre_error_median_of_spread": float(np.median(centre) / spread),
            "mask_iou_mean": float(np.mean(ious)), "mask_iou_min": float(np.min(ious)),
            "mask_iou_median": float(np.median(ious))}


def picture(out: Path, count: int = 3) -> Path:
    """OUT/real.png: rows of photo | mask found | reconstruction (grey shading) in `count` photos' cameras."""
    from PIL import Image

    from backend.io.job import load_job
    from backend.mesh.metrics import load_mesh
    from backend.raster import get_rasterizer
    from bench_reconstruct import shaded

    views = load_job(out / "job").views
    mesh = load_mesh(out / "mesh.obj") if (out / "mesh.obj").is_file() else None
    rasterizer = get_rasterizer("auto", "cpu")
    rows = []
    for view in [views[i] for i in np.linspace(0, len(views) - 1, count).round().astype(int)]:
        img = np.asarray(view.image, dtype=np.float64)[..., :3]
        panels = [img, np.where(view.mask[..., None], img, 0.2 * img)]
        if mesh is not None:
            panels.append(shaded(*mesh, view, rasterizer))
        rows.append(np.concatenate(panels, axis=1))
    path = out / "real.png"
    Image.fromarray((np.clip(np.concatenate(rows, axis=0), 0, 1) * 255).astype(np.uint8)).save(path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Score a photos run on real photographs and draw its picture."""
    ap = argparse.ArgumentParser(prog="python benchmarks/bench_photos_real.py", description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the photos command's OUT folder")
    ap.add_argument("--truth", type=Path, help="IDR/NeuS folder with the published cameras and masks")
    ap.add_argument("--rows", type=int, default=3, help="photos in the picture")
    args = ap.parse_args(argv)
    record: dict = {}
    sfm = json.loads((args.out / "job" / "sfm.json").read_text())
    record.update(registered=len(sfm["registered"]), unregistered=sfm["unregistered"], left_out=sfm["left_out"],
                  reprojection_px=sfm["reprojection_px"], points=sfm["points"], sfm_seconds=sfm["seconds"])
    if args.truth:
        record.update(score_against(args.out / "job", args.truth))
    record["picture"] = str(picture(args.out, args.rows))
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
