"""Object masks of calibrated photos without learned models: seeded GrabCut, made consistent by a visual-hull vote.

Per photo (downscaled for speed) GrabCut starts from what geometry knows: pixels outside the projected
object box are background, the object's sparse points (which all project inside its silhouette,
seen or hidden) seed the foreground, and visible floor/background points seed the background. The
masks then vote on a voxel grid in the box (a voxel stays when most views that see it agree, so a
few wrong masks do no harm); the surviving hull, projected back into each photo, initialises a second
GrabCut pass, and the result is upsampled to full size with a guided filter that follows the edges.
When the floor plane is known, both passes also take seeds from floor-plane parallax (floor_parallax):
what the neighbouring photos, warped onto the floor, agree on is background, what clearly stands above
the floor is foreground, so a busy floor no longer fills holes (a handle's) or eats shadowed parts.
When the object's points stop short of the floor (a stand or a foot without points of its own, whose few
points the locator may have counted as background), the first pass's probable foreground reaches down to
the floor under the object's lowest points (footing).
Visible floor/background points are the ones the photo observed itself (their tracks, seed_visibility): a
floor point other photos saw may hide behind a thin part here. The second pass also takes the floor that many
photos (not only the nearest four) agree on, up to the object's outline (see_through): the floor seen through a
handle's hole or beside a shadowed base, where the nearest-neighbour cue stays silent.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import cv2
import numpy as np
from scipy.spatial import cKDTree

from backend.capture.floor_parallax import SEE_VIEWS, floor_evidence, neighbours, see_through

WORK_SIDE = 400  # longest side (px) of the images the second, final GrabCut pass runs on
SEED_SIDE = 280  # longest side (px) of the first pass (its masks only vote on the hull)
GRABCUT_ITERATIONS = 3
FIRST_ITERATIONS = 2  # GrabCut iterations of the first pass
SEE_THROUGH = True  # the second pass also takes the floor that many views agree on (floor_parallax.see_through)
SEE_POINT_R = 2  # px (work scale): ... except within this of a projected object point (those are the object)
FLOOR_MARGIN = 3  # px (work scale): hard foreground this near floor evidence becomes probable foreground
FOOT_LAYERS = 2.0  # hull voxels this many voxel sizes above the floor or lower stand on it (its footprint)
HULL_RESOLUTION = 96  # voxels along the box's longest side
HULL_TOLERANCE = 0.04  # share of the views that see a voxel allowed to call it background
SEED_RADIUS = 1  # px (work scale): disc drawn around each projected object point
FOOT_SHARE = 0.05  # with a floor: the lowest share of the object points' height dropped onto it as foreground
FOOT_GAP = 0.1  # ... when their lowest point is higher than this share of their height
CORE_SHARE = 0.05  # without object points: the foreground core around the box's centre, share of its side
REFINE_BAND = 0.01  # share of the photo's longest side: the band the full-resolution pass redoes
# GrabCut's fixed smoothness term cuts the thin tips and shadowed rims of an object that spans few pixels of the
# photo (its shrinking bias); on an upscaled crop the same outline costs less against the colour term
# (BENCHMARKS.md, "Upscaled GrabCut"). An object that spans this many of the photo's own pixels is not upscaled.
GRABCUT_REACH = 600  # photo px: each pass's crop is upscaled until it spans this many of them ...
MAX_UPSCALE = 2.0  # ... by at most this factor


def _as_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 copy of an image given as uint8 or float in [0, 1]; grey and alpha handled."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3]
    if img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.floating):
            img = np.clip(img * 255.0 + 0.5, 0, 255)
        elif img.dtype == np.uint16:
            img = img / 257.0
        img = img.astype(np.uint8)
    return np.ascontiguousarray(img)


def _project(K: np.ndarray, R: np.ndarray, t: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (N, 2) and depths (N,) of points (OpenCV convention, corner origin), in float32."""
    P = (K @ np.hstack([R, np.reshape(t, (3, 1))])).astype(np.float32)
    p = np.asarray(points, dtype=np.float32)
    x, y, z = (p @ P[:, :3].T + P[:, 3]).T
    depth = p @ R[2].astype(np.float32) + np.float32(t[2])
    zs = np.where(np.abs(z) > 1e-9, z, np.float32(1.0))
    return np.stack([x / zs, y / zs], axis=1), depth


def _box_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The 8 corners of an axis-aligned box."""
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def _box_core(lo: np.ndarray, hi: np.ndarray, share: float = CORE_SHARE) -> np.ndarray:
    """The box's centre and six points `share` of its largest side away from it along the axes."""
    centre = (np.asarray(lo, float) + np.asarray(hi, float)) / 2
    r = share * float(np.max(np.asarray(hi, float) - np.asarray(lo, float)))
    return np.vstack([centre, centre + r * np.eye(3), centre - r * np.eye(3)])


def _fill_hull(shape: tuple[int, int], uv: np.ndarray) -> np.ndarray:
    """Boolean image of the convex hull of pixel positions."""
    out = np.zeros(shape, dtype=np.uint8)
    if len(uv) >= 3:
        hull = cv2.convexHull(np.round(uv * 16).astype(np.int32))
        cv2.fillConvexPoly(out, hull, 1, lineType=cv2.LINE_8, shift=4)
    return out.astype(bool)


def _splat(shape: tuple[int, int], uv: np.ndarray, radius: int) -> np.ndarray:
    """Boolean image with a disc of `radius` px at each pixel position that falls inside it."""
    h, w = shape
    out = np.zeros(shape, dtype=np.uint8)
    ij = np.floor(uv).astype(np.int64)
    ok = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
    out[ij[ok, 1], ij[ok, 0]] = 1
    if radius > 0:
        out = cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    return out.astype(bool)


def _disc(radius: int) -> np.ndarray:
    """Elliptic structuring element of a radius."""
    r = max(int(radius), 0)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _grabcut(image: np.ndarray, labels: np.ndarray, iterations: int, reach: float = 0.0) -> np.ndarray:
    """GrabCut from a label image (cv2.GC_*), run on the box around the undecided pixels, that box upscaled
    until its longest side reaches `reach` px (at most MAX_UPSCALE times: less shrinking bias); foreground bool."""
    undecided = (labels == cv2.GC_PR_FGD) | (labels == cv2.GC_PR_BGD)
    fg = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if not undecided.any() or not fg.any() or fg.all():
        return fg
    h, w = labels.shape
    ys, xs = np.nonzero(undecided | (labels == cv2.GC_FGD))
    pad = max(8, (ys.max() - ys.min() + xs.max() - xs.min()) // 8)
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, h)
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, w)
    crop = np.ascontiguousarray(labels[y0:y1, x0:x1])
    if not ((crop == cv2.GC_BGD) | (crop == cv2.GC_PR_BGD)).any():
        return fg
    picture = np.ascontiguousarray(image[y0:y1, x0:x1])
    size = (x1 - x0, y1 - y0)
    upscale = min(MAX_UPSCALE, reach / max(size))
    if upscale > 1.05:
        big = (round(size[0] * upscale), round(size[1] * upscale))
        picture = cv2.resize(picture, big, interpolation=cv2.INTER_CUBIC)
        crop = cv2.resize(crop, big, interpolation=cv2.INTER_NEAREST)
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(0)  # the colour models start from k-means on this thread's RNG: same input, same mask
    cv2.grabCut(picture, crop, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    found = (crop == cv2.GC_FGD) | (crop == cv2.GC_PR_FGD)
    if upscale > 1.05:
        found = cv2.resize(found.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5
    out = np.zeros((h, w), dtype=bool)
    out[y0:y1, x0:x1] = found
    return out


Evidence = tuple[np.ndarray, np.ndarray]  # work-scale (floor, raised) pixels from floor_parallax.floor_evidence


class ScaledView:
    """One photo at work scale: image, intrinsics, pose and full size."""

    def __init__(self, image: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray, side: int) -> None:
        img = _as_uint8(image)
        self.full = img
        self.full_shape = img.shape[:2]
        h, w = self.full_shape
        s = min(1.0, side / max(h, w))
        self.shape = (max(1, round(h * s)), max(1, round(w * s)))
        sx, sy = self.shape[1] / w, self.shape[0] / h
        self.image = cv2.resize(img, (self.shape[1], self.shape[0]), interpolation=cv2.INTER_AREA) if s < 1 else img
        self.K = np.diag([sx, sy, 1.0]) @ np.asarray(K, dtype=np.float64)
        self.R = np.asarray(R, dtype=np.float64)
        self.t = np.asarray(t, dtype=np.float64).reshape(3)

    @property
    def scale(self) -> float:
        """Work-scale pixels per photo pixel."""
        return max(self.shape) / max(self.full_shape)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Work-scale pixel positions and depths of points."""
        return _project(self.K, self.R, self.t, points)


def _box_region(view: ScaledView, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Pixels the projected box covers (all of them when the camera is inside or beside the box)."""
    uv, z = view.project(_box_corners(lo, hi))
    if (z <= 1e-9).any():
        return np.ones(view.shape, dtype=bool)
    return _fill_hull(view.shape, uv)


def footing(points: np.ndarray, floor: tuple[np.ndarray, float], share: float = FOOT_SHARE,
            gap: float = FOOT_GAP) -> np.ndarray:
    """Where the object's bottom stands when its points stop short of the floor: its lowest points (within
    `share` of its height above the lowest) moved along the floor's normal onto the floor plane
    (normal . X = offset). Empty when the lowest point is within `gap` x the object's height of the floor
    (the points already reach it; dropping them would only claim the floor under overhangs)."""
    n = np.asarray(floor[0], dtype=np.float64)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    height = p @ n - float(floor[1]) if len(p) else np.zeros(0)
    if not len(p) or height.min() <= gap * height.max():
        return np.zeros((0, 3))
    low = p[height <= height.min() + share * (height.max() - height.min())]
    return low - np.outer(low @ n - float(floor[1]), n)


def seed_labels(view: ScaledView, lo: np.ndarray, hi: np.ndarray, object_points: np.ndarray,
                background_points: np.ndarray | None, evidence: Evidence | None = None,
                feet: np.ndarray | None = None) -> np.ndarray:
    """GrabCut labels from geometry alone: box outside = background, object points = foreground;
    with floor evidence (floor, raised), what the floor explains is background and what stands clearly
    above it inside the box is foreground.

    Without any object points the box's projection is probable foreground (GrabCut's rectangle start) and a
    small core around the box's centre is foreground (a compact object covers its box's centre).
    feet (footing's points on the floor, if any) widen the probable foreground down to the floor under the
    object's lowest points (its lower part, a stand or a foot, often has no points of its own)."""
    box = _box_region(view, lo, hi)
    if not len(object_points):
        labels = np.where(box, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)
        uv, z = view.project(_box_core(lo, hi))
        if (z > 1e-9).all():
            labels[_fill_hull(view.shape, uv) & box] = cv2.GC_FGD
        return labels
    labels = np.where(box, cv2.GC_PR_BGD, cv2.GC_BGD).astype(np.uint8)
    uv, z = view.project(object_points)
    front = z > 1e-9
    uv = uv[front]
    h, w = view.shape
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    if inside.sum() >= 3:
        near = max(2, round(0.01 * max(h, w)))
        support = uv[inside]
        if feet is not None and len(feet):
            fuv, fz = view.project(feet)
            support = np.vstack([support, fuv[fz > 1e-9]])
        region = cv2.dilate(_fill_hull(view.shape, support).astype(np.uint8), _disc(near)).astype(bool)
        labels[region & box] = cv2.GC_PR_FGD
        if background_points is not None and len(background_points):
            buv, bz = view.project(background_points)
            bg = _splat(view.shape, buv[bz > 1e-9], SEED_RADIUS) & ~region
            labels[bg] = cv2.GC_BGD
        if evidence is not None:
            labels[evidence[1] & box] = cv2.GC_FGD
            labels[evidence[0]] = cv2.GC_BGD
        labels[_splat(view.shape, uv[inside], SEED_RADIUS) & box] = cv2.GC_FGD
    return labels


def first_pass(view: ScaledView, lo: np.ndarray, hi: np.ndarray, object_points: np.ndarray,
               background_points: np.ndarray | None, evidence: Evidence | None = None,
               feet: np.ndarray | None = None) -> np.ndarray:
    """Work-scale mask of one photo from the geometric seeds (and the floor's evidence, if any)."""
    labels = seed_labels(view, lo, hi, object_points, background_points, evidence, feet)
    return _grabcut(view.image, labels, FIRST_ITERATIONS, GRABCUT_REACH * view.scale)


def _grid(lo: np.ndarray, hi: np.ndarray, resolution: int) -> tuple[np.ndarray, float]:
    """Centres (N, 3) of cubic voxels covering the box, `resolution` along its longest side, and their size."""
    size = float(np.max(hi - lo)) / resolution
    dims = [int(max(1, np.ceil((hi[i] - lo[i]) / size - 1e-9))) for i in range(3)]
    axes = [lo[i] + (np.arange(dims[i]) + 0.5) * size for i in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3), size


def _vote(views: Sequence[ScaledView], distances: Sequence[np.ndarray], centres: np.ndarray, size: float,
          tolerance: float) -> np.ndarray:
    """Which voxels (centres, size) the views' masks keep (see hull_vote); views give distance-to-mask images."""
    seen = np.zeros(len(centres), dtype=np.int32)
    inside = np.zeros(len(centres), dtype=np.int32)
    alive = np.arange(len(centres))
    most_misses = max(1, round(tolerance * len(views)))
    half_diag = 0.5 * np.sqrt(3.0) * size
    for view, dist in zip(views, distances):
        uv, z = view.project(centres[alive])
        h, w = view.shape
        ok = (z > 1e-9) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
        ij = uv[ok].astype(np.int64)
        voting = alive[ok]
        seen[voting] += 1
        inside[voting[dist[ij[:, 1], ij[:, 0]] <= view.K[0, 0] * half_diag / z[ok]]] += 1
        alive = alive[seen[alive] - inside[alive] <= most_misses]
    seen, inside = seen[alive], inside[alive]
    keep = np.zeros(len(centres), dtype=bool)
    keep[alive] = (seen >= 2) & (inside >= seen - np.maximum(1, np.round(tolerance * seen)))
    return keep


def hull_vote(views: Sequence[ScaledView], masks: Sequence[np.ndarray], lo: np.ndarray, hi: np.ndarray,
              resolution: int = HULL_RESOLUTION, tolerance: float = HULL_TOLERANCE) -> tuple[np.ndarray, float]:
    """Voxel centres kept by the masks' vote and the voxel size.

    A voxel is inside a view's mask when its projected footprint (its bounding sphere) touches the
    mask; it stays when at most max(1, tolerance x the views that see it) of those views call it
    background (views whose image it falls outside of do not vote). Coarse to fine: a voxel's
    footprint covers its children's, so only kept voxels are split (8 children) and voted again.
    """
    distances = [cv2.distanceTransform((~np.asarray(m, dtype=bool)).astype(np.uint8), cv2.DIST_L2, 3)
                 for m in masks]
    levels = 2
    centres, size = _grid(np.asarray(lo, float), np.asarray(hi, float), max(2, resolution // 2 ** levels))
    centres = centres.astype(np.float32)
    offsets = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float32)
    for level in range(levels + 1):
        centres = centres[_vote(views, distances, centres, size, tolerance)]
        if level < levels:
            centres = (centres[:, None, :] + offsets[None] * np.float32(size / 4)).reshape(-1, 3)
            size /= 2
    return centres, size


def hull_silhouette(view: ScaledView, centres: np.ndarray, size: float) -> np.ndarray:
    """Work-scale silhouette of a voxel set: each voxel splatted as a disc a little wider than its footprint."""
    if not len(centres):
        return np.zeros(view.shape, dtype=bool)
    uv, z = view.project(centres)
    front = z > 1e-9
    radius = int(np.ceil(np.median(view.K[0, 0] * 0.75 * size / z[front])))
    return _splat(view.shape, uv[front], radius)


def second_pass(view: ScaledView, first: np.ndarray, hull: np.ndarray,
                background_points: np.ndarray | None = None, evidence: Evidence | None = None) -> np.ndarray:
    """Work-scale mask corrected by the hull's projection: GrabCut in a band around the hull's outline,
    with the background points that fall outside the hull as background seeds; floor evidence
    (floor, raised) makes what the floor explains background and what stands above it near the hull
    foreground."""
    if not hull.any():
        return np.zeros(view.shape, dtype=bool)
    band = max(2, round(0.02 * max(view.shape)))
    core = cv2.erode(hull.astype(np.uint8), _disc(band)).astype(bool)
    outer = cv2.dilate(hull.astype(np.uint8), _disc(band)).astype(bool)
    labels = np.full(view.shape, cv2.GC_BGD, dtype=np.uint8)
    labels[outer] = cv2.GC_PR_BGD
    labels[hull] = cv2.GC_PR_FGD
    labels[core & first] = cv2.GC_FGD
    if background_points is not None and len(background_points):
        uv, z = view.project(background_points)
        labels[_splat(view.shape, uv[z > 1e-9], SEED_RADIUS) & ~hull] = cv2.GC_BGD
    if evidence is not None:
        labels[evidence[1] & outer] = cv2.GC_FGD
        near_floor = cv2.dilate(evidence[0].astype(np.uint8), _disc(FLOOR_MARGIN)).astype(bool)
        labels[near_floor & (labels == cv2.GC_FGD)] = cv2.GC_PR_FGD
        labels[evidence[0]] = cv2.GC_BGD
    return _grabcut(view.image, labels, GRABCUT_ITERATIONS, GRABCUT_REACH * view.scale)


def guided_upsample(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Full-size bool mask from a work-scale one, its edges snapped to the photo's edges (guided filter)."""
    h, w = image.shape[:2]
    if mask.shape == (h, w):
        return mask.copy()
    p = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    guide = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    r = max(2, round(2 * w / mask.shape[1]))
    eps = 1e-3
    ksize = (2 * r + 1, 2 * r + 1)
    mean_i = cv2.boxFilter(guide, -1, ksize)
    mean_p = cv2.boxFilter(p, -1, ksize)
    cov_ip = cv2.boxFilter(guide * p, -1, ksize) - mean_i * mean_p
    var_i = cv2.boxFilter(guide * guide, -1, ksize) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    q = cv2.boxFilter(a, -1, ksize) * guide + cv2.boxFilter(b, -1, ksize)
    return q > 0.5


def refine_full(mask: np.ndarray, image: np.ndarray, band_share: float = REFINE_BAND,
                floor: np.ndarray | None = None) -> np.ndarray:
    """Full-size mask from a guided-upsampled one, its outline redone by GrabCut at full resolution in a
    band around it (thin parts a few work-scale pixels wide come back); floor (full-size bool, optional):
    pixels the floor explains, background."""
    h, w = image.shape[:2]
    band = max(2, round(band_share * max(h, w)))
    m = mask.astype(np.uint8)
    labels = np.full((h, w), cv2.GC_BGD, dtype=np.uint8)
    labels[cv2.dilate(m, _disc(band)).astype(bool)] = cv2.GC_PR_BGD
    labels[mask] = cv2.GC_PR_FGD
    labels[cv2.erode(m, _disc(band)).astype(bool)] = cv2.GC_FGD
    if floor is not None:
        labels[floor & (labels != cv2.GC_FGD)] = cv2.GC_BGD
    return _grabcut(image, labels, 2, GRABCUT_REACH)


def footprint(centres: np.ndarray, size: float, floor: tuple[np.ndarray, float]) -> Callable[[np.ndarray], np.ndarray]:
    """A test of floor points: True under the hull's footprint (its voxels within FOOT_LAYERS sizes of the floor,
    widened by 1.5 voxels), where the object stands and parallax cannot tell it from the floor."""
    n = np.asarray(floor[0], dtype=np.float64)
    c = np.asarray(centres, dtype=np.float64).reshape(-1, 3)
    low = c[c @ n - float(floor[1]) < FOOT_LAYERS * size]
    if not len(low):
        return lambda X: np.zeros(len(X), dtype=bool)
    tree = cKDTree(low - np.outer(low @ n - float(floor[1]), n))
    return lambda X: np.isfinite(tree.query(np.asarray(X, dtype=np.float64).reshape(-1, 3),
                                            distance_upper_bound=1.5 * size)[0])


def _keep_touching(mask: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The connected parts of a mask that overlap a reference region."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    hit = np.zeros(n, dtype=bool)
    hit[np.unique(labels[mask & reference])] = True
    hit[0] = False
    return hit[labels]


def make_masks(images: list[np.ndarray], Ks: Sequence[np.ndarray], Rs: Sequence[np.ndarray],
               ts: Sequence[np.ndarray], bbox_min: np.ndarray, bbox_max: np.ndarray, object_points: np.ndarray,
               background_points: np.ndarray | None = None, progress: Callable[[float], None] | None = None,
               poll: Callable[[], None] | None = None, work_side: int = WORK_SIDE,
               threads: int = 2, floor: tuple[np.ndarray, float] | None = None,
               background_visible: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
    """Object mask (bool, photo size) of each photo; cameras, box and points share one frame.

    images: (H, W, 3) uint8 or float in [0, 1], undistorted; Ks, Rs, ts: their OpenCV cameras;
    bbox_min/max: the object's box; object_points: its sparse points (may be empty: the box alone seeds the
    first pass); background_points: other
    sparse points (the floor, the room), used as background seeds where they cannot be hidden
    behind the object; background_visible (optional, per photo a bool over the background points, from
    seed_visibility.visible_points): each photo's first pass then takes only the points it shows as seeds (a
    point hidden behind a thin part would cut it away; the second pass seeds only outside the hull).
    progress(fraction) is called after each view of each pass and poll() between views (it may raise to cancel). Photos run `threads` at a time (OpenCV frees the GIL).
    floor: the plane (unit normal, offset) {X : normal . X = offset} the object stands on, if known:
    neighbouring photos warped onto it tell the floor from what stands on it (floor_parallax).
    """
    lo, hi = np.asarray(bbox_min, dtype=np.float64), np.asarray(bbox_max, dtype=np.float64)
    obj = np.asarray(object_points, dtype=np.float64).reshape(-1, 3)
    bg = None if background_points is None else np.asarray(background_points, dtype=np.float64).reshape(-1, 3)
    n = len(images)
    done = [0]
    steps = (4 if floor is not None and n > 2 else 3) * n + 1

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(min(done[0] / steps, 1.0))

    def run(fn: Callable[[int], np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros(0)] * n
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            futures = [pool.submit(fn, i) for i in range(n)]
            try:
                for i, fut in enumerate(futures):
                    out[i] = fut.result()
                    tick()
                    if poll is not None:
                        poll()
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
        return out

    seed_side = max(64, round(work_side * SEED_SIDE / WORK_SIDE))
    coarse = run(lambda i: ScaledView(images[i], Ks[i], Rs[i], ts[i], seed_side))
    near = neighbours(np.array([-v.R.T @ v.t for v in coarse])) if floor is not None and n > 2 else None

    def evidence(views: Sequence[ScaledView], i: int) -> Evidence | None:
        if near is None:
            return None
        return floor_evidence([v.image for v in views], [v.K for v in views], [v.R for v in views],
                              [v.t for v in views], i, near[i], floor[0], floor[1])

    feet = footing(obj, floor) if floor is not None else None
    own_bg = [bg if bg is None or background_visible is None else bg[np.asarray(background_visible[i], dtype=bool)]
              for i in range(n)]
    first = run(lambda i: first_pass(coarse[i], lo, hi, obj, own_bg[i], evidence(coarse, i), feet))
    centres, size = hull_vote(coarse, first, lo, hi)
    tick()

    fine = run(lambda i: ScaledView(images[i], Ks[i], Rs[i], ts[i], work_side)) if near is not None else None
    far = neighbours(np.array([-v.R.T @ v.t for v in coarse]), SEE_VIEWS) if near is not None else None
    under = footprint(centres, size, floor) if near is not None else None

    def finish(i: int) -> np.ndarray:
        view = fine[i] if fine is not None else ScaledView(images[i], Ks[i], Rs[i], ts[i], work_side)
        if not len(centres):  # the masks agree on nothing: keep each photo's own
            small = cv2.resize(first[i].astype(np.uint8), view.shape[::-1], interpolation=cv2.INTER_NEAREST)
            return guided_upsample(small.astype(bool), view.full)
        hull = hull_silhouette(view, centres, size)
        seeded = cv2.resize(first[i].astype(np.uint8), view.shape[::-1], interpolation=cv2.INTER_NEAREST).astype(bool)
        cue = evidence(fine, i) if fine is not None else None
        if cue is not None and SEE_THROUGH:
            shows_floor = see_through([v.image for v in fine], [v.K for v in fine], [v.R for v in fine],
                                      [v.t for v in fine], i, far[i], floor[0], floor[1], under)
            if SEE_POINT_R >= 0 and len(obj):
                uv, z = view.project(obj)
                shows_floor &= ~_splat(view.shape, uv[z > 1e-9], SEE_POINT_R)
            cue = (cue[0] | shows_floor, cue[1] & ~shows_floor)
        found = second_pass(view, seeded, hull, bg, cue)
        up = guided_upsample(_keep_touching(found, hull), view.full)
        if REFINE_BAND <= 0 or view.shape == view.full_shape:
            return up
        floor_full = None
        if cue is not None:
            h, w = view.full_shape
            floor_full = cv2.resize(cue[0].astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
        return refine_full(up, view.full, REFINE_BAND, floor_full)

    return run(finish)
