"""Numba kernels of the CPU texture bake: texel positions from UV space, one pass per view over all texels.

A texel counts for a view when it faces the camera, projects inside the image and the mask
(shrunk by one pixel: edge pixels mix in the background), and is not behind the surface the view
sees there: the visible triangle at that pixel (from the rasterizer's visibility pass) is
intersected with the texel's own viewing ray, so the depth test is exact even where the
visibility pass runs at a lower resolution than the photo.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True, error_model="numpy")
def texel_samples(rows: np.ndarray, cols: np.ndarray, face: np.ndarray, size: int, uv: np.ndarray,
                  faces: np.ndarray, vertices: np.ndarray, normals: np.ndarray,
                  points: np.ndarray, texel_normals: np.ndarray) -> None:
    """3D point and unit normal at each covered texel centre, by barycentrics of its UV triangle."""
    for k in prange(len(rows)):
        f = face[k]
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        px = (cols[k] + 0.5) / size
        py = (rows[k] + 0.5) / size
        ax, ay = uv[i0, 0], uv[i0, 1]
        e1x, e1y = uv[i1, 0] - ax, uv[i1, 1] - ay
        e2x, e2y = uv[i2, 0] - ax, uv[i2, 1] - ay
        det = e1x * e2y - e1y * e2x
        if det == 0.0:
            b1 = b2 = 1.0 / 3.0
        else:
            dx, dy = px - ax, py - ay
            b1 = (dx * e2y - dy * e2x) / det
            b2 = (e1x * dy - e1y * dx) / det
        b0 = 1.0 - b1 - b2
        norm = 0.0
        for c in range(3):
            points[k, c] = b0 * vertices[i0, c] + b1 * vertices[i1, c] + b2 * vertices[i2, c]
            n = b0 * normals[i0, c] + b1 * normals[i1, c] + b2 * normals[i2, c]
            texel_normals[k, c] = n
            norm += n * n
        norm = max(np.sqrt(norm), 1e-30)
        for c in range(3):
            texel_normals[k, c] /= norm


@njit(inline="always")
def _bilinear(image: np.ndarray, x: float, y: float, c: int) -> float:
    """Channel c of image (H, W, 3) at OpenCV pixel coordinates (centres at +0.5), clamped at the borders."""
    h, w = image.shape[0], image.shape[1]
    fx = min(max(x - 0.5, 0.0), w - 1.0)
    fy = min(max(y - 0.5, 0.0), h - 1.0)
    x0 = min(int(fx), max(w - 2, 0))
    y0 = min(int(fy), max(h - 2, 0))
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    ax, ay = fx - x0, fy - y0
    top = image[y0, x0, c] * (1 - ax) + image[y0, x1, c] * ax
    bottom = image[y1, x0, c] * (1 - ax) + image[y1, x1, c] * ax
    return top * (1 - ay) + bottom * ay


@njit(inline="always")
def _in_mask(mask: np.ndarray, y: int, x: int, erode: bool) -> bool:
    """mask[y, x], and with erode also its four neighbours (outside the image counts as off the mask)."""
    h, w = mask.shape
    if not mask[y, x]:
        return False
    if not erode:
        return True
    if y == 0 or x == 0 or y == h - 1 or x == w - 1:
        return False
    return mask[y - 1, x] and mask[y + 1, x] and mask[y, x - 1] and mask[y, x + 1]


@njit(parallel=True, cache=True, error_model="numpy")
def accumulate_view(points: np.ndarray, normals: np.ndarray, R: np.ndarray, t: np.ndarray, K: np.ndarray,
                    center: np.ndarray, ids: np.ndarray, cam_vertices: np.ndarray, faces: np.ndarray,
                    mask: np.ndarray, erode: bool, image: np.ndarray, tolerance: float, min_cos: float, power: float,
                    sum_w: np.ndarray, sum_wc: np.ndarray) -> None:
    """Add this view's weight and weighted colour to every texel it sees (weight (cos * (f/z)^2)^power)."""
    h, w = mask.shape
    ih, iw = ids.shape
    sy, sx = ih / h, iw / w
    fx, fy, skew, cx, cy = K[0, 0], K[1, 1], K[0, 1], K[0, 2], K[1, 2]
    focal = 0.5 * (fx + fy)
    for k in prange(len(points)):
        px, py, pz = points[k, 0], points[k, 1], points[k, 2]
        vx, vy, vz = center[0] - px, center[1] - py, center[2] - pz
        dist = np.sqrt(vx * vx + vy * vy + vz * vz)
        cos = (normals[k, 0] * vx + normals[k, 1] * vy + normals[k, 2] * vz) / max(dist, 1e-30)
        if cos <= min_cos:
            continue
        camx = R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz + t[0]
        camy = R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz + t[1]
        z = R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz + t[2]
        if z <= 0:
            continue
        x = (fx * camx + skew * camy) / z + cx
        y = fy * camy / z + cy
        if not (0 <= x < w and 0 <= y < h):
            continue
        if not _in_mask(mask, int(y), int(x), erode):
            continue
        fid = ids[min(int(y * sy), ih - 1), min(int(x * sx), iw - 1)] - 1
        if fid < 0:
            continue
        a, b, c = faces[fid, 0], faces[fid, 1], faces[fid, 2]
        ax, ay, az = cam_vertices[a, 0], cam_vertices[a, 1], cam_vertices[a, 2]
        e1x, e1y, e1z = cam_vertices[b, 0] - ax, cam_vertices[b, 1] - ay, cam_vertices[b, 2] - az
        e2x, e2y, e2z = cam_vertices[c, 0] - ax, cam_vertices[c, 1] - ay, cam_vertices[c, 2] - az
        nx = e1y * e2z - e1z * e2y
        ny = e1z * e2x - e1x * e2z
        nz = e1x * e2y - e1y * e2x
        ry = (y - cy) / fy
        rx = (x - cx - skew * ry) / fx
        denom = nx * rx + ny * ry + nz
        num = nx * ax + ny * ay + nz * az
        if abs(denom) > 1e-12 * np.sqrt(nx * nx + ny * ny + nz * nz):
            seen = num / denom
        else:
            seen = min(az, min(cam_vertices[b, 2], cam_vertices[c, 2]))
        if z > seen + tolerance:
            continue
        weight = (cos * (focal / z) ** 2) ** power
        sum_w[k] += weight
        for ch in range(3):
            sum_wc[k, ch] += weight * _bilinear(image, x, y, ch)
