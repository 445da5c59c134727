"""Pure-numpy mesh maths shared by the backend and the add-on (numpy and the standard library only).

Blender's Python has numpy but neither scipy, torch nor trimesh, so the add-on's
`blender_addon/compare_math.py` imports this module (bundled as `photomesh/backend/mesh/meshmath.py`
in the add-on zip) and `backend/mesh/metrics.py` / `backend/mesh/align.py` import it too: one definition of
surface sampling, the distance statistics, closedness, volumetric IoU and the PCA + ICP alignment,
so that the add-on and the backend agree. Nearest-surface queries are passed in as callables
(gpytoolbox in the backend, `mathutils.bvhtree` in Blender).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

DEFAULT_SAMPLES = 100_000
IOU_RESOLUTION = 64
_JITTER = np.array([1.2345678e-6, 2.3456789e-6])
_SIGNS = ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1))

NearestFn = Callable[[np.ndarray], np.ndarray]
SurfaceDistanceFn = Callable[[np.ndarray], tuple]
SampleFn = Callable[[np.ndarray, np.ndarray, int, int], tuple[np.ndarray, np.ndarray]]


class MeshInputError(ValueError):
    """A mesh that cannot be compared (empty, or a point cloud)."""


def _cross_edges(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Components of (b - a) x (c - a) for each triangle (a, b, c), computed per coordinate."""
    v = np.asarray(v, dtype=np.float64)
    f = np.asarray(f, dtype=np.int64)
    x, y, z = (np.ascontiguousarray(v[:, k]) for k in range(3))
    i, j, k = (np.ascontiguousarray(f[:, c]) for c in range(3))
    ax, ay, az = x[i], y[i], z[i]
    ux, uy, uz = x[j] - ax, y[j] - ay, z[j] - az
    wx, wy, wz = x[k] - ax, y[k] - ay, z[k] - az
    return uy * wz - uz * wy, uz * wx - ux * wz, ux * wy - uy * wx


def triangle_areas(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Area of each triangle."""
    nx, ny, nz = _cross_edges(v, f)
    return 0.5 * np.sqrt(nx * nx + ny * ny + nz * nz)


def face_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Unit normal of each triangle (zero for degenerate ones)."""
    n = np.stack(_cross_edges(v, f), axis=1)
    length = np.sqrt(np.einsum("ij,ij->i", n, n))[:, None]
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


def bbox_diagonal(v: np.ndarray) -> float:
    """Length of the diagonal of the axis-aligned bounding box (0 for no vertices)."""
    return float(np.linalg.norm(np.ptp(np.asarray(v, dtype=np.float64), axis=0))) if len(v) else 0.0


def sample_surface(v: np.ndarray, f: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` area-weighted random points on the triangles, and the triangle index of each."""
    v = np.asarray(v, dtype=np.float64)
    f = np.asarray(f, dtype=np.int64)
    areas = triangle_areas(v, f)
    total = areas.sum()
    if len(f) == 0 or not total > 0:
        raise MeshInputError("the mesh has no surface (no faces, or all faces have zero area)")
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(areas) / total
    fi = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(f) - 1)
    r1 = np.sqrt(rng.random(n))[:, None]
    r2 = rng.random(n)[:, None]
    a, b, c = v[f[fi, 0]], v[f[fi, 1]], v[f[fi, 2]]
    return (1 - r1) * a + r1 * (1 - r2) * b + r1 * r2 * c, fi


def distance_stats(d_ab: np.ndarray, d_ba: np.ndarray, diag: float, fscore_threshold: float = 0.01) -> dict:
    """Chamfer L1/L2, Hausdorff and F-score from the two one-sided distance arrays."""
    diag = float(diag) if diag > 0 else 1.0
    t = fscore_threshold * diag
    recall = float(np.mean(d_ab < t))
    precision = float(np.mean(d_ba < t))
    fscore = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    l1 = 0.5 * (float(np.mean(d_ab)) + float(np.mean(d_ba)))
    l2 = 0.5 * (float(np.mean(d_ab ** 2)) + float(np.mean(d_ba ** 2)))
    haus = max(float(np.max(d_ab)), float(np.max(d_ba)))
    return {
        "diag": diag,
        "chamfer_l1": l1, "chamfer_l1_norm": l1 / diag,
        "chamfer_l2": l2, "chamfer_l2_norm": l2 / diag ** 2,
        "hausdorff": haus, "hausdorff_norm": haus / diag,
        "accuracy": float(np.mean(d_ba)), "completeness": float(np.mean(d_ab)),
        "fscore": fscore, "precision": precision, "recall": recall,
        "fscore_threshold": t, "fscore_threshold_rel": fscore_threshold,
    }


def weld(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Faces re-indexed so that vertices at exactly the same position share one index."""
    v = np.asarray(v)
    order = np.lexsort(v.T[::-1])
    sv = v[order]
    new = np.ones(len(v), dtype=bool)
    new[1:] = np.any(sv[1:] != sv[:-1], axis=1)
    ids = np.empty(len(v), dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids[np.asarray(f, dtype=np.int64)]


def is_closed(v: np.ndarray, f: np.ndarray) -> bool:
    """True when, after welding equal positions, every edge belongs to exactly two triangles."""
    # Sorted edge keys: every run has length two exactly when they pair up and the pairs differ.
    if len(f) == 0:
        return False
    fw = weld(v, f)
    a = np.concatenate([fw[:, 0], fw[:, 1], fw[:, 2]])
    b = np.concatenate([fw[:, 1], fw[:, 2], fw[:, 0]])
    keys = np.sort(np.minimum(a, b) * (int(fw.max()) + 1) + np.maximum(a, b))
    if len(keys) % 2:
        return False
    return bool(np.array_equal(keys[0::2], keys[1::2]) and not np.any(keys[1:-1:2] == keys[2::2]))


def occupancy_grid(v: np.ndarray, f: np.ndarray, lo: np.ndarray, hi: np.ndarray, res: int) -> np.ndarray:
    """Inside/outside of a closed mesh at the res^3 cell centres of [lo, hi] (scan-line parity along z)."""
    v = np.asarray(v, dtype=np.float64)
    f = np.asarray(f, dtype=np.int64)
    step = (hi - lo) / res
    origin = lo[:2] + 0.5 * step[:2] + _JITTER * step[:2]
    gv = (v[:, :2] - origin) / step[:2]
    first = np.clip(np.ceil(gv), 0, res).astype(np.int32)
    last = np.clip(np.floor(gv), -1, res - 1).astype(np.int32)
    f0, f1, f2 = (np.ascontiguousarray(f[:, k]) for k in range(3))
    spans = []
    for k in range(2):
        fk, lk = np.ascontiguousarray(first[:, k]), np.ascontiguousarray(last[:, k])
        spans.append(np.maximum(np.maximum(lk[f0], lk[f1]), lk[f2]) - np.minimum(np.minimum(fk[f0], fk[f1]), fk[f2]))
    f = f[np.flatnonzero((spans[0] >= 0) & (spans[1] >= 0))]
    tri = v[f]
    gx = gv[f]
    i0 = np.clip(np.ceil(gx.min(axis=1)), 0, res).astype(np.int64)
    i1 = np.clip(np.floor(gx.max(axis=1)), -1, res - 1).astype(np.int64)
    nx = np.maximum(i1[:, 0] - i0[:, 0] + 1, 0)
    ny = np.maximum(i1[:, 1] - i0[:, 1] + 1, 0)
    counts = nx * ny
    ti = np.repeat(np.arange(len(f)), counts)
    off = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    cx = i0[ti, 0] + off % np.maximum(nx[ti], 1)
    cy = i0[ti, 1] + off // np.maximum(nx[ti], 1)
    p = np.stack([cx, cy], axis=1).astype(np.float64)
    a, b, c = gx[ti, 0], gx[ti, 1], gx[ti, 2]
    den = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
    ok = np.abs(den) > 1e-300
    den = np.where(ok, den, 1.0)
    w0 = ((b[:, 1] - c[:, 1]) * (p[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (p[:, 1] - c[:, 1])) / den
    w1 = ((c[:, 1] - a[:, 1]) * (p[:, 0] - c[:, 0]) + (a[:, 0] - c[:, 0]) * (p[:, 1] - c[:, 1])) / den
    w2 = 1 - w0 - w1
    hit = ok & (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
    tz = tri[ti, :, 2]
    z = w0 * tz[:, 0] + w1 * tz[:, 1] + w2 * tz[:, 2]
    col = (cx * res + cy)[hit]
    zn = np.clip((z[hit] - lo[2]) / (hi[2] - lo[2]), 0.0, 0.999999)
    keys = np.sort(col + zn)
    zc = (np.arange(res) + 0.5) / res
    cells = (np.arange(res * res)[:, None] + zc[None, :]).reshape(-1)
    below = np.searchsorted(keys, cells) - np.searchsorted(keys, np.repeat(np.arange(res * res), res).astype(np.float64))
    return (below % 2 == 1).reshape(res, res, res)


def solid_grid(v: np.ndarray, f: np.ndarray, lo: np.ndarray, hi: np.ndarray, res: int) -> np.ndarray:
    """Inside of a closed mesh made of one or more parts: the union of each connected part's inside.

    Parity over the whole mesh would count where two parts of an assembly overlap (a teapot's spout running on into
    its body, a nested shell) as outside; each part's own parity, united, is the solid the mesh bounds.
    """
    from .interior import components

    f = np.asarray(f, dtype=np.int64)
    label = components(weld(v, f).ravel(), np.repeat(np.arange(len(f)), 3), len(f))
    parts = np.unique(label)
    if len(parts) == 1:
        return occupancy_grid(v, f, lo, hi, res)
    inside = np.zeros((res, res, res), dtype=bool)
    for part in parts:
        inside |= occupancy_grid(v, f[label == part], lo, hi, res)
    return inside


def volumetric_iou(va: np.ndarray, fa: np.ndarray, vb: np.ndarray, fb: np.ndarray, res: int = IOU_RESOLUTION) -> float:
    """Intersection over union of the volumes of two closed meshes (each possibly of overlapping parts), res^3 grid."""
    allv = np.concatenate([va, vb])
    lo, hi = allv.min(axis=0), allv.max(axis=0)
    pad = 1e-3 * (hi - lo).max()
    lo, hi = lo - pad, hi + pad
    oa = solid_grid(va, fa, lo, hi, res)
    ob = solid_grid(vb, fb, lo, hi, res)
    union = np.count_nonzero(oa | ob)
    return float(np.count_nonzero(oa & ob) / union) if union else 0.0


def iou_entry(va: np.ndarray, fa: np.ndarray, vb: np.ndarray, fb: np.ndarray, res: int = IOU_RESOLUTION) -> dict:
    """The `iou`, `closed_a`, `closed_b` and `iou_note` entries of a report."""
    ca, cb = is_closed(va, fa), is_closed(vb, fb)
    out: dict = {"closed_a": ca, "closed_b": cb, "iou": None, "iou_note": ""}
    if ca and cb:
        out["iou"] = volumetric_iou(va, fa, vb, fb, res)
    else:
        which = " and ".join(n for n, c in (("reference", ca), ("compared", cb)) if not c)
        out["iou_note"] = f"IoU needs closed meshes: the {which} mesh is not closed; IoU skipped"
    return out


def surface_metrics(va: np.ndarray, fa: np.ndarray, vb: np.ndarray, fb: np.ndarray,
                    to_a: SurfaceDistanceFn, to_b: SurfaceDistanceFn, fscore_threshold: float = 0.01,
                    n_samples: int = DEFAULT_SAMPLES, seed: int = 0, iou_resolution: int = IOU_RESOLUTION,
                    sample: SampleFn = sample_surface, solid_a: np.ndarray | None = None) -> dict:
    """All metrics between checked meshes; `to_a`/`to_b` give (distance, nearest triangle, ...) to A/B.

    `solid_a`: A's whole triangles for the IoU when `fa` is only a part of them (its outer surface).
    """
    pa, ia = sample(va, fa, n_samples, seed)
    pb, ib = sample(vb, fb, n_samples, seed)
    d_ab, near_b = to_b(pa)[:2]
    d_ba, near_a = to_a(pb)[:2]
    out = distance_stats(d_ab, d_ba, bbox_diagonal(va), fscore_threshold)
    fa, fb = np.asarray(fa), np.asarray(fb)
    nc_ab = np.abs(np.sum(face_normals(va, fa[ia]) * face_normals(vb, fb[near_b]), axis=1)).mean()
    nc_ba = np.abs(np.sum(face_normals(vb, fb[ib]) * face_normals(va, fa[near_a]), axis=1)).mean()
    out["normal_consistency"] = float(0.5 * (nc_ab + nc_ba))
    out["n_samples"] = int(n_samples)
    out.update(iou_entry(va, fa if solid_a is None else np.asarray(solid_a), vb, fb, iou_resolution))
    return out


def umeyama(src: np.ndarray, dst: np.ndarray, scale: bool = False) -> np.ndarray:
    """4x4 similarity (rotation, translation, uniform scale if asked) minimising |T src - dst|^2."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(xd.T @ xs / len(src))
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[2] = -1
    r = u @ np.diag(d) @ vt
    s = float((sig * d).sum() / (xs ** 2).sum(axis=1).mean()) if scale else 1.0
    t = np.eye(4)
    t[:3, :3] = s * r
    t[:3, 3] = mu_d - s * r @ mu_s
    return t


def apply(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Points transformed by a 4x4 matrix."""
    return p @ t[:3, :3].T + t[:3, 3]


def pca_starts(src: np.ndarray, dst: np.ndarray, scale: bool = False) -> list[np.ndarray]:
    """Start transforms: centroid shift, then the four proper rotations matching the PCA axes."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    ws, es = np.linalg.eigh(np.cov((src - mu_s).T))
    wd, ed = np.linalg.eigh(np.cov((dst - mu_d).T))
    s = float(np.sqrt(wd.sum() / ws.sum())) if scale and ws.sum() > 0 else 1.0
    shift = np.eye(4)
    shift[:3, 3] = mu_d - mu_s
    starts = [shift]
    for signs in _SIGNS:
        r = ed @ np.diag(signs) @ es.T
        if np.linalg.det(r) < 0:
            r = ed @ np.diag(signs) @ np.diag([1, 1, -1]) @ es.T
        t = np.eye(4)
        t[:3, :3] = s * r
        t[:3, 3] = mu_d - s * r @ mu_s
        starts.append(t)
    return starts


def icp(src: np.ndarray, nearest: NearestFn, start: np.ndarray, iters: int = 30, scale: bool = False,
        tol: float = 1e-7) -> tuple[np.ndarray, float]:
    """Point-to-surface ICP from `start`: (transform, final mean distance)."""
    t = start.copy()
    prev = np.inf
    err = np.inf
    for _ in range(iters):
        moved = apply(t, src)
        target = nearest(moved)
        err = float(np.linalg.norm(target - moved, axis=1).mean())
        if prev - err < tol * max(prev, 1e-30):
            break
        prev = err
        t = umeyama(src, target, scale)
    return t, err


def align_points(src: np.ndarray, dst: np.ndarray, nearest: NearestFn, scale: bool = False,
                 iters: int = 40, probe_iters: int = 8) -> np.ndarray:
    """Best transform of sample points `src` onto the surface behind `nearest` (dst: its samples)."""
    best, best_err = np.eye(4), np.inf
    for start in pca_starts(src, dst, scale):
        t, err = icp(src, nearest, start, probe_iters, scale)
        if err < best_err:
            best, best_err = t, err
    return icp(src, nearest, best, iters, scale)[0]
