"""Our rasterizer: fast non-differentiable visibility, then differentiable torch barycentrics.

Barycentrics follow nvdiffrast: u weighs vertex 0, v vertex 1, perspective-correct. With NDC vertex
positions s_k = (x_k, y_k) / w_k and the pixel's NDC point p, the screen-space barycentrics are
l_0 = (d x e_1) / A, l_1 = (e_0 x d) / A (e_k = s_k - s_2, d = p - s_2, A = e_0 x e_1), the
perspective-correct ones b_k = (l_k / w_k) / sum_j (l_j / w_j), and z/w = sum_k l_k z_k / w_k.
Working relative to a vertex keeps float32 accurate for small triangles (the numba CPU kernels
evaluate the same function as clip-space triple products in float64).
"""
from __future__ import annotations

import torch

from . import antialias as _aa
from . import cpu_functions, visibility_numba, visibility_torch
from .topology import TopologyCache


def face_coefficients(pos: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """(B * F, 13) differentiable per-face rows [s_2, e_0, e_1, 1/A, 1/w_0..2, z/w_2, z/w_0 - z/w_2, z/w_1 - z/w_2]."""
    v = pos[:, tri.long()]                                      # (B, F, 3, 4)
    w = v[..., 3]
    inv_w = 1.0 / torch.where(w > 0, w, torch.ones_like(w))
    s = v[..., :2] * inv_w[..., None]
    zc = v[..., 2] * inv_w
    e0 = s[..., 0, :] - s[..., 2, :]
    e1 = s[..., 1, :] - s[..., 2, :]
    area = e0[..., 0] * e1[..., 1] - e0[..., 1] * e1[..., 0]
    inv_a = 1.0 / torch.where(area != 0, area, torch.ones_like(area))
    rows = [s[..., 2, :], e0, e1, inv_a[..., None], inv_w, zc[..., 2:3], (zc[..., :2] - zc[..., 2:3])]
    return torch.cat(rows, dim=-1).reshape(-1, 13)


def covered(rast: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices of covered pixels and their triangle ids (0-based)."""
    ids = rast[..., 3].detach().reshape(-1)
    pix = (ids > 0).nonzero().squeeze(1)
    return pix, ids[pix].to(torch.int64) - 1


class TorchRasterizer:
    """Rasterizer with nvdiffrast semantics for any torch device.

    kernels="numba" (CPU default): numba visibility and numba forward/backward kernels.
    kernels="torch" (other devices): torch visibility pass and autograd through torch ops.
    """

    name = "torch"
    fallback_reason: str | None = None   # set by get_rasterizer("auto") when nvdiffrast was unusable

    def __init__(self, device: torch.device | str = "cpu", kernels: str = "auto") -> None:
        self.device = torch.device(device)
        if kernels == "auto":
            kernels = "numba" if self.device.type == "cpu" else "torch"
        if kernels not in ("numba", "torch"):
            raise ValueError(f"unknown kernels {kernels!r}: use 'auto', 'numba' or 'torch'")
        if kernels == "numba" and self.device.type != "cpu":
            raise ValueError("numba kernels run on the CPU only")
        self.kernels = kernels
        self._topology = TopologyCache()

    def visible_ids(self, pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
        """(B, H, W) int32 visible triangle id + 1 (0 = empty), on pos's device."""
        h, w = int(resolution[0]), int(resolution[1])
        if self.kernels == "numba":
            ids = visibility_numba.visible_ids(pos.detach().cpu().numpy(), tri.detach().cpu().numpy(), h, w)
            return torch.from_numpy(ids).to(pos.device)
        return visibility_torch.visible_ids(pos, tri, h, w)

    def rasterize(self, pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
        """rast (B, H, W, 4) = (u, v, z/w, triangle_id + 1); u, v, z/w differentiable in pos."""
        if pos.dim() != 3 or pos.shape[-1] != 4:
            raise ValueError(f"pos must be (B, V, 4) clip-space positions, got {tuple(pos.shape)}")
        nb, nf = pos.shape[0], tri.shape[0]
        h, w = int(resolution[0]), int(resolution[1])
        tri = tri.to(pos.device)
        if self.kernels == "numba":
            tri32 = tri.to(torch.int32)
            return cpu_functions.Barycentrics.apply(pos, tri32, self.visible_ids(pos, tri32, (h, w)))
        ids = self.visible_ids(pos, tri, (h, w)).reshape(-1)
        pix = (ids > 0).nonzero().squeeze(1)
        face = ids[pix].to(torch.int64) - 1
        rest = pix % (h * w)
        b = pix // (h * w)
        px = ((2 * (rest % w) + 1).to(pos.dtype) / w - 1.0)
        py = ((2 * (rest // w) + 1).to(pos.dtype) / h - 1.0)
        c = face_coefficients(pos, tri)[b * nf + face]          # (N, 13)
        dx = px - c[:, 0]
        dy = py - c[:, 1]
        l0 = (dx * c[:, 5] - dy * c[:, 4]) * c[:, 6]
        l1 = (c[:, 2] * dy - c[:, 3] * dx) * c[:, 6]
        q0 = l0 * c[:, 7]
        q1 = l1 * c[:, 8]
        q2 = (1.0 - l0 - l1) * c[:, 9]
        qs = q0 + q1 + q2
        u = q0 / qs
        v = q1 / qs
        zw = c[:, 10] + l0 * c[:, 11] + l1 * c[:, 12]
        vals = torch.stack([u, v, zw, (face + 1).to(pos.dtype)], dim=-1)
        out = torch.zeros((nb * h * w, 4), dtype=pos.dtype, device=pos.device)
        out = out.index_put((pix,), vals)
        return out.reshape(nb, h, w, 4)

    def interpolate(self, attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
        """attr (B, V, C) or (V, C) -> (B, H, W, C); zero where empty; differentiable in attr and rast."""
        nb, h, w, _ = rast.shape
        if attr.dim() == 2:
            attr = attr[None]
        tri = tri.to(rast.device)
        if self.kernels == "numba":
            return cpu_functions.Interpolate.apply(attr, rast, tri.to(torch.int32))
        na, nv, nc = attr.shape
        flat = rast.reshape(-1, 4)
        pix, face = covered(rast)
        b = pix // (h * w) if na > 1 else torch.zeros_like(pix)
        rows = b[:, None] * nv + tri.long()[face]               # (N, 3)
        a = attr.reshape(-1, nc)[rows]                          # (N, 3, C)
        uv = flat[pix, :2]
        u, v = uv[:, 0:1], uv[:, 1:2]
        vals = a[:, 2] + u * (a[:, 0] - a[:, 2]) + v * (a[:, 1] - a[:, 2])
        out = torch.zeros((nb * h * w, nc), dtype=vals.dtype, device=rast.device)
        out = out.index_put((pix,), vals)
        return out.reshape(nb, h, w, nc)

    def antialias(self, color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
        """Analytic silhouette antialiasing (nvdiffrast semantics); gradients flow to color and pos."""
        tri = tri.to(pos.device)
        opp = self._topology.get(tri)
        if self.kernels == "numba":
            return cpu_functions.Antialias.apply(color, rast, pos, tri.to(torch.int32), opp)
        return _aa.antialias(color, rast, pos, tri, opp)
