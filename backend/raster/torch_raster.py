"""Our rasterizer: fast non-differentiable visibility, then differentiable torch barycentrics.

Barycentrics follow nvdiffrast: with clip-space vertices v_k = (x_k, y_k, w_k) and the pixel's
NDC point p = (px, py, 1), the perspective-correct weights are b_k = (p . c_k) / (p . (c_0+c_1+c_2))
with c_0 = v_1 x v_2, c_1 = v_2 x v_0, c_2 = v_0 x v_1; u = b_0, v = b_1, and z/w = p . g / det
with g = sum_k z_k c_k and det = v_0 . c_0 (z/w is affine in screen space).
"""
from __future__ import annotations

import torch

from . import antialias as _aa
from . import cpu_functions, visibility_numba, visibility_torch
from .topology import TopologyCache


def face_coefficients(pos: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """(B * F, 12) differentiable per-face rows [c_0, c_1, c_0 + c_1 + c_2, g / det]."""
    v = pos[:, tri.long()]                                      # (B, F, 3, 4)
    xyw = v[..., [0, 1, 3]]
    v0, v1, v2 = xyw[..., 0, :], xyw[..., 1, :], xyw[..., 2, :]
    c0 = torch.linalg.cross(v1, v2)
    c1 = torch.linalg.cross(v2, v0)
    c2 = torch.linalg.cross(v0, v1)
    det = (v0 * c0).sum(-1, keepdim=True)
    det = torch.where(det == 0, torch.ones_like(det), det)
    z = v[..., 2]
    g = (z[..., 0:1] * c0 + z[..., 1:2] * c1 + z[..., 2:3] * c2) / det
    return torch.cat([c0, c1, c0 + c1 + c2, g], dim=-1).reshape(-1, 12)


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
        coef = face_coefficients(pos, tri)[b * nf + face]       # (N, 12)
        c = coef.reshape(-1, 4, 3)
        dots = c[..., 0] * px[:, None] + c[..., 1] * py[:, None] + c[..., 2]   # (N, 4)
        u = dots[:, 0] / dots[:, 2]
        v = dots[:, 1] / dots[:, 2]
        vals = torch.stack([u, v, dots[:, 3], (face + 1).to(pos.dtype)], dim=-1)
        out = torch.zeros((nb * h * w, 4), dtype=pos.dtype, device=pos.device)
        out = out.index_put((pix,), vals)
        return out.reshape(nb, h, w, 4)

    def interpolate(self, attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
        """attr (B, V, C) or (V, C) -> (B, H, W, C); zero where empty; differentiable in attr and rast."""
        nb, h, w, _ = rast.shape
        if attr.dim() == 2:
            attr = attr[None]
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
        opp = self._topology.get(tri)
        if self.kernels == "numba":
            return cpu_functions.Antialias.apply(color, rast, pos, tri.to(torch.int32), opp)
        return _aa.antialias(color, rast, pos, tri, opp)
