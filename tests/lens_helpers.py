"""Synthetic distorted photographs for the lens tests: Gaussian dots drawn where a lens puts known 3D points."""
from __future__ import annotations

import numpy as np

SIGMA = 1.2  # dot radius (pixels)


def look_at(eye: np.ndarray, target: np.ndarray = np.zeros(3)) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world-to-camera (R, t) of a camera at `eye` looking at `target`, world z up."""
    eye = np.asarray(eye, dtype=np.float64)
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])
    return R, -R @ eye


def dots_image(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) float32 image of Gaussian dots centred at `pixels` (our convention: pixel centres at +0.5)."""
    w, h = size
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    img = np.zeros((h, w), np.float32)
    for pu, pv in pixels:
        img += np.exp(-((u - pu) ** 2 + (v - pv) ** 2) / (2 * SIGMA**2)).astype(np.float32)
    return np.repeat(np.clip(img, 0, 1)[..., None], 3, axis=2)


def separated(pixels: np.ndarray, size: tuple[int, int], gap: float = 14.0, margin: float = 10.0) -> np.ndarray:
    """Indices of pixels at least `margin` inside the image and `gap` apart from each other (greedy)."""
    w, h = size
    keep: list[int] = []
    for i, p in enumerate(pixels):
        if not (margin < p[0] < w - margin and margin < p[1] < h - margin):
            continue
        if all(np.hypot(*(p - pixels[j])) >= gap for j in keep):
            keep.append(i)
    return np.array(keep, dtype=int)


def dot_centres(image: np.ndarray, expected: np.ndarray, radius: int = 5) -> np.ndarray:
    """Intensity-weighted centres (our pixel convention) of the dots near the `expected` pixels."""
    grey = np.asarray(image).mean(axis=2)
    h, w = grey.shape
    out = []
    for pu, pv in expected:
        j0, i0 = int(pu), int(pv)
        i = slice(max(0, i0 - radius), min(h, i0 + radius + 1))
        j = slice(max(0, j0 - radius), min(w, j0 + radius + 1))
        patch = grey[i, j]
        vv, uu = np.mgrid[i, j]
        out.append([(patch * (uu + 0.5)).sum() / patch.sum(), (patch * (vv + 0.5)).sum() / patch.sum()])
    return np.array(out)


def project(K: np.ndarray, R: np.ndarray, t: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(N, 2) pinhole pixels of world points."""
    x = (X @ R.T + t) @ K.T
    return x[:, :2] / x[:, 2:3]
