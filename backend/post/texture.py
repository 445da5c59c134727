"""Texture baking from calibrated photographs: visibility-tested, weighted blending, push-pull fill."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from scipy.ndimage import binary_erosion, uniform_filter

from backend.cameras import world_to_clip
from backend.io.views import View
from backend.post.geometry import bbox_diagonal, vertex_normals
from backend.post.uv import UVMesh

DEPTH_TOLERANCE = 0.01  # of the bbox diagonal
MIN_COSINE = 0.05
WEIGHT_POWER = 2.0


def smooth_normals(mesh: UVMesh) -> np.ndarray:
    """Vertex normals averaged over UV-seam copies of the same source vertex."""
    normals = vertex_normals(mesh.vertices, mesh.faces)
    src = mesh.source_vertex
    acc = np.zeros((int(src.max()) + 1, 3))
    np.add.at(acc, src, normals)
    return acc[src] / np.maximum(np.linalg.norm(acc[src], axis=1), 1e-30)[:, None]


def uv_texels(mesh: UVMesh, size: int, rasterizer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterize in UV space: covered texel mask (size, size) in v-up rows, 3D points and normals there."""
    dev = rasterizer.device
    uv = torch.as_tensor(mesh.uv, dtype=torch.float32, device=dev)
    pos = torch.cat([uv * 2 - 1, torch.zeros_like(uv[:, :1]), torch.ones_like(uv[:, :1])], dim=1)[None]
    tri = torch.as_tensor(mesh.faces, dtype=torch.int32, device=dev)
    attr = torch.as_tensor(np.concatenate([mesh.vertices, smooth_normals(mesh)], axis=1),
                           dtype=torch.float32, device=dev)[None]
    with torch.no_grad():
        rast = rasterizer.rasterize(pos, tri, (size, size))
        values = rasterizer.interpolate(attr, rast, tri)[0]
    covered = (rast[0, ..., 3] > 0).cpu().numpy()
    values = values.cpu().numpy().astype(np.float64)[covered]
    normals = values[:, 3:] / np.maximum(np.linalg.norm(values[:, 3:], axis=1), 1e-30)[:, None]
    return covered, values[:, :3], normals


def clip_positions(vertices: np.ndarray, view: View) -> tuple[np.ndarray, np.ndarray]:
    """Camera coordinates (N, 3) and clip-space positions (N, 4) of vertices, near/far fitted to them."""
    cam = vertices @ view.R.T + view.t
    near = max(float(cam[:, 2].min()) * 0.5, 1e-4)
    far = max(float(cam[:, 2].max()) * 2.0, near * 10)
    m = world_to_clip(view.K, view.R, view.t, view.width, view.height, near, far)
    return cam, np.concatenate([vertices, np.ones((len(vertices), 1))], axis=1) @ m.T


def render_attribute(clip: np.ndarray, faces: np.ndarray, attr: np.ndarray, view: View,
                     rasterizer) -> tuple[np.ndarray, np.ndarray]:
    """A vertex attribute interpolated over a view's pixels: values (H, W, C) float64 and coverage (H, W)."""
    dev = rasterizer.device
    tri = torch.as_tensor(faces, dtype=torch.int32, device=dev)
    with torch.no_grad():
        rast = rasterizer.rasterize(torch.as_tensor(clip, dtype=torch.float32, device=dev)[None], tri,
                                    (view.height, view.width))
        values = rasterizer.interpolate(torch.as_tensor(attr, dtype=torch.float32, device=dev)[None], rast, tri)
    return values[0].cpu().numpy().astype(np.float64), (rast[0, ..., 3] > 0).cpu().numpy()


def depth_map(mesh: UVMesh, view: View, rasterizer) -> np.ndarray:
    """Camera depth of the nearest surface per pixel of the view (inf where empty)."""
    cam, clip = clip_positions(mesh.vertices, view)
    depth, covered = render_attribute(clip, mesh.faces, cam[:, 2:3], view, rasterizer)
    out = depth[..., 0]
    out[~covered] = np.inf
    return out


def bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample image (H, W, C) at OpenCV pixel coordinates (pixel centres at +0.5), clamped at borders."""
    h, w = image.shape[:2]
    fx = np.clip(x - 0.5, 0, w - 1)
    fy = np.clip(y - 0.5, 0, h - 1)
    x0 = np.minimum(np.floor(fx).astype(np.int64), w - 2 if w > 1 else 0)
    y0 = np.minimum(np.floor(fy).astype(np.int64), h - 2 if h > 1 else 0)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = (fx - x0)[:, None], (fy - y0)[:, None]
    top = image[y0, x0] * (1 - ax) + image[y0, x1] * ax
    bottom = image[y1, x0] * (1 - ax) + image[y1, x1] * ax
    return top * (1 - ay) + bottom * ay


def view_contribution(points: np.ndarray, normals: np.ndarray, view: View, depth: np.ndarray,
                      tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-point weight (0 where hidden, off-mask or grazing) and sampled colour from one view."""
    cam = points @ view.R.T + view.t
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        pix = (cam @ view.K.T)[:, :2] / z[:, None]
    x, y = pix[:, 0], pix[:, 1]
    inside = (z > 0) & (x >= 0) & (x < view.width) & (y >= 0) & (y < view.height)
    ix = np.clip(np.nan_to_num(x).astype(np.int64), 0, view.width - 1)
    iy = np.clip(np.nan_to_num(y).astype(np.int64), 0, view.height - 1)
    mask = binary_erosion(view.mask, iterations=1) if view.mask.sum() > 100 else view.mask
    visible = inside & (z <= depth[iy, ix] + tolerance) & mask[iy, ix]
    to_cam = view.center[None, :] - points
    cos = (normals * to_cam).sum(1) / np.maximum(np.linalg.norm(to_cam, axis=1), 1e-30)
    focal = 0.5 * (view.K[0, 0] + view.K[1, 1])
    footprint = cos * (focal / np.where(z > 0, z, np.inf)) ** 2
    weight = np.where(visible & (cos > MIN_COSINE), footprint, 0.0) ** WEIGHT_POWER
    colour = np.zeros((len(points), 3))
    use = weight > 0
    colour[use] = bilinear(view.image[..., :3].astype(np.float64), x[use], y[use])
    return weight, colour


def push_pull(colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill texels of zero weight from coarser averages of their neighbourhood (recursive push-pull)."""
    h, w = weight.shape
    if weight.all() or (h <= 1 and w <= 1) or not weight.any():
        return colour
    ph, pw = h + h % 2, w + w % 2
    wc = np.zeros((ph, pw, colour.shape[2]))
    ww = np.zeros((ph, pw))
    wc[:h, :w] = colour * weight[..., None]
    ww[:h, :w] = weight
    wc_small = wc.reshape(ph // 2, 2, pw // 2, 2, -1).sum((1, 3))
    w_small = ww.reshape(ph // 2, 2, pw // 2, 2).sum((1, 3))
    small = push_pull(wc_small / np.maximum(w_small, 1e-30)[..., None], (w_small > 0).astype(np.float64))
    up = uniform_filter(np.repeat(np.repeat(small, 2, axis=0), 2, axis=1), size=(3, 3, 1), mode="nearest")[:h, :w]
    return np.where((weight > 0)[..., None], colour, up)


def bake_texture(mesh: UVMesh, views: list[View], size: int, rasterizer,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(size, size, 3) uint8 texture, row 0 at v = 1 (top), blended from the views that see each texel."""
    covered, points, normals = uv_texels(mesh, size, rasterizer)
    tolerance = DEPTH_TOLERANCE * bbox_diagonal(mesh.vertices)
    sum_w = np.zeros(len(points))
    sum_wc = np.zeros((len(points), 3))
    for i, view in enumerate(views):
        weight, colour = view_contribution(points, normals, view, depth_map(mesh, view, rasterizer), tolerance)
        sum_w += weight
        sum_wc += weight[:, None] * colour
        if progress is not None:
            progress(i + 1, len(views))
    texel_colour = np.zeros((size, size, 3))
    texel_weight = np.zeros((size, size))
    seen = sum_w > 0
    rows, cols = np.nonzero(covered)
    texel_colour[rows[seen], cols[seen]] = sum_wc[seen] / sum_w[seen, None]
    texel_weight[rows[seen], cols[seen]] = 1.0
    filled = push_pull(texel_colour, texel_weight)
    return (np.clip(filled[::-1], 0, 1) * 255 + 0.5).astype(np.uint8)


def render_textured(mesh: UVMesh, texture: np.ndarray, view: View, rasterizer) -> tuple[np.ndarray, np.ndarray]:
    """Render the textured mesh from a view's camera: image (H, W, 3) float in [0, 1] and coverage mask."""
    _, clip = clip_positions(mesh.vertices, view)
    uv, covered = render_attribute(clip, mesh.faces, mesh.uv, view, rasterizer)
    uv = uv[covered]
    size_y, size_x = texture.shape[:2]
    image = np.zeros((view.height, view.width, 3))
    image[covered] = bilinear(texture.astype(np.float64) / 255.0, uv[:, 0] * size_x, (1 - uv[:, 1]) * size_y)
    return image, covered
