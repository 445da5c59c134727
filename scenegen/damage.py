"""Damaged masks for tests and benchmarks: a disk-shaped hole punched into the masks of some views of a job.

A punched hole stands for a highlight or a segmentation slip that one view's mask gets wrong: the view then
says that a part of the object is empty. The job's images keep their pixels; the hole is cut from the mask
(the alpha channel, or the mask file when the view has one).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np


def punch_mask(mask: np.ndarray, center: tuple[float, float], radius: float) -> np.ndarray:
    """The mask with the pixels whose centres lie within `radius` of `center` (row, col) set to background;
    works on bool masks and on 8-bit alpha channels alike."""
    rows, cols = np.ogrid[: mask.shape[0], : mask.shape[1]]
    disk = (rows + 0.5 - center[0]) ** 2 + (cols + 0.5 - center[1]) ** 2 <= radius**2
    out = np.array(mask, copy=True)
    out[disk] = 0
    return out


def tube_point(vertices: np.ndarray) -> np.ndarray:
    """A point on the core circle of a torus-like ring of vertices: its centre moved along the ring plane's first
    axis by the mean distance of the vertices from the ring's axis."""
    v = np.asarray(vertices, dtype=np.float64)
    centre = v.mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov((v - centre).T))
    axis, first = vecs[:, 0], vecs[:, 2]
    d = v - centre
    radial = np.linalg.norm(d - np.outer(d @ axis, axis), axis=1)
    return centre + float(radial.mean()) * first


def project(K: np.ndarray, R: np.ndarray, t: np.ndarray, point: np.ndarray) -> tuple[float, float]:
    """(row, col) of a world point in an OpenCV camera."""
    x = np.asarray(K, float) @ (np.asarray(R, float) @ np.asarray(point, float) + np.asarray(t, float))
    return float(x[1] / x[2]), float(x[0] / x[2])


def disk_inside(mask: np.ndarray, center: tuple[float, float], radius: float, margin: float = 2.0) -> bool:
    """Whether a disk of radius + margin pixels around center lies wholly inside the mask (a punch there leaves an
    enclosed hole)."""
    mask = np.asarray(mask, bool)
    disk = ~punch_mask(np.ones(mask.shape, dtype=bool), center, radius + margin)
    r, c = center
    inside_image = margin + radius <= min(r, c, mask.shape[0] - r, mask.shape[1] - c)
    return bool(inside_image and disk.any() and mask[disk].all())


def enclosed_views(views: list, point: np.ndarray, radius_px: float, k: int) -> list[int]:
    """k view indices, spread over the list, where a disk of radius_px at the world point's projection lies
    inside the mask (views with K, R, t, mask); fewer when fewer qualify."""
    ok = [i for i, v in enumerate(views) if disk_inside(v.mask, project(v.K, v.R, v.t, point), radius_px)]
    if len(ok) <= k:
        return ok
    return [ok[int(j * len(ok) / k)] for j in range(k)]


def punch_job(src: Path, dst: Path, views: list[int], point: np.ndarray, radius_px: float) -> list[str]:
    """Copy the job folder src to dst with a disk of radius_px punched into the masks of the views (indices in
    job.json) where the world point projects; returns the punched views' names."""
    src, dst = Path(src), Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    job = json.loads((dst / "job.json").read_text(encoding="utf-8"))
    names = []
    for i in views:
        entry = job["views"][i]
        center = project(np.array(entry["K"]), np.array(entry["R"]), np.array(entry["t"]), point)
        mask_rel = entry.get("mask") or (f"masks/{entry['name']}.png"
                                         if (dst / "masks" / f"{entry['name']}.png").is_file() else None)
        if mask_rel:
            mask = iio.imread(dst / mask_rel)
            iio.imwrite(dst / mask_rel, punch_mask(mask, center, radius_px))
        else:
            rgba = iio.imread(dst / entry["image"])
            rgba[..., 3] = punch_mask(rgba[..., 3], center, radius_px)
            iio.imwrite(dst / entry["image"], rgba)
        names.append(entry["name"])
    return names
