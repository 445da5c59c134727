"""Writes what the photos command found (cameras, masks, sparse points, the SfM report) as a job folder."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np


def points_ply_bytes(points: np.ndarray, colors: np.ndarray | None) -> bytes:
    """Binary little-endian PLY of a coloured point cloud (x y z float, red green blue uchar)."""
    p = np.ascontiguousarray(points, dtype="<f4").reshape(-1, 3)
    c = (np.full((len(p), 3), 200, np.uint8) if colors is None
         else np.ascontiguousarray(colors, dtype=np.uint8).reshape(-1, 3))
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(p)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n").encode()
    rows = np.empty(len(p), dtype=[("p", "<f4", (3,)), ("c", "u1", (3,))])
    rows["p"], rows["c"] = p, c
    return header + rows.tobytes()


def write_photo_job(job_dir: Path, views: list[dict], images: list[Path], masks: list[np.ndarray],
                    bbox: tuple[np.ndarray, np.ndarray], settings: dict, points: np.ndarray,
                    colors: np.ndarray | None, sfm_report: dict, floor: dict | None = None) -> Path:
    """Write OUT/job (job.json, images/<stem>.<ext>, masks/<stem>.png, points.ply, sfm.json) in a staging
    folder, then rename it into place, so a cancelled run never leaves a half-written job.

    `views` holds name, K, R, t, width, height per view; `images[i]` is the undistorted photo copied in;
    `floor` ({"normal", "offset"} in the job frame), when found, goes into job.json.
    """
    job_dir = Path(job_dir).resolve()
    job_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{job_dir.name}.tmp-", dir=job_dir.parent))
    try:
        (staging / "images").mkdir()
        (staging / "masks").mkdir()
        entries = []
        for view, src, mask in zip(views, images, masks):
            name = view["name"]
            image_rel = f"images/{name}{Path(src).suffix.lower()}"
            shutil.copyfile(src, staging / image_rel)
            mask_rel = f"masks/{name}.png"
            iio.imwrite(staging / mask_rel, np.where(np.asarray(mask, bool), 255, 0).astype(np.uint8))
            entries.append({"name": name, "image": image_rel, "mask": mask_rel,
                            "width": int(view["width"]), "height": int(view["height"]),
                            "K": np.asarray(view["K"], float).tolist(), "R": np.asarray(view["R"], float).tolist(),
                            "t": np.asarray(view["t"], float).tolist()})
        job = {"version": 1, "views": entries,
               "bbox": {"min": np.asarray(bbox[0], float).tolist(), "max": np.asarray(bbox[1], float).tolist()},
               "settings": settings}
        if floor is not None:
            job["floor"] = floor
        (staging / "job.json").write_text(json.dumps(job, indent=1), encoding="utf-8")
        (staging / "points.ply").write_bytes(points_ply_bytes(points, colors))
        (staging / "sfm.json").write_text(json.dumps(sfm_report, indent=1), encoding="utf-8")
        os.chmod(staging, 0o755)
        if job_dir.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{job_dir.name}.old-", dir=job_dir.parent))
            os.rmdir(trash)
            os.replace(job_dir, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(staging, job_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return job_dir
