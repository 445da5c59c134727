"""Texture baking from calibrated photographs: visibility-tested, weighted blending, push-pull fill."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from scipy.ndimage import binary_erosion, uniform_filter

from backend.cameras.projection import world_to_clip
from backend.io.views import View
from backend.post.geometry import bbox_diagonal, vertex_normals
from backend.post.uv import UVMesh

DEPTH_TOLERANCE = 0.01  # of the bbox diagonal
MIN_COSINE = 0.05
WEIGHT_POWER = 2.0
VISIBILITY_MAX_SIDE = 1024  # pixels of the CPU visibility pass (its depth test is exact per texel at any size)


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
    mask = erode_once(view.mask)
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
    wc = np.zeros((ph, pw, colour.shape[2]), dtype=colour.dtype)
    ww = np.zeros((ph, pw), dtype=weight.dtype)
    wc[:h, :w] = colour * weight[..., None]
    ww[:h, :w] = weight
    wc_small = wc.reshape(ph // 2, 2, pw // 2, 2, -1).sum((1, 3))
    w_small = ww.reshape(ph // 2, 2, pw // 2, 2).sum((1, 3))
    small = push_pull(wc_small / np.maximum(w_small, 1e-30)[..., None], (w_small > 0).astype(weight.dtype))
    up = uniform_filter(np.repeat(np.repeat(small, 2, axis=0), 2, axis=1), size=(3, 3, 1), mode="nearest")[:h, :w]
    return np.where((weight > 0)[..., None], colour, up)


def erode_once(mask: np.ndarray) -> np.ndarray:
    """The mask shrunk by one pixel (so silhouette-edge pixels, mixed with background, are not used)."""
    return binary_erosion(mask, iterations=1) if mask.sum() > 100 else mask  # as bake_kernels._in_mask


def visibility_ids(vertices: np.ndarray, faces: np.ndarray, view: View, max_side: int) -> np.ndarray:
    """Visible triangle id + 1 per pixel of the view, at most max_side pixels on the longer side (CPU pass)."""
    from backend.raster.visibility_numba import visible_ids

    _, clip = clip_positions(vertices, view)
    scale = min(1.0, max_side / max(view.width, view.height))
    h, w = max(1, round(view.height * scale)), max(1, round(view.width * scale))
    return visible_ids(clip[None], faces.astype(np.int32), h, w)[0]


def texel_points_cpu(mesh: UVMesh, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Covered texels of the UV layout (rows, cols, v-up) with their 3D points and unit normals (numba)."""
    from backend.post.bake_kernels import texel_samples
    from backend.raster.visibility_numba import visible_ids

    pos = np.concatenate([mesh.uv * 2 - 1, np.zeros((len(mesh.uv), 1)), np.ones((len(mesh.uv), 1))], axis=1)
    faces = np.ascontiguousarray(mesh.faces, dtype=np.int32)
    ids = visible_ids(pos[None], faces, size, size)[0]
    rows, cols = np.nonzero(ids)
    face = ids[rows, cols] - 1
    points = np.empty((len(rows), 3), dtype=np.float32)  # float32: half the memory traffic of the per-view pass
    normals = np.empty((len(rows), 3), dtype=np.float32)
    texel_samples(rows, cols, face, size, np.ascontiguousarray(mesh.uv, dtype=np.float64), faces,
                  np.ascontiguousarray(mesh.vertices, dtype=np.float64), smooth_normals(mesh), points, normals)
    return rows, cols, points, normals


def bake_cpu(mesh: UVMesh, views: list[View], size: int, progress: Callable[[int, int], None] | None,
             visibility_side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CPU bake with numba kernels: (rows, cols, weight sum, weighted colour sum) per covered texel."""
    from backend.post.bake_kernels import accumulate_view

    rows, cols, points, normals = texel_points_cpu(mesh, size)
    tolerance = DEPTH_TOLERANCE * bbox_diagonal(mesh.vertices)
    faces = np.ascontiguousarray(mesh.faces, dtype=np.int32)
    sum_w = np.zeros(len(points))
    sum_wc = np.zeros((len(points), 3))
    for i, view in enumerate(views):
        ids = visibility_ids(mesh.vertices, faces, view, visibility_side)
        cam = np.ascontiguousarray(mesh.vertices @ view.R.T + view.t)
        image = np.ascontiguousarray(view.image[..., :3], dtype=np.float32)
        accumulate_view(points, normals, view.R.astype(np.float64), view.t.astype(np.float64),
                        view.K.astype(np.float64), view.center.astype(np.float64), ids, cam, faces,
                        view.mask, bool(view.mask.sum() > 100), image, tolerance, MIN_COSINE, WEIGHT_POWER,
                        sum_w, sum_wc)
        if progress is not None:
            progress(i + 1, len(views))
    return rows, cols, sum_w, sum_wc


def bilinear_torch(image: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """`bilinear` on a torch device: image (H, W, C) at pixel coordinates x, y (N,)."""
    h, w = image.shape[:2]
    fx = (x - 0.5).clamp(0, w - 1)
    fy = (y - 0.5).clamp(0, h - 1)
    x0 = fx.floor().long().clamp(max=max(w - 2, 0))
    y0 = fy.floor().long().clamp(max=max(h - 2, 0))
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    ax, ay = (fx - x0)[:, None], (fy - y0)[:, None]
    top = image[y0, x0] * (1 - ax) + image[y0, x1] * ax
    bottom = image[y1, x0] * (1 - ax) + image[y1, x1] * ax
    return top * (1 - ay) + bottom * ay


def bake_device(mesh: UVMesh, views: list[View], size: int, rasterizer,
                progress: Callable[[int, int], None] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bake through the rasterizer layer, every per-texel step as torch ops on its device (CUDA, MPS)."""
    dev = rasterizer.device
    covered, points_np, normals_np = uv_texels(mesh, size, rasterizer)
    rows, cols = np.nonzero(covered)
    points = torch.as_tensor(points_np, dtype=torch.float32, device=dev)
    normals = torch.as_tensor(normals_np, dtype=torch.float32, device=dev)
    tolerance = DEPTH_TOLERANCE * bbox_diagonal(mesh.vertices)
    sum_w = torch.zeros(len(points), device=dev)
    sum_wc = torch.zeros((len(points), 3), device=dev)
    for i, view in enumerate(views):
        cam_v, clip = clip_positions(mesh.vertices, view)
        tri = torch.as_tensor(mesh.faces, dtype=torch.int32, device=dev)
        with torch.no_grad():
            rast = rasterizer.rasterize(torch.as_tensor(clip, dtype=torch.float32, device=dev)[None], tri,
                                        (view.height, view.width))
            depth = rasterizer.interpolate(torch.as_tensor(cam_v[:, 2:3], dtype=torch.float32, device=dev)[None],
                                           rast, tri)[0, ..., 0]
        depth = torch.where(rast[0, ..., 3] > 0, depth, torch.full_like(depth, float("inf")))
        R = torch.as_tensor(view.R, dtype=torch.float32, device=dev)
        t = torch.as_tensor(view.t, dtype=torch.float32, device=dev)
        K = torch.as_tensor(view.K, dtype=torch.float32, device=dev)
        cam = points @ R.T + t
        z = cam[:, 2]
        pix = cam @ K.T
        x, y = pix[:, 0] / z, pix[:, 1] / z
        inside = (z > 0) & (x >= 0) & (x < view.width) & (y >= 0) & (y < view.height)
        ix = torch.nan_to_num(x).clamp(0, view.width - 1).long()
        iy = torch.nan_to_num(y).clamp(0, view.height - 1).long()
        mask = torch.as_tensor(erode_once(view.mask), device=dev)
        visible = inside & (z <= depth[iy, ix] + tolerance) & mask[iy, ix]
        to_cam = torch.as_tensor(view.center, dtype=torch.float32, device=dev)[None] - points
        cos = (normals * to_cam).sum(1) / to_cam.norm(dim=1).clamp_min(1e-30)
        focal = 0.5 * float(view.K[0, 0] + view.K[1, 1])
        footprint = cos * (focal / torch.where(z > 0, z, torch.full_like(z, float("inf")))) ** 2
        weight = torch.where(visible & (cos > MIN_COSINE), footprint, torch.zeros_like(z)) ** WEIGHT_POWER
        use = (weight > 0).nonzero().squeeze(1)
        image = torch.as_tensor(view.image[..., :3], dtype=torch.float32, device=dev)
        sum_w += weight
        sum_wc.index_add_(0, use, weight[use, None] * bilinear_torch(image, x[use], y[use]))
        if progress is not None:
            progress(i + 1, len(views))
    return rows, cols, sum_w.cpu().numpy().astype(np.float64), sum_wc.cpu().numpy().astype(np.float64)


def bake_texture(mesh: UVMesh, views: list[View], size: int, rasterizer,
                 progress: Callable[[int, int], None] | None = None, kernels: str = "auto",
                 visibility_side: int = VISIBILITY_MAX_SIDE) -> np.ndarray:
    """(size, size, 3) uint8 texture, row 0 at v = 1 (top), blended from the views that see each texel.

    kernels "auto": numba kernels on a CPU rasterizer, torch ops on the rasterizer's device otherwise;
    the CPU visibility pass runs at most `visibility_side` pixels wide (depth tests stay exact per texel).
    """
    if kernels == "auto":
        kernels = "numba" if rasterizer.device.type == "cpu" else "torch"
    if kernels == "numba":
        rows, cols, sum_w, sum_wc = bake_cpu(mesh, views, size, progress, visibility_side)
    else:
        rows, cols, sum_w, sum_wc = bake_device(mesh, views, size, rasterizer, progress)
    texel_colour = np.zeros((size, size, 3), dtype=np.float32)
    texel_weight = np.zeros((size, size), dtype=np.float32)
    seen = sum_w > 0
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
