"""Mesh comparison metrics: Chamfer L1/L2, Hausdorff, F-score, normal consistency, volumetric IoU.

Definitions (the add-on's `blender_addon/compare_math.py` uses the very same ones, so the two
agree within sampling noise):

- A is the reference, B the compared mesh. `diag` is the diagonal of A's bounding box.
- Each surface is sampled with `sample_surface(v, f, n, seed)`: area-weighted triangle choice by
  inverse CDF of `default_rng(seed).random(n)`, then uniform barycentrics (sqrt trick), seed 0.
- Distances are point-to-surface and exact: d_ab = distance from A's samples to B's triangles,
  d_ba = from B's samples to A's triangles.
- chamfer_l1 = (mean d_ab + mean d_ba) / 2, chamfer_l2 = (mean d_ab^2 + mean d_ba^2) / 2, in scene
  units (squared for L2); the `_norm` variants divide by diag (diag^2 for L2).
- hausdorff = max(max d_ab, max d_ba) over the samples.
- precision = share of d_ba < t, recall = share of d_ab < t, fscore = 2PR / (P + R), with
  t = fscore_threshold * diag (default 1 % of the diagonal).
- normal_consistency = mean over both directions of |n_sample . n_nearest_triangle|.
- iou: both meshes closed (every edge, after welding equal positions, has exactly two faces);
  occupancy on a res^3 grid of cell centres over the union bounding box by scan-line parity
  along z; otherwise None with a note.

`chamfer(a_pts, b_pts, diag)` is the point-set variant (nearest sample, not nearest surface) for
point clouds and quick checks in tests and benchmarks.
"""
from __future__ import annotations

from pathlib import Path
import numpy as np

from backend.errors import JobError

DEFAULT_SAMPLES = 100_000
IOU_RESOLUTION = 64
_JITTER = np.array([1.2345678e-6, 2.3456789e-6])


def triangle_areas(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Area of each triangle."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)


def face_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Unit normal of each triangle (zero for degenerate ones)."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    n = np.cross(b - a, c - a)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


def sample_surface(v: np.ndarray, f: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` area-weighted random points on the triangles, and the triangle index of each."""
    v = np.asarray(v, dtype=np.float64)
    f = np.asarray(f, dtype=np.int64)
    areas = triangle_areas(v, f)
    total = areas.sum()
    if len(f) == 0 or not total > 0:
        raise JobError("the mesh has no surface (no faces, or all faces have zero area)",
                       "a point cloud cannot be compared surface-to-surface; mesh it first")
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(areas) / total
    fi = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(f) - 1)
    r1 = np.sqrt(rng.random(n))[:, None]
    r2 = rng.random(n)[:, None]
    a, b, c = v[f[fi, 0]], v[f[fi, 1]], v[f[fi, 2]]
    return (1 - r1) * a + r1 * (1 - r2) * b + r1 * r2 * c, fi


def bbox_diagonal(v: np.ndarray) -> float:
    """Length of the diagonal of the axis-aligned bounding box."""
    return float(np.linalg.norm(np.ptp(np.asarray(v, dtype=np.float64), axis=0)))


def point_to_surface(points: np.ndarray, v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact distance from each point to the triangle mesh: (distance, nearest triangle, closest point)."""
    import gpytoolbox

    sq, idx, lmb = gpytoolbox.squared_distance(np.asarray(points, dtype=np.float64),
                                               np.asarray(v, dtype=np.float64),
                                               np.asarray(f, dtype=np.int32), use_cpp=True)
    idx = np.asarray(idx, dtype=np.int64)
    closest = np.einsum("nk,nkd->nd", lmb, np.asarray(v, dtype=np.float64)[f[idx]])
    return np.sqrt(np.maximum(sq, 0.0)), idx, closest


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


def chamfer(a_pts: np.ndarray, b_pts: np.ndarray, diag: float, fscore_threshold: float = 0.01) -> dict:
    """Point-set Chamfer/Hausdorff/F-score between two point sets (nearest point, KD-tree)."""
    from scipy.spatial import cKDTree

    a_pts = np.asarray(a_pts, dtype=np.float64)
    b_pts = np.asarray(b_pts, dtype=np.float64)
    d_ab = cKDTree(b_pts).query(a_pts, workers=-1)[0]
    d_ba = cKDTree(a_pts).query(b_pts, workers=-1)[0]
    return distance_stats(d_ab, d_ba, diag, fscore_threshold)


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
    if len(f) == 0:
        return False
    fw = weld(v, f)
    a = np.concatenate([fw[:, 0], fw[:, 1], fw[:, 2]])
    b = np.concatenate([fw[:, 1], fw[:, 2], fw[:, 0]])
    keys = np.minimum(a, b) * (int(fw.max()) + 1) + np.maximum(a, b)
    _, counts = np.unique(keys, return_counts=True)
    return bool(np.all(counts == 2))


def occupancy_grid(v: np.ndarray, f: np.ndarray, lo: np.ndarray, hi: np.ndarray, res: int) -> np.ndarray:
    """Inside/outside of a closed mesh at the res^3 cell centres of [lo, hi] (scan-line parity along z)."""
    v = np.asarray(v, dtype=np.float64)
    f = np.asarray(f, dtype=np.int64)
    step = (hi - lo) / res
    origin = lo[:2] + 0.5 * step[:2] + _JITTER * step[:2]
    tri = v[f]
    gx = (tri[:, :, :2] - origin) / step[:2]
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


def volumetric_iou(va: np.ndarray, fa: np.ndarray, vb: np.ndarray, fb: np.ndarray, res: int = IOU_RESOLUTION) -> float:
    """Intersection over union of the volumes of two closed meshes on a res^3 grid."""
    allv = np.concatenate([va, vb])
    lo, hi = allv.min(axis=0), allv.max(axis=0)
    pad = 1e-3 * (hi - lo).max()
    lo, hi = lo - pad, hi + pad
    oa = occupancy_grid(va, fa, lo, hi, res)
    ob = occupancy_grid(vb, fb, lo, hi, res)
    union = np.count_nonzero(oa | ob)
    return float(np.count_nonzero(oa & ob) / union) if union else 0.0


def check_mesh(v: np.ndarray, f: np.ndarray, name: str) -> None:
    """Raise JobError for an empty mesh or a point cloud."""
    if len(v) == 0:
        raise JobError(f"{name} is empty (no vertices)", "pick a mesh with geometry")
    if len(f) == 0:
        raise JobError(f"{name} has vertices but no faces: it is a point cloud",
                       "surface metrics need faces; mesh the points first (e.g. Poisson reconstruction)")


def compare_meshes(va: np.ndarray, fa: np.ndarray, vb: np.ndarray, fb: np.ndarray,
                   fscore_threshold: float = 0.01, n_samples: int = DEFAULT_SAMPLES, seed: int = 0,
                   iou_resolution: int = IOU_RESOLUTION) -> dict:
    """All metrics between reference (va, fa) and compared (vb, fb) triangle meshes."""
    va, vb = np.asarray(va, dtype=np.float64), np.asarray(vb, dtype=np.float64)
    fa, fb = np.asarray(fa, dtype=np.int64), np.asarray(fb, dtype=np.int64)
    check_mesh(va, fa, "the reference mesh")
    check_mesh(vb, fb, "the compared mesh")
    pa, ia = sample_surface(va, fa, n_samples, seed)
    pb, ib = sample_surface(vb, fb, n_samples, seed)
    d_ab, near_b, _ = point_to_surface(pa, vb, fb)
    d_ba, near_a, _ = point_to_surface(pb, va, fa)
    out = distance_stats(d_ab, d_ba, bbox_diagonal(va), fscore_threshold)
    na, nb = face_normals(va, fa), face_normals(vb, fb)
    nc_ab = np.abs(np.sum(na[ia] * nb[near_b], axis=1)).mean()
    nc_ba = np.abs(np.sum(nb[ib] * na[near_a], axis=1)).mean()
    out["normal_consistency"] = float(0.5 * (nc_ab + nc_ba))
    out["n_samples"] = int(n_samples)
    out.update(iou_entry(va, fa, vb, fb, iou_resolution))
    return out


def iou_entry(va: np.ndarray, fa: np.ndarray, vb: np.ndarray, fb: np.ndarray, res: int) -> dict:
    """The `iou`, `closed_a`, `closed_b` and `iou_note` entries of a report."""
    ca, cb = is_closed(va, fa), is_closed(vb, fb)
    out: dict = {"closed_a": ca, "closed_b": cb, "iou": None, "iou_note": ""}
    if ca and cb:
        out["iou"] = volumetric_iou(va, fa, vb, fb, res)
    else:
        which = " and ".join(n for n, c in (("reference", ca), ("compared", cb)) if not c)
        out["iou_note"] = f"IoU needs closed meshes: the {which} mesh is not closed; IoU skipped"
    return out


def load_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of a mesh file (OBJ, PLY, STL, OFF, GLB...), scenes concatenated."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise JobError(f"mesh file not found: {path}", "check the path")
    try:
        loaded = trimesh.load(str(path), process=False)
    except Exception as exc:  # trimesh raises many types for unreadable files
        raise JobError(f"cannot read {path.name}: {exc}", "use OBJ, PLY, STL, OFF or glTF") from exc
    if isinstance(loaded, trimesh.Scene):
        geoms = list(loaded.dump()) if loaded.geometry else []
        meshes = [g for g in geoms if isinstance(g, trimesh.Trimesh)]
        if not meshes:
            clouds = [g for g in geoms if hasattr(g, "vertices")]
            v = np.concatenate([g.vertices for g in clouds]) if clouds else np.zeros((0, 3))
            return np.asarray(v, dtype=np.float64), np.zeros((0, 3), dtype=np.int64)
        loaded = trimesh.util.concatenate(meshes)
    v = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float64)
    f = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))), dtype=np.int64).reshape(-1, 3)
    return v, f


def compare_files(a_path: str | Path, b_path: str | Path, align: bool = False, fscore_threshold: float = 0.01,
                  n_samples: int = DEFAULT_SAMPLES, scale: bool = False, seed: int = 0) -> dict:
    """Metrics between the reference mesh file `a_path` and the compared one `b_path` (prints nothing)."""
    va, fa = load_mesh(a_path)
    vb, fb = load_mesh(b_path)
    check_mesh(va, fa, f"reference {Path(a_path).name}")
    check_mesh(vb, fb, f"compared {Path(b_path).name}")
    transform = np.eye(4)
    if align:
        from backend.align import align_meshes

        transform = align_meshes(vb, fb, va, fa, scale=scale, seed=seed)
        vb = vb @ transform[:3, :3].T + transform[:3, 3]
    out = compare_meshes(va, fa, vb, fb, fscore_threshold=fscore_threshold, n_samples=n_samples, seed=seed)
    out.update({"reference": str(a_path), "compared": str(b_path), "aligned": bool(align),
                "transform": transform.tolist()})
    return out

