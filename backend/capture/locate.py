"""The object a photo capture orbits: where the cameras look, the floor under it, an upright frame and its box.

The job frame: z points up (the floor's normal when a floor is found, else the direction the cameras'
own "up" agrees on) and the object's box is centred on the origin. The cameras stand on the -y side:
for a full orbit x runs along the object's longest horizontal extent and camera 0 is at -y; for a
capture from one side only, +y points away from the cameras (as Blender's front view looks). One
unit is the largest side of the object's tight box: its sparse points, reaching down to the floor
when it stands on one, and, when seen from one side, reaching back by up to its width (the hidden
back). `bbox_min/max` add a margin to that tight box.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from backend.runtime.errors import JobError

FLOOR_TOLERANCE = 0.006  # plane inlier distance, as a fraction of the cameras' median distance to the object
NEAR_RADIUS = 0.5  # object points lie within this fraction of the cameras' distance from where they look
CLUSTER_GAP = 0.04  # sparse points closer than this fraction of the camera distance join one cluster
MIN_OBJECT_POINTS = 20
CORE_SHARE = 0.25  # clusters with this share of the main cluster's points near the centre join the object
FLOOR_MAX_TILT = 30.0  # degrees between a floor's normal and the cameras' up (they hold the camera level)
PORTRAIT_MARGIN = 4.0  # the y axes must fix the vertical this many times more tightly than the x axes (held_rolled)
MOST_BELOW_FLOOR = 0.1  # share of the nearby points that may lie under a floor (noise, an edge seen past it)
BELOW_RADIUS = 0.5  # a floor's support and the points under it count within this (times the cameras' distance)
#                     of the object's foot: past a table's edge the room's floor shows, below and larger
ONE_SIDED = 0.4  # camera_side length above which the capture saw the object from one side only


@dataclass
class ObjectFrame:
    """Where the object is: a similarity to the job frame, its box there, its points and the floor."""

    transform: np.ndarray  # (4, 4) similarity: SfM world -> job frame (z up, object at the origin, unit = box side)
    bbox_min: np.ndarray  # (3,) the object's box in the job frame, margin included
    bbox_max: np.ndarray
    object_points: np.ndarray  # (M,) bool over the input points: the object's sparse points
    floor: tuple[np.ndarray, float] | None  # plane {X : normal . X = offset} in the job frame, if found


def camera_vectors(Rs: Sequence[np.ndarray], ts: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres, optical axes (+z of the camera) and up vectors (-y) in the world of OpenCV cameras."""
    Rs = np.asarray(Rs, dtype=np.float64)
    ts = np.asarray(ts, dtype=np.float64)
    centers = -np.einsum("nji,nj->ni", Rs, ts)
    return centers, Rs[:, 2, :].copy(), -Rs[:, 1, :]


def apply_similarity(transform: np.ndarray, R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera (R, t) of a camera re-expressed in the frame X' = transform @ X (same pixels)."""
    A = np.asarray(transform, dtype=np.float64)
    s = np.cbrt(np.linalg.det(A[:3, :3]))
    rot = A[:3, :3] / s
    R2 = np.asarray(R, dtype=np.float64) @ rot.T
    t2 = s * np.asarray(t, dtype=np.float64) - R2 @ A[:3, 3]
    return R2, t2


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, 3) mapped by a 4x4 similarity."""
    A = np.asarray(transform, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ A[:3, :3].T + A[:3, 3]


def convergence_point(centers: np.ndarray, axes: np.ndarray, iterations: int = 10) -> tuple[np.ndarray, float]:
    """The point nearest all optical axes (robust least squares) and how well the axes pin it (0..1).

    The second value is the smallest eigenvalue of the mean projector onto the axes' normal planes:
    near 0 when the axes are nearly parallel (a forward-facing capture), 1 for axes in every direction.
    """
    d = axes / np.linalg.norm(axes, axis=1, keepdims=True)
    w = np.ones(len(centers))
    proj = np.eye(3)[None] - d[:, :, None] * d[:, None, :]
    point = centers.mean(axis=0)
    for _ in range(iterations):
        A = np.einsum("n,nij->ij", w, proj)
        b = np.einsum("n,nij,nj->i", w, proj, centers)
        point = np.linalg.lstsq(A, b, rcond=None)[0]
        r = np.linalg.norm(np.einsum("nij,nj->ni", proj, point - centers), axis=1)
        scale = max(np.median(r), 1e-9 * np.median(np.linalg.norm(centers - point, axis=1)) + 1e-12)
        w = 1.0 / (1.0 + (r / (2.0 * scale)) ** 2)
    conditioning = float(np.linalg.eigvalsh(proj.mean(axis=0))[0]) / 0.5
    return point, min(conditioning, 1.0)


def _least_direction(level: np.ndarray, hint: np.ndarray) -> np.ndarray:
    """The direction most perpendicular to every row of `level` (unit axes that should be level), re-weighted so
    a few axes that are not level do not lean it; a small pull towards `hint` settles a degenerate set."""
    w = np.ones(len(level))
    v = hint
    for _ in range(5):
        M = np.einsum("n,ni,nj->ij", w, level, level) / w.sum()
        M += 0.005 * (np.eye(3) - np.outer(hint, hint))
        v = np.linalg.eigh(M)[1][:, 0]
        cos = np.abs(level @ v)
        w = 1.0 / (1.0 + (cos / 0.2) ** 2)
    return v if v @ hint >= 0 else -v


def _pinning(level: np.ndarray) -> float:
    """How loosely a set of unit axes fixes the direction perpendicular to them all: the smallest eigenvalue of
    their scatter over the middle one (near 0: one clear direction; near 1: any direction of a plane)."""
    ev = np.linalg.eigvalsh(level.T @ level / max(len(level), 1))
    return float(ev[0] / max(ev[1], 1e-12))


def held_rolled(axes: np.ndarray, ups: np.ndarray) -> bool:
    """Whether every photo was held a quarter turn rolled and stored so (portrait shots without an orientation
    tag, frames of a portrait video): then the cameras' y axes are level, not their x axes."""
    rights = np.cross(axes, ups)
    rights /= np.linalg.norm(rights, axis=1, keepdims=True)
    return len(axes) >= 3 and PORTRAIT_MARGIN * _pinning(ups) < _pinning(rights)


def vertical_from_cameras(axes: np.ndarray, ups: np.ndarray) -> np.ndarray:
    """The world's up as the cameras hold it: the direction most perpendicular to every camera's x axis.

    Cameras without roll have their x axis level whatever their pitch, so the up is the least
    eigenvector of the x axes' scatter; a small pull towards the mean up vector resolves captures
    whose cameras all face one way, and re-weighting tolerates a few rolled (portrait) shots. When every
    photo is rolled a quarter turn (`held_rolled`) the y axes are the level ones; the up is then the side
    the cameras look down from (most captures look down on the object; `locate_object` lets a floor decide).
    """
    rights = np.cross(axes, ups)
    rights /= np.linalg.norm(rights, axis=1, keepdims=True)
    if held_rolled(axes, ups):
        hint = rights.sum(axis=0)
        hint /= max(np.linalg.norm(hint), 1e-12)
        v = _least_direction(ups, hint)
        return v if axes.sum(axis=0) @ v <= 0 else -v
    mean_up = ups.sum(axis=0)
    mean_up /= max(np.linalg.norm(mean_up), 1e-12)
    return _least_direction(rights, mean_up)


def _plane_from(p: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares plane (unit normal, offset) through points (N, 3): normal . X = offset."""
    c = p.mean(axis=0)
    n = np.linalg.svd(p - c, full_matrices=False)[2][-1]
    return n, float(n @ c)


def fit_floor(points: np.ndarray, centers: np.ndarray, target: np.ndarray, up_hint: np.ndarray, scale: float,
              hypotheses: int = 600, seed: int = 0) -> tuple[np.ndarray, float, np.ndarray] | None:
    """The floor or table plane by RANSAC: the best-supported plane that the cameras are above.

    The support counts the points near the object's foot (BELOW_RADIUS), so a table beats the room's floor.
    A candidate counts only when nearly all cameras are on one side of it, the point the cameras look
    at is on that side too (the object stands on the floor, not below a face of it), few points lie
    under it near the object (a floor hides what is below), and its normal is within FLOOR_MAX_TILT of the cameras' up.
    Returns (unit normal towards the cameras, offset, inliers).
    """
    tol = FLOOR_TOLERANCE * scale
    near = np.linalg.norm(points - target, axis=1) < 2.0 * scale
    cand = points[near]
    if len(cand) < 30:
        return None
    rng = np.random.default_rng(seed)
    sample = cand[rng.choice(len(cand), min(len(cand), 4000), replace=False)]
    tri = sample[rng.integers(0, len(sample), (hypotheses, 3))]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(normals, axis=1)
    ok = length > 1e-12 * scale * scale
    normals = normals[ok] / length[ok, None]
    offsets = np.einsum("ni,ni->n", normals, tri[ok, 0])
    side = centers @ normals.T - offsets  # (cams, hyp)
    flip = np.median(side, axis=0) < 0
    normals[flip] *= -1
    offsets[flip] *= -1
    side[:, flip] *= -1
    above = (side > tol).mean(axis=0)
    level = normals @ up_hint > np.cos(np.radians(FLOOR_MAX_TILT))
    valid = (above >= 0.9) & (normals @ target - offsets > -0.05 * scale) & level
    if not valid.any():
        return None
    normals, offsets = normals[valid], offsets[valid]
    height = sample @ normals.T - offsets
    rel = sample - target
    lateral2 = np.einsum("ni,ni->n", rel, rel)[:, None] - (rel @ normals.T) ** 2
    around = lateral2 < (BELOW_RADIUS * scale) ** 2
    counts = ((np.abs(height) < tol) & around).sum(axis=0)  # the support where the object stands, not the room's
    below = ((height < -3 * tol) & around).sum(axis=0) / np.maximum(around.sum(axis=0), 1)
    counts[below > MOST_BELOW_FLOOR] = 0  # a floor hides what is under it (a table: what is under the object)
    best = int(np.argmax(counts))
    if counts[best] < max(30, 0.1 * around[:, best].sum()):  # a tenth of the points near the object's foot
        return None
    n, off = normals[best], offsets[best]
    for _ in range(3):
        inl = np.abs(points @ n - off) < tol
        n2, off2 = _plane_from(points[inl & near])
        if n2 @ n < 0:
            n2, off2 = -n2, -off2
        n, off = n2, off2
    inliers = np.abs(points @ n - off) < tol
    return n, off, inliers


def _clusters(points: np.ndarray, gap: float) -> np.ndarray:
    """Connected-component label of each point, joining points closer than `gap`."""
    pairs = cKDTree(points).query_pairs(gap, output_type="ndarray")
    n = len(points)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _sparse_outliers(points: np.ndarray, k: int = 6) -> np.ndarray:
    """True for points whose mean distance to their k neighbours is far above the typical one."""
    if len(points) <= k + 1:
        return np.zeros(len(points), dtype=bool)
    dist = cKDTree(points).query(points, k + 1)[0][:, 1:].mean(axis=1)
    med = np.median(dist)
    mad = np.median(np.abs(dist - med)) + 1e-12
    return dist > med + 6.0 * 1.4826 * mad


def select_object_points(points: np.ndarray, target: np.ndarray, up: np.ndarray, scale: float,
                         floor: tuple[np.ndarray, float] | None, reliable: np.ndarray) -> np.ndarray:
    """The object's sparse points: above the floor, near where the cameras look, the main clusters there."""
    keep = reliable & (np.linalg.norm(points - target, axis=1) < NEAR_RADIUS * scale)
    if floor is not None:
        keep &= points @ floor[0] - floor[1] > 2.5 * FLOOR_TOLERANCE * scale
    idx = np.flatnonzero(keep)
    if len(idx) < MIN_OBJECT_POINTS:
        return np.zeros(len(points), dtype=bool)
    idx = idx[~_sparse_outliers(points[idx])]
    labels = _clusters(points[idx], CLUSTER_GAP * scale)
    # the clusters with the most points within half the search radius (a sparse object may fall apart)
    dist = np.linalg.norm(points[idx] - target, axis=1)
    core = np.bincount(labels, weights=(dist < 0.5 * NEAR_RADIUS * scale).astype(float), minlength=labels.max() + 1)
    if core.max() > 0:
        chosen = core[labels] >= CORE_SHARE * core.max()
    else:
        chosen = labels == labels[np.argmin(dist)]
    lo, hi = points[idx[chosen]].min(axis=0), points[idx[chosen]].max(axis=0)
    pad = 0.1 * (hi - lo)
    inside_box = np.all((points[idx] >= lo - pad) & (points[idx] <= hi + pad), axis=1)
    out = np.zeros(len(points), dtype=bool)
    out[idx[chosen | inside_box]] = True
    return out


def _reliable(n_points: int, point_views: Sequence[np.ndarray] | None) -> np.ndarray:
    """Points seen by at least three cameras, when that leaves most of them (tracks are optional)."""
    if point_views is None:
        return np.ones(n_points, dtype=bool)
    lengths = np.array([len(v) for v in point_views])
    good = lengths >= 3
    return good if good.sum() >= max(MIN_OBJECT_POINTS, 0.3 * n_points) else np.ones(n_points, dtype=bool)


def _horizontal_basis(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors spanning the plane perpendicular to z."""
    a = np.eye(3)[np.argmin(np.abs(z))]
    e1 = np.cross(z, a)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(z, e1)


def camera_side(up: np.ndarray, centre: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Mean horizontal unit direction from the object to the cameras: length ~0 for a full orbit, ~1 from one side."""
    flat = centers - centre
    flat -= np.outer(flat @ up, up)
    length = np.linalg.norm(flat, axis=1, keepdims=True)
    return (flat / np.maximum(length, 1e-12)).mean(axis=0)


def _frame_rotation(up: np.ndarray, obj: np.ndarray, camera0: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Rows x, y, z of the job frame: z = up; cameras on the -y side (camera 0 for a full orbit, where x
    follows the object's longest horizontal spread)."""
    z = up / np.linalg.norm(up)
    if np.linalg.norm(side) > ONE_SIDED:
        y = -side / np.linalg.norm(side)
        return np.stack([np.cross(y, z), y, z])
    e1, e2 = _horizontal_basis(z)
    flat = (obj - obj.mean(axis=0)) @ np.stack([e1, e2]).T
    major = np.linalg.eigh(flat.T @ flat)[1][:, -1]
    x = major[0] * e1 + major[1] * e2
    y = np.cross(z, x)
    if (camera0 - obj.mean(axis=0)) @ y > 0:
        x, y = -x, -y
    return np.stack([x, y, z])


def locate_object(centers: np.ndarray, axes: np.ndarray, ups: np.ndarray, points: np.ndarray,
                  point_views: Sequence[np.ndarray] | None = None, margin: float = 0.15,
                  seed: int = 0) -> ObjectFrame:
    """Find what the cameras orbit and fix the job frame around it (see the module docstring).

    centers, axes, ups: (N, 3) camera centres, optical axes and up vectors in the SfM world
    (`camera_vectors` makes them from R, t); points: (M, 3) sparse points; point_views: per point the
    indices of the cameras that see it (optional). `margin` is added to each side of the box as a
    fraction of its largest side (a smaller one below, when the object stands on a floor).
    """
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 3)
    axes = np.asarray(axes, dtype=np.float64).reshape(-1, 3)
    ups = np.asarray(ups, dtype=np.float64).reshape(-1, 3)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(centers) < 2:
        raise JobError(f"only {len(centers)} camera(s) registered", "take at least a dozen photos around the object")
    reliable = _reliable(len(points), point_views)
    target, conditioning = convergence_point(centers, axes)
    if conditioning < 0.01 and len(points):
        # the optical axes are nearly parallel: take the middle of the points in front of the cameras
        target = np.median(points[reliable], axis=0)
    scale = float(np.median(np.linalg.norm(centers - target, axis=1)))
    if scale <= 0 or not np.isfinite(scale):
        raise JobError("the cameras all stand at one point", "move around the object between photos")
    up = vertical_from_cameras(axes, ups)
    found = fit_floor(points[reliable], centers, target, up, scale, seed=seed)
    if found is None and held_rolled(axes, ups):  # rolled photos do not say which way is up; a floor does
        found = fit_floor(points[reliable], centers, target, -up, scale, seed=seed)
    floor_world = None
    if found is not None:
        up = found[0]
        floor_world = (found[0], found[1])
    chosen = select_object_points(points, target, up, scale, floor_world, reliable)
    if chosen.sum() < MIN_OBJECT_POINTS:
        raise JobError(f"only {int(chosen.sum())} sparse points lie near where the cameras look",
                       "keep the object in the middle of every photo, fill much of the frame with it, "
                       "and photograph it from all around")
    obj = points[chosen]
    side = camera_side(up, obj.mean(axis=0), centers)
    rot = _frame_rotation(up, obj, centers[0], side)
    local = obj @ rot.T
    lo, hi = local.min(axis=0), local.max(axis=0)
    if np.linalg.norm(side) > ONE_SIDED:
        # seen from one side: the hidden back is assumed to reach back by up to the object's width
        hi[1] += np.linalg.norm(side) * (hi[0] - lo[0])
    on_floor = False
    if floor_world is not None:
        floor_z = floor_world[1]  # rot's z row is the floor normal, so the floor is z = offset
        if 0 <= lo[2] - floor_z < (hi - lo).max():
            lo[2] = floor_z
            on_floor = True
    centre_local = (lo + hi) / 2
    size = float((hi - lo).max())
    s = 1.0 / size
    transform = np.eye(4)
    transform[:3, :3] = s * rot
    transform[:3, 3] = -s * centre_local
    half = (hi - lo) * s / 2
    pad = np.full(3, margin)
    bbox_min, bbox_max = -half - pad, half + pad
    if on_floor:
        bbox_min[2] = -half[2] - min(margin, 0.02)
    floor = None
    if floor_world is not None:
        floor = (np.array([0.0, 0.0, 1.0]), float((floor_world[1] - centre_local[2]) * s))
    return ObjectFrame(transform=transform, bbox_min=bbox_min, bbox_max=bbox_max, object_points=chosen, floor=floor)
