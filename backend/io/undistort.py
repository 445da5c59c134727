"""Lens distortion removed from a view: COLMAP camera models resampled to a pinhole camera with OpenCV.

Output geometry: the same image size, and a pinhole K_new whose focal lengths are K's scaled by one factor
(square pixels stay square) and whose principal point is shifted so that every output pixel sees the
photograph (the largest axis-aligned window inside the undistorted frame, as COLMAP's undistorter with
blank pixels 0 or OpenCV's alpha=0). No pixel is invented, so no valid-pixel mask is needed; a thin band
at the frame's edge is cropped away instead. Pixel convention (ours = COLMAP's): origin at the top-left
corner of the top-left pixel, pixel centres at +0.5; OpenCV's remap indexes pixel centres at integers,
so K is shifted by half a pixel on the way in and out.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from backend.runtime.errors import JobError
from backend.io.images import is_8bit

# COLMAP model name -> (distortion parameter names in COLMAP's order, fisheye?)
MODELS: dict[str, tuple[tuple[str, ...], bool]] = {
    "SIMPLE_PINHOLE": ((), False),
    "PINHOLE": ((), False),
    "SIMPLE_RADIAL": (("k",), False),
    "RADIAL": (("k1", "k2"), False),
    "OPENCV": (("k1", "k2", "p1", "p2"), False),
    "FULL_OPENCV": (("k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6"), False),
    "SIMPLE_RADIAL_FISHEYE": (("k",), True),
    "RADIAL_FISHEYE": (("k1", "k2"), True),
    "OPENCV_FISHEYE": (("k1", "k2", "k3", "k4"), True),
}
BORDER_SAMPLES = 256  # points per image edge when finding the valid window
MAX_TAN = float(np.tan(np.radians(75.0)))  # a pinhole view reaches at most 75 degrees off axis (wide fisheyes)
UNSUPPORTED_HINT = ("supported camera models: " + ", ".join(MODELS)
                    + "; re-run COLMAP with one of them, or undistort the images first (colmap image_undistorter)")


def opencv_coefficients(model: str, params: Sequence[float], view: str | None = None) -> tuple[bool, np.ndarray]:
    """(fisheye?, coefficients) in OpenCV's order for a COLMAP model's distortion parameters.

    Perspective models give OpenCV's 8 rational-model coefficients (k1, k2, p1, p2, k3, k4, k5, k6), fisheye
    models cv2.fisheye's (k1, k2, k3, k4); COLMAP defines these models with exactly OpenCV's formulas.
    """
    if model not in MODELS:
        raise JobError(f"camera model {model!r} is not supported" + (f" (view {view!r})" if view else ""),
                       UNSUPPORTED_HINT, view=view)
    names, fisheye = MODELS[model]
    values = np.asarray(params, dtype=np.float64).ravel()
    if values.size != len(names):
        raise JobError(f"camera model {model} takes {len(names)} distortion parameter(s) "
                       f"({', '.join(names) or 'none'}), got {values.size}",
                       "give the parameters in COLMAP's order after the focal length and principal point", view=view)
    if not np.all(np.isfinite(values)):
        raise JobError(f"camera model {model}: a distortion parameter is NaN or infinite",
                       "fix the camera calibration", view=view)
    given = dict(zip(names, values))
    if "k" in given:
        given["k1"] = given.pop("k")
    if fisheye:
        return True, np.array([given.get(k, 0.0) for k in ("k1", "k2", "k3", "k4")])
    return False, np.array([given.get(k, 0.0) for k in ("k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6")])


def to_opencv_pixels(K: np.ndarray) -> np.ndarray:
    """K with pixel centres at integers (OpenCV's remap) from ours (centres at +0.5)."""
    K = np.array(K, dtype=np.float64)
    K[0, 2] -= 0.5
    K[1, 2] -= 0.5
    return K


def from_opencv_pixels(K: np.ndarray) -> np.ndarray:
    """Inverse of to_opencv_pixels."""
    K = np.array(K, dtype=np.float64)
    K[0, 2] += 0.5
    K[1, 2] += 0.5
    return K


def undistort_points(pixels: np.ndarray, K: np.ndarray, fisheye: bool, coeffs: np.ndarray) -> np.ndarray:
    """(N, 2) distorted pixels (our convention) -> (N, 2) normalised pinhole coordinates x/z, y/z."""
    pts = np.asarray(pixels, dtype=np.float64).reshape(-1, 1, 2) - 0.5
    Kcv = to_opencv_pixels(K)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    if fisheye:
        out = cv2.fisheye.undistortPoints(pts, Kcv, coeffs, criteria=criteria)
    else:
        out = cv2.undistortPointsIter(pts, Kcv, coeffs, None, None, criteria)
    return out.reshape(-1, 2)


def distort_points(normalised: np.ndarray, K: np.ndarray, fisheye: bool, coeffs: np.ndarray) -> np.ndarray:
    """(N, 2) normalised pinhole coordinates -> (N, 2) distorted pixels (our convention)."""
    rays = np.hstack([np.asarray(normalised, dtype=np.float64).reshape(-1, 2), np.ones((len(normalised), 1))])
    zero = np.zeros(3)
    if fisheye:
        px, _ = cv2.fisheye.projectPoints(rays.reshape(-1, 1, 3), zero, zero, K, coeffs)
    else:
        px, _ = cv2.projectPoints(rays, zero, zero, K, coeffs)
    return px.reshape(-1, 2)


def valid_window(K: np.ndarray, fisheye: bool, coeffs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(x_left, x_right, y_top, y_bottom) in normalised coordinates: the largest axis-aligned window that
    the photograph's frame covers once undistorted (its border sampled densely, not OpenCV's 9x9 grid).

    Border points whose ray lies 90 degrees or more off axis (wide fisheyes) have no pinhole image and are
    skipped; the window is cut at MAX_TAN."""
    w, h = size
    s = np.linspace(0.0, 1.0, BORDER_SAMPLES)
    edges = [np.stack([np.zeros_like(s), s * h], 1), np.stack([np.full_like(s, w), s * h], 1),
             np.stack([s * w, np.zeros_like(s)], 1), np.stack([s * w, np.full_like(s, h)], 1)]
    kept = []
    for edge in edges:
        rays = undistort_points(edge, K, fisheye, coeffs)
        direction = (edge - K[:2, 2]) / np.diag(K)[:2]
        ok = np.all(np.isfinite(rays), axis=1) & (np.sum(rays * direction, axis=1) > 0)
        if not ok.any():
            raise JobError(f"the lens distortion ({coeffs.tolist()}) maps a whole image edge behind the camera",
                           "check the distortion coefficients; they do not describe a real lens")
        kept.append(rays[ok])
    left, right, top, bottom = kept
    window = np.array([left[:, 0].max(), right[:, 0].min(), top[:, 1].max(), bottom[:, 1].min()])
    window = np.clip(window, -MAX_TAN, MAX_TAN)
    if window[0] >= window[1] or window[2] >= window[3]:
        raise JobError(f"the lens distortion ({coeffs.tolist()}) folds the image over itself",
                       "check the distortion coefficients; they do not describe a real lens")
    return window


def undistorted_camera(K: np.ndarray, fisheye: bool, coeffs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pinhole K_new for an image of `size` (W, H): K's focal lengths times one factor, principal point placed
    so that the image is exactly the valid window along its tighter axis and centred in it along the other."""
    w, h = size
    xl, xr, yt, yb = valid_window(K, fisheye, coeffs, size)
    scale = max(w / ((xr - xl) * K[0, 0]), h / ((yb - yt) * K[1, 1]))
    fx, fy = scale * K[0, 0], scale * K[1, 1]
    return np.array([[fx, 0.0, w / 2 - fx * (xl + xr) / 2], [0.0, fy, h / 2 - fy * (yt + yb) / 2], [0.0, 0.0, 1.0]])


def undistort_maps(K: np.ndarray, model: str, params: Sequence[float], size: tuple[int, int],
                   view: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(map_x, map_y, K_new) for cv2.remap (float32 maps, OpenCV pixel indices), or None when the lens has no
    distortion (a pinhole model or all-zero coefficients; a fisheye always has). One call serves every view
    sharing a camera."""
    fisheye, coeffs = opencv_coefficients(model, params, view)
    if not fisheye and not np.any(coeffs):
        return None
    K = np.asarray(K, dtype=np.float64)
    if abs(K[0, 1]) > 1e-9:
        raise JobError("a camera with lens distortion has a skewed K", "use a K without skew", view=view)
    K_new = undistorted_camera(K, fisheye, coeffs, size)
    Kcv, Kcv_new = to_opencv_pixels(K), to_opencv_pixels(K_new)
    if fisheye:
        map_x, map_y = cv2.fisheye.initUndistortRectifyMap(Kcv, coeffs, np.eye(3), Kcv_new, size, cv2.CV_32FC1)
    else:
        map_x, map_y = cv2.initUndistortRectifyMap(Kcv, coeffs, None, Kcv_new, size, cv2.CV_32FC1)
    return map_x, map_y, K_new


def remap_view(image: np.ndarray, mask: np.ndarray | None, map_x: np.ndarray,
               map_y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The image resampled bilinearly and the mask by nearest neighbour through undistortion maps.

    An 8-bit image stays on the 8-bit grid (rounded), so a job written from it keeps 8-bit PNGs."""
    out = cv2.remap(np.ascontiguousarray(image, dtype=np.float32), map_x, map_y, cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    if is_8bit(np.asarray(image)):
        out = np.round(out * 255.0) / 255.0
    if out.ndim == 2:
        out = out[..., None]
    if mask is None:
        return out, None
    warped = cv2.remap(np.asarray(mask, dtype=np.uint8), map_x, map_y, cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_REPLICATE)
    return out, warped > 0


def undistort_view(image: np.ndarray, mask: np.ndarray | None, K: np.ndarray, model: str,
                   params: Sequence[float], view: str | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(image, mask, K_new) of a photograph taken through a COLMAP camera `model` with distortion `params`
    (COLMAP's order, after focal length and principal point, which K holds): a pinhole view of the same size."""
    return CachedUndistorter()(image, mask, K, model, params, view)


class CachedUndistorter:
    """undistort_view with the maps kept per lens (K, model, parameters, size): views sharing a camera,
    as most frames of a capture do, pay for the maps once."""

    def __init__(self) -> None:
        self.maps: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray] | None] = {}

    def __call__(self, image: np.ndarray, mask: np.ndarray | None, K: np.ndarray, model: str,
                 params: Sequence[float], view: str | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Same contract as undistort_view."""
        h, w = np.asarray(image).shape[:2]
        K = np.asarray(K, dtype=np.float64)
        key = (K.tobytes(), model, tuple(float(p) for p in params), w, h)
        if key not in self.maps:
            self.maps[key] = undistort_maps(K, model, params, (w, h), view)
        maps = self.maps[key]
        if maps is None:
            return image, mask, K
        out, warped = remap_view(image, mask, maps[0], maps[1])
        return out, warped, maps[2].copy()
