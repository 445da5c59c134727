"""Initial mesh: visual hull carved from the masks, meshed by marching cubes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_dilation, map_coordinates
from skimage.measure import marching_cubes

from backend.geometry.mesh_ops import collapse_degenerate, largest_component
from backend.runtime.errors import JobError

FLIP_YZ = np.diag([1.0, -1.0, -1.0])


@dataclass
class Silhouette:
    """What carving needs of one view: intrinsics, world-to-camera pose, and its mask."""

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    mask: np.ndarray  # (H, W) bool

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates."""
        return -self.R.T @ self.t


def silhouettes(views: list, dilate_px: int = 1) -> list[Silhouette]:
    """Silhouettes of View-like objects (K, R, t, mask), masks dilated by a few pixels for tolerance."""
    out = []
    for v in views:
        mask = np.asarray(v.mask, dtype=bool)
        if dilate_px > 0:
            mask = binary_dilation(mask, iterations=dilate_px)
        out.append(Silhouette(np.asarray(v.K, float), np.asarray(v.R, float), np.asarray(v.t, float), mask))
    return out


def sample_mask(sil: Silhouette, points: np.ndarray) -> np.ndarray:
    """Bilinear mask value in [0, 1] at each point; 0 where the point is behind the camera or off-image."""
    x = points @ sil.R.T + sil.t
    z = x[:, 2]
    in_front = z > 1e-6
    zs = np.where(in_front, z, 1.0)
    u = (sil.K[0, 0] * x[:, 0] + sil.K[0, 1] * x[:, 1]) / zs + sil.K[0, 2]
    v = sil.K[1, 1] * x[:, 1] / zs + sil.K[1, 2]
    h, w = sil.mask.shape
    inside = in_front & (u >= 0) & (u <= w) & (v >= 0) & (v <= h)
    vals = np.zeros(len(points), dtype=np.float32)
    if inside.any():
        img = sil.mask.astype(np.float32)
        vals[inside] = map_coordinates(img, [v[inside] - 0.5, u[inside] - 0.5], order=1, mode="nearest")
    return vals


def _kth_smallest(sils: list[Silhouette], pts: np.ndarray, tolerance: int) -> np.ndarray:
    """Per point, the (tolerance+1)-th smallest mask value over the views."""
    k = min(tolerance, len(sils) - 1) + 1
    smallest = np.full((k, len(pts)), np.inf, dtype=np.float32)
    for sil in sils:
        val = sample_mask(sil, pts)
        for j in range(k):
            lower = np.minimum(smallest[j], val)
            val = np.maximum(smallest[j], val)
            smallest[j] = lower
    return smallest[k - 1]


def outside_counts(sils: list[Silhouette], points: np.ndarray) -> np.ndarray:
    """Per point, how many views see it outside their mask (mask value under 0.5, behind the camera or off-image)."""
    counts = np.zeros(len(points), dtype=np.int32)
    for sil in sils:
        counts += sample_mask(sil, points) < 0.5
    return counts


def grid_axes(lo: np.ndarray, hi: np.ndarray, res: int) -> list[np.ndarray]:
    """Axis coordinates of a res^3 grid spanning [lo, hi]."""
    return [np.linspace(lo[i], hi[i], res) for i in range(3)]


def carve(sils: list[Silhouette], lo: np.ndarray, hi: np.ndarray, res: int, tolerance: int = 0) -> np.ndarray:
    """Soft occupancy (res, res, res) on a grid spanning [lo, hi]: the (tolerance+1)-th smallest mask value.

    tolerance = number of views allowed to disagree (a voxel outside their mask still survives).
    Grids above 48^3 are carved coarse to fine: only cells where a half-resolution grid changes
    (and their neighbours) are evaluated at full resolution; res is rounded up to an odd number.
    """
    if res <= 48:
        pts = np.stack(np.meshgrid(*grid_axes(lo, hi, res), indexing="ij"), axis=-1).reshape(-1, 3)
        return _kth_smallest(sils, pts, tolerance).reshape(res, res, res)
    rc = (res + 2) // 2
    rf = 2 * rc - 1
    coarse = carve(sils, lo, hi, rc, tolerance) > 0.5
    corners = [coarse[a:rc - 1 + a, b:rc - 1 + b, c:rc - 1 + c] for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    mixed = np.logical_or.reduce(corners) & ~np.logical_and.reduce(corners)
    mixed = binary_dilation(mixed, iterations=1)
    fine = np.repeat(np.repeat(np.repeat(coarse, 2, 0), 2, 1), 2, 2)[:rf, :rf, :rf].astype(np.float32)
    todo = np.zeros((rf, rf, rf), dtype=bool)
    cells = np.argwhere(mixed) * 2
    for a in range(3):
        for b in range(3):
            for c in range(3):
                todo[cells[:, 0] + a, cells[:, 1] + b, cells[:, 2] + c] = True
    idx = np.argwhere(todo)
    axes = grid_axes(lo, hi, rf)
    pts = np.stack([axes[0][idx[:, 0]], axes[1][idx[:, 1]], axes[2][idx[:, 2]]], axis=1)
    fine[todo] = _kth_smallest(sils, pts, tolerance)
    return fine


def look_at_point(sils: list[Silhouette]) -> np.ndarray:
    """Least-squares point closest to all optical axes (where the cameras look)."""
    a = np.zeros((3, 3))
    b = np.zeros(3)
    for s in sils:
        d = s.R[2] / np.linalg.norm(s.R[2])
        p = np.eye(3) - np.outer(d, d)
        a += p
        b += p @ s.center
    a += 1e-6 * np.eye(3)
    return np.linalg.solve(a, b)


def _occupied_bounds(occ: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Bounds of voxels with occupancy > 0.5, or None when there are too few."""
    idx = np.argwhere(occ > 0.5)
    if len(idx) < 8:
        return None
    step = (hi - lo) / (occ.shape[0] - 1)
    return lo + (idx.min(axis=0) - 1) * step, lo + (idx.max(axis=0) + 1) * step


def derive_bbox(sils: list[Silhouette], res: int = 72, tolerance: int = 0,
                margin: float = 0.05) -> tuple[np.ndarray, np.ndarray] | None:
    """Bounding box of the masks' viewing-cone intersection (None when it is empty)."""
    p = look_at_point(sils)
    r = float(min(np.linalg.norm(s.center - p) for s in sils))
    for _ in range(4):
        lo, hi = p - r, p + r
        occ = carve(sils, lo, hi, res, tolerance)
        bounds = _occupied_bounds(occ, lo, hi)
        if bounds is None:
            return None
        touches = (bounds[0] <= lo + 1e-9).any() or (bounds[1] >= hi - 1e-9).any()
        if not touches:
            break
        r *= 2.0
    bmin, bmax = bounds
    pad = margin * float(np.max(bmax - bmin))
    return bmin - pad, bmax + pad


CONVENTIONS = {
    "camera-to-world matrices (R, t inverted)": lambda R, t: (R.T, -R.T @ t),
    "OpenGL/Blender camera axes (y up, looking down -z)": lambda R, t: (FLIP_YZ @ R, FLIP_YZ @ t),
    "OpenGL camera-to-world matrices (NeRF style)": lambda R, t: (FLIP_YZ @ R.T, -FLIP_YZ @ R.T @ t),
}


def diagnose_conventions(sils: list[Silhouette], tolerance: int = 0) -> list[str]:
    """Names of alternative camera conventions under which the masks' cones do intersect."""
    working = []
    for name, fn in CONVENTIONS.items():
        alt = []
        for s in sils:
            r2, t2 = fn(s.R, s.t)
            alt.append(Silhouette(s.K, r2, t2, s.mask))
        bbox = derive_bbox(alt, res=40, tolerance=tolerance)
        if bbox is not None:
            occ = carve(alt, bbox[0], bbox[1], 40, tolerance)
            if (occ > 0.5).sum() >= 64:
                working.append(name)
    return working


def empty_hull_error(sils: list[Silhouette], tolerance: int) -> JobError:
    """The JobError for an empty visual hull, naming the convention that would have worked."""
    working = diagnose_conventions(sils, tolerance)
    message = ("The visual hull is empty: no point in space projects inside the masks of all views. "
               "This is most often a camera-convention mistake (OpenGL vs OpenCV axes, "
               "camera-to-world vs world-to-camera matrices).")
    if working:
        hint = ("The masks do agree if the cameras are read as " + " or ".join(working) + ". Convert them "
                "to OpenCV world-to-camera (x_cam = R X + t, y down, z forward) or use the matching reader.")
    else:
        hint = ("Check that R, t are world-to-camera in the OpenCV convention (x_cam = R X + t, y down, "
                "z forward), that K matches the image size, that the masks are white on the object, "
                "and that the bbox (if given) contains the object.")
    return JobError(message, hint)


def hull_masks(views: list, repairs: list[np.ndarray | None] | None) -> list:
    """The views with each mask united with its repaired pixels (holes that only this view carves)."""
    if repairs is None:
        return views
    return [v if r is None else Silhouette(np.asarray(v.K, float), np.asarray(v.R, float), np.asarray(v.t, float),
                                          np.asarray(v.mask, bool) | r)
            for v, r in zip(views, repairs)]


def visual_hull(views: list, bbox: tuple[np.ndarray, np.ndarray] | None = None, res: int = 128,
                dilate_px: int | None = None, tolerance: int | None = None, vote_tolerance: float = 0.0,
                repairs: list[np.ndarray | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Visual hull mesh (vertices, faces) of the views' masks inside bbox (derived when None).

    A voxel survives outside the masks of `tolerance` views (None: `vote_tolerance` x the number of views,
    rounded; 0, strict, by default: a one-view tolerance lets the voxels that a single view sees through a true
    hole survive as spurious handles); a strict hull dilates the masks by a pixel instead. `repairs` (per view
    a bool image or None) are pixels added to the masks: holes the other views contradict
    (`mask_consensus.contradicted_masks`). Raises JobError (with a diagnosis of the camera convention) when the
    hull is empty.
    """
    if tolerance is None:
        tolerance = int(round(vote_tolerance * len(views)))
    if dilate_px is None:
        dilate_px = 0 if tolerance > 0 else 1
    sils = silhouettes(hull_masks(views, repairs), dilate_px)
    if bbox is None:
        bbox = derive_bbox(sils, tolerance=tolerance)
        if bbox is None:
            raise empty_hull_error(sils, tolerance)
    lo, hi = np.asarray(bbox[0], float), np.asarray(bbox[1], float)
    occ = carve(sils, lo, hi, res, tolerance)
    if (occ > 0.5).sum() < 8:
        raise empty_hull_error(sils, tolerance)
    step = (hi - lo) / (occ.shape[0] - 1)
    occ = np.pad(occ, 1, constant_values=0.0)
    verts, faces, _, _ = marching_cubes(occ, level=0.5, spacing=tuple(step))
    verts = verts - step + lo
    faces = faces[:, ::-1]
    verts, faces = collapse_degenerate(verts.astype(np.float64), faces.astype(np.int64))
    return largest_component(verts, faces)
