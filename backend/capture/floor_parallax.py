"""Floor-plane parallax: which pixels of a photo the floor explains, by warping neighbouring photos onto it.

A point on the floor plane looks the same in every photo once each neighbour is warped into this view
with the homography the plane induces; anything standing above the floor lands elsewhere in the
neighbour (parallax) and the warped colours disagree. Colours are compared by zero-mean normalised
cross-correlation over a small window of the blurred grey image (robust to exposure changes); windows
without texture carry no evidence either way. Pixels near where the object meets the floor agree too
(no parallax at height zero), so the caller keeps its own foreground seeds there.
"""
from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np

NEIGHBOURS = 4  # views compared with each view (the nearest camera centres)
WINDOW = 7  # px: side of the correlation window (work scale)
MIN_STD = 4.0  # grey levels (band-passed): a window flatter than this (in either image) says nothing
BAND = 4.0  # px: the coarse blur removed from the grey images
AGREE = 0.6  # correlation above which the floor explains a window
DISAGREE = 0.15  # correlation below which it clearly does not
RAISED_SHARE = 0.75  # share of the judging neighbours (at least RAISED_MIN) that must fail a raised pixel
RAISED_MIN = 3
FLOOR_SHARE = 0.51  # share of the judging neighbours (at least FLOOR_MIN) that must agree on a floor pixel
FLOOR_MIN = 3
GUARD = 0.015  # fraction of the image side: floor evidence this near a failing pixel is dropped


def plane_homography(K_i: np.ndarray, R_i: np.ndarray, t_i: np.ndarray, K_j: np.ndarray, R_j: np.ndarray,
                     t_j: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """3x3 map from view i's pixels to view j's pixels of the points on the plane normal . X = offset."""
    n = np.asarray(normal, dtype=np.float64)
    n_i = R_i @ n
    d_i = float(offset + n @ (R_i.T @ t_i))  # the plane in camera i: n_i . X_i = d_i
    R_ij = R_j @ R_i.T
    t_ij = t_j - R_ij @ t_i
    return K_j @ (R_ij + np.outer(t_ij, n_i) / d_i) @ np.linalg.inv(K_i)


def _floor_depth_sign(K: np.ndarray, R: np.ndarray, t: np.ndarray, normal: np.ndarray, offset: float,
                      shape: tuple[int, int]) -> np.ndarray:
    """Per pixel, whether its ray meets the plane in front of the camera (below the horizon)."""
    h, w = shape
    n_c = R @ np.asarray(normal, dtype=np.float64)
    d_c = float(offset + np.asarray(normal, dtype=np.float64) @ (R.T @ t))
    v, u = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ np.linalg.inv(K).T
    return (rays @ n_c) * d_c > 1e-9


def _grey(image: np.ndarray) -> np.ndarray:
    """Band-passed float grey image: the fine blur hides resampling and small pose errors, subtracting a
    coarse blur removes shading ramps (any two ramps correlate, so smooth surfaces would pass for floor)."""
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.GaussianBlur(g, (0, 0), 1.0) - cv2.GaussianBlur(g, (0, 0), BAND)


def _local_ncc(a: np.ndarray, b: np.ndarray, valid: np.ndarray, window: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Windowed zero-mean normalised cross-correlation of two images, and where both windows have texture
    (window: side in px, 0 for WINDOW)."""
    k = (window or WINDOW, window or WINDOW)
    ma, mb = cv2.blur(a, k), cv2.blur(b, k)
    va = np.maximum(cv2.blur(a * a, k) - ma * ma, 0)
    vb = np.maximum(cv2.blur(b * b, k) - mb * mb, 0)
    cov = cv2.blur(a * b, k) - ma * mb
    textured = (va > MIN_STD ** 2) & (vb > MIN_STD ** 2)
    full = cv2.erode(valid.astype(np.uint8), np.ones(k, np.uint8)).astype(bool)
    return cov / np.sqrt(np.maximum(va * vb, 1e-6)), textured & full


def neighbours(centers: np.ndarray, count: int = NEIGHBOURS) -> list[np.ndarray]:
    """Per view the indices of the `count` other views with the nearest camera centres."""
    c = np.asarray(centers, dtype=np.float64)
    dist = np.linalg.norm(c[:, None] - c[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    k = min(count, len(c) - 1)
    return [np.argsort(row)[:k] for row in dist]


def _warp_onto(images: Sequence[np.ndarray], Ks: Sequence[np.ndarray], Rs: Sequence[np.ndarray],
               ts: Sequence[np.ndarray], i: int, j: int, normal: np.ndarray,
               offset: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """View j's band-passed grey image warped into view i through the floor plane: (homography i -> j, the warped
    image, where it lands inside view j)."""
    h, w = images[i].shape[:2]
    hj, wj = images[j].shape[:2]
    H = plane_homography(Ks[i], Rs[i], ts[i], Ks[j], Rs[j], ts[j], normal, offset)
    warped = cv2.warpPerspective(_grey(images[j]), H, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inside = cv2.warpPerspective(np.ones((hj, wj), np.uint8), H, (w, h),
                                 flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0).astype(bool)
    return H, warped, inside


def floor_votes(images: Sequence[np.ndarray], Ks: Sequence[np.ndarray], Rs: Sequence[np.ndarray],
                ts: Sequence[np.ndarray], i: int, others: Sequence[int], normal: np.ndarray,
                offset: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel of view i: how many neighbours the floor explains, clearly fails, and could judge at all.

    images: same-scale RGB uint8 views with their cameras (Ks at that scale); a neighbour judges a
    pixel when the pixel's floor point lies in front of both cameras, inside the neighbour's image, and
    both correlation windows have texture.
    """
    shape = images[i].shape[:2]
    h, w = shape
    grey_i = _grey(images[i])
    below = _floor_depth_sign(Ks[i], Rs[i], ts[i], normal, offset, shape)
    agree = np.zeros(shape, np.int32)
    disagree = np.zeros(shape, np.int32)
    judged = np.zeros(shape, np.int32)
    for j in others:
        H, warped, inside = _warp_onto(images, Ks, Rs, ts, i, j, normal, offset)
        hj, wj = images[j].shape[:2]
        front_j = _floor_depth_sign(Ks[j], Rs[j], ts[j], normal, offset, (hj, wj))
        seen_j = cv2.warpPerspective(front_j.astype(np.uint8), H, (w, h),
                                     flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0).astype(bool)
        ncc, ok = _local_ncc(grey_i, warped, below & inside & seen_j)
        judged += ok
        agree += ok & (ncc > AGREE)
        disagree += ok & (ncc < DISAGREE)
    return agree, disagree, judged


def _disc(radius: int) -> np.ndarray:
    """Elliptic structuring element of a radius."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def floor_evidence(images: Sequence[np.ndarray], Ks: Sequence[np.ndarray], Rs: Sequence[np.ndarray],
                   ts: Sequence[np.ndarray], i: int, others: Sequence[int], normal: np.ndarray,
                   offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of view i that the floor explains (background) and that it clearly fails (raised above it).

    Background: most judging neighbours (at least 2) agree, away from any failing pixel (a speck of
    chance agreement inside the object, or its bottom where parallax vanishes, stays undecided).
    Raised: at least 3 and three quarters of the judging neighbours disagree, specks removed (a floor
    point that a neighbour sees hidden behind the object fails in that neighbour only).
    """
    agree, disagree, judged = floor_votes(images, Ks, Rs, ts, i, others, normal, offset)
    side = max(images[i].shape[:2])
    r = max(1, round(side * GUARD))
    raised = (disagree >= RAISED_MIN) & (disagree >= RAISED_SHARE * judged)
    raised = cv2.morphologyEx(raised.astype(np.uint8), cv2.MORPH_OPEN, _disc(r)).astype(bool)
    fails = (disagree >= 2) & (2 * disagree >= judged)
    floor = (agree >= FLOOR_MIN) & (agree >= FLOOR_SHARE * judged)
    floor &= ~cv2.dilate(fails.astype(np.uint8), _disc(r)).astype(bool)
    floor = cv2.morphologyEx(floor.astype(np.uint8), cv2.MORPH_OPEN, _disc(1)).astype(bool)
    return floor, raised


SEE_VIEWS = 12  # views compared with each view by see_through (the nearest camera centres)
SEE_MIN = 3  # views that must agree with the floor at a pixel for it to show the floor
SEE_AGREE = 0.7  # their correlation there at least
SEE_WINDOW = 7  # px: side of its correlation window
SEE_ERODE = 2  # px: the found floor shrunk by this (an object pixel by the outline has a window mostly on the floor)


def floor_points(K: np.ndarray, R: np.ndarray, t: np.ndarray, normal: np.ndarray, offset: float,
                 shape: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) where each pixel's ray meets the plane normal . X = offset (behind the camera: far away)."""
    h, w = shape
    n = np.asarray(normal, dtype=np.float64)
    eye = -np.asarray(R, dtype=np.float64).T @ np.asarray(t, dtype=np.float64)
    v, u = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ np.linalg.inv(K).T @ np.asarray(R, dtype=np.float64)
    denom = rays @ n
    s = (offset - eye @ n) / np.where(np.abs(denom) > 1e-12, denom, 1e-12)
    s = np.where(s > 0, s, 1e6)
    return eye + rays * s[..., None]


def see_through(images: Sequence[np.ndarray], Ks: Sequence[np.ndarray], Rs: Sequence[np.ndarray],
                ts: Sequence[np.ndarray], i: int, others: Sequence[int], normal: np.ndarray, offset: float,
                under_object: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Pixels of view i that show the floor, judged against many views (a hole through the object, a gap
    between its parts): at least SEE_MIN of `others`, warped onto the floor, correlate above SEE_AGREE there.

    Unlike floor_evidence nothing is guarded near the object: a view that the object hides the floor point from
    simply does not agree, and chance agreement of several views on a textured window is rare. What parallax
    cannot tell (the object's bottom, at height zero) is excluded by under_object: given (N, 3) floor points,
    True for those under the object's footprint, where a ray meets the object before the floor. The result is
    shrunk by SEE_ERODE px: a window centred on the object next to its outline lies mostly on the floor."""
    shape = images[i].shape[:2]
    grey_i = _grey(images[i])
    below = _floor_depth_sign(Ks[i], Rs[i], ts[i], normal, offset, shape)
    agree = np.zeros(shape, np.int32)
    for j in others:
        _, warped, inside = _warp_onto(images, Ks, Rs, ts, i, j, normal, offset)
        ncc, ok = _local_ncc(grey_i, warped, below & inside, SEE_WINDOW)
        agree += ok & (ncc > SEE_AGREE)
    floor = agree >= SEE_MIN
    if floor.any():
        X = floor_points(Ks[i], Rs[i], ts[i], normal, offset, shape)
        ys, xs = np.nonzero(floor)
        under = under_object(X[ys, xs])
        floor[ys[under], xs[under]] = False
    floor = cv2.morphologyEx(floor.astype(np.uint8), cv2.MORPH_OPEN, _disc(1))
    return cv2.erode(floor, _disc(SEE_ERODE)).astype(bool) if SEE_ERODE > 0 else floor.astype(bool)
