"""Stand-in for the two OpenCV calls the reference makes, in numpy (used only when cv2 is missing)."""
from __future__ import annotations

import numpy as np

STAND_IN = True
INTER_NEAREST = 0
INTER_LINEAR = 1


def _rq(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """m = K @ R with K upper triangular (positive diagonal) and R orthogonal."""
    flip = np.eye(3)[::-1]
    q, r = np.linalg.qr((flip @ m).T)
    k = flip @ r.T @ flip
    rot = flip @ q.T
    d = np.diag(np.sign(np.diag(k)))
    return k @ d, d @ rot


def decomposeProjectionMatrix(p: np.ndarray):  # noqa: N802 - OpenCV's name
    """(K, R, c homogeneous (4, 1), rotX, rotY, rotZ, euler) of a 3x4 projection matrix, like OpenCV."""
    p = np.asarray(p, dtype=np.float64)
    k, rot = _rq(p[:, :3])
    _, _, vt = np.linalg.svd(p)
    c = vt[-1].reshape(4, 1)
    eye = np.eye(3)
    return k, rot, c, eye, eye, eye, np.zeros((3, 1))


def resize(img: np.ndarray, dsize: tuple[int, int], interpolation: int = INTER_LINEAR) -> np.ndarray:
    """Resize (H, W[, C]) to dsize = (width, height), pixel centres aligned as OpenCV does."""
    img = np.asarray(img)
    w, h = int(dsize[0]), int(dsize[1])
    sy = img.shape[0] / h
    sx = img.shape[1] / w
    if interpolation == INTER_NEAREST:
        ys = np.minimum((np.arange(h) * sy).astype(int), img.shape[0] - 1)
        xs = np.minimum((np.arange(w) * sx).astype(int), img.shape[1] - 1)
        return img[ys][:, xs]
    y = np.clip((np.arange(h) + 0.5) * sy - 0.5, 0, img.shape[0] - 1)
    x = np.clip((np.arange(w) + 0.5) * sx - 0.5, 0, img.shape[1] - 1)
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    y1, x1 = np.minimum(y0 + 1, img.shape[0] - 1), np.minimum(x0 + 1, img.shape[1] - 1)
    wy = (y - y0).reshape(-1, 1, *([1] * (img.ndim - 2)))
    wx = (x - x0).reshape(1, -1, *([1] * (img.ndim - 2)))
    f = img.astype(np.float64)
    top = f[y0][:, x0] * (1 - wx) + f[y0][:, x1] * wx
    bot = f[y1][:, x0] * (1 - wx) + f[y1][:, x1] * wx
    return (top * (1 - wy) + bot * wy).astype(img.dtype)
