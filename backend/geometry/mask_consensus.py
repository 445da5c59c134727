"""Masks as evidence: holes in one view's mask that every other view contradicts are repaired for the hull.

A hole punched into one mask (a highlight, a segmentation slip) carves a tunnel through the visual hull
that no other view asks for. The voxels of such a tunnel are carved by that one view alone; a true hole
(the middle of a torus) is seen through by several views. So an enclosed hole of a view's mask is filled
for the hull when at least `min_share` of its pixels look along rays that cross `min_steps` grid steps
carved by this view only; holes touching the image border (the outline's notches) are left alone.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import label

from backend.geometry.visual_hull import Silhouette, grid_axes, sample_mask, silhouettes

MIN_STEPS = 4  # grid steps along a hole pixel's ray carved by this view alone for the pixel to count
MIN_SHARE = 0.5  # share of a hole's pixels that must count for the hole to be repaired
CONSENSUS_RES = 96  # grid of the vote (the hull's box)
MAX_RAYS = 2000  # rays sampled per hole


def carved_by_one(sils: list[Silhouette], lo: np.ndarray, hi: np.ndarray, res: int) -> np.ndarray:
    """Per voxel of the res^3 grid over [lo, hi], the index of the one view that carves it; -1 where none or
    several do (a voxel is carved where its bilinear mask value is under 0.5, or off the image)."""
    axes = grid_axes(np.asarray(lo, float), np.asarray(hi, float), res)
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    count = np.zeros(len(pts), dtype=np.uint16)
    who = np.full(len(pts), -1, dtype=np.int16)
    for i, sil in enumerate(sils):
        carved = sample_mask(sil, pts) < 0.5
        count += carved
        who[carved] = i
    who[count != 1] = -1
    return who.reshape(res, res, res)


def ray_depth(sil: Silhouette, lone: np.ndarray, lo: np.ndarray, hi: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Per pixel (row, col), the number of grid steps along its ray (through the pixel centre) that fall in a
    voxel of `lone` (the res^3 voxels this view alone carves, over [lo, hi])."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    res = lone.shape[0]
    spacing = (hi - lo) / (res - 1)
    uv1 = np.stack([pixels[:, 1] + 0.5, pixels[:, 0] + 0.5, np.ones(len(pixels))], axis=1)
    d = uv1 @ np.linalg.inv(sil.K).T @ sil.R
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    o = sil.center
    with np.errstate(divide="ignore", invalid="ignore"):
        ta = (lo - spacing / 2 - o) / d
        tb = (hi + spacing / 2 - o) / d
    t0 = np.nanmax(np.where(np.isnan(ta), -np.inf, np.minimum(ta, tb)), axis=1).clip(min=0.0)
    t1 = np.nanmin(np.where(np.isnan(tb), np.inf, np.maximum(ta, tb)), axis=1)
    step = float(spacing.min())
    n = int(np.ceil(max(float(np.max(t1 - t0, initial=0.0)), 0.0) / step)) + 1
    t = t0[:, None] + step * np.arange(n)[None, :]
    valid = t <= t1[:, None]
    p = o + t[..., None] * d[:, None, :]
    idx = np.clip(np.rint((p - lo) / spacing).astype(np.int64), 0, res - 1)
    hit = lone[idx[..., 0], idx[..., 1], idx[..., 2]] & valid
    return hit.sum(axis=1)


def mask_holes(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Enclosed holes of a mask: background components (8-connected) that do not touch the image border, as
    a label image (0 elsewhere, holes 1..n) and n."""
    labels, n = label(~np.asarray(mask, bool), structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return labels, 0
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    keep = np.ones(n + 1, dtype=bool)
    keep[border] = False
    keep[0] = False
    new_id = np.zeros(n + 1, dtype=np.int32)
    new_id[keep] = np.arange(1, int(keep.sum()) + 1)
    return new_id[labels], int(keep.sum())


def hole_is_contradicted(depths: np.ndarray, min_steps: int = MIN_STEPS, min_share: float = MIN_SHARE) -> bool:
    """Whether a hole is the view's mistake: at least min_share of its pixels' rays cross min_steps grid steps
    that this view carves alone."""
    return len(depths) > 0 and float(np.mean(depths >= min_steps)) >= min_share


def repair_region(holes: np.ndarray, ids: list[int]) -> np.ndarray:
    """Bool image of the pixels to fill: the holes (of a `mask_holes` label image) with these ids."""
    return np.isin(holes, np.asarray(ids, dtype=holes.dtype)) if ids else np.zeros(holes.shape, dtype=bool)


def contradicted_masks(views: list, lo: np.ndarray, hi: np.ndarray, res: int = CONSENSUS_RES,
                       min_steps: int = MIN_STEPS, min_share: float = MIN_SHARE, max_rays: int = MAX_RAYS,
                       seed: int = 0) -> list[np.ndarray | None]:
    """Per view (K, R, t, mask), the bool image of its enclosed holes that the other views contradict (to be
    filled for the hull), or None where it has none; the vote runs on a res^3 grid over [lo, hi]."""
    sils = silhouettes(views, dilate_px=0)
    who = carved_by_one(sils, lo, hi, res)
    rng = np.random.default_rng(seed)
    out: list[np.ndarray | None] = []
    for i, sil in enumerate(sils):
        holes, n = mask_holes(sil.mask)
        lone = who == i
        if n == 0 or not lone.any():
            out.append(None)
            continue
        flat = np.flatnonzero(holes)
        ids = holes.ravel()[flat]
        order = np.argsort(ids, kind="stable")
        starts = np.searchsorted(ids[order], np.arange(1, n + 1))
        ends = np.append(starts[1:], len(order))
        repaired = []
        for k, (a, b) in enumerate(zip(starts, ends), start=1):
            members = flat[order[a:b]]
            if len(members) > max_rays:
                members = rng.choice(members, max_rays, replace=False)
            pixels = np.stack(np.unravel_index(members, holes.shape), axis=1)
            if hole_is_contradicted(ray_depth(sil, lone, lo, hi, pixels), min_steps, min_share):
                repaired.append(k)
        out.append(repair_region(holes, repaired) if repaired else None)
    return out
