"""torch.autograd Functions wrapping the numba CPU kernels (CPU tensors only)."""
from __future__ import annotations

import numba
import numpy as np
import torch

from . import cpu_kernels as K


def _chunks() -> int:
    """Number of per-thread gradient buffers."""
    return numba.get_num_threads()


def _np(t: torch.Tensor) -> np.ndarray:
    """Contiguous numpy view of a CPU tensor (no copy when already contiguous)."""
    return t.detach().contiguous().numpy()


class Barycentrics(torch.autograd.Function):
    """rast (B, H, W, 4) from pos and the visible ids; differentiable in pos."""

    @staticmethod
    def forward(ctx, pos: torch.Tensor, tri: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        nb, h, w = ids.shape
        out = torch.empty((nb, h, w, 4), dtype=pos.dtype)
        K.bary_forward(_np(pos), _np(tri), _np(ids), out.numpy())
        ctx.save_for_backward(pos, tri, ids)
        ctx.mark_non_differentiable(ids)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        pos, tri, ids = ctx.saved_tensors
        parts = np.zeros((_chunks(),) + tuple(pos.shape))
        K.bary_backward(_np(pos), _np(tri), _np(ids), _np(grad), parts)
        return torch.from_numpy(parts.sum(0)).to(pos.dtype), None, None


class Interpolate(torch.autograd.Function):
    """(B, H, W, C) attributes at pixels; differentiable in attr (A, V, C) and rast."""

    @staticmethod
    def forward(ctx, attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
        nb, h, w, _ = rast.shape
        dtype = torch.promote_types(attr.dtype, rast.dtype)
        out = torch.empty((nb, h, w, attr.shape[2]), dtype=dtype)
        K.interp_forward(_np(attr), _np(rast), _np(tri), out.numpy())
        ctx.save_for_backward(attr, rast, tri)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        attr, rast, tri = ctx.saved_tensors
        parts = np.zeros((_chunks(),) + tuple(attr.shape))
        grast = torch.zeros(rast.shape, dtype=rast.dtype)
        K.interp_backward(_np(attr), _np(rast), _np(tri), _np(grad), parts, grast.numpy())
        return torch.from_numpy(parts.sum(0)).to(attr.dtype), grast, None


class Antialias(torch.autograd.Function):
    """Analytic silhouette antialiasing; differentiable in color and pos."""

    @staticmethod
    def forward(ctx, color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor,
                opp: torch.Tensor) -> torch.Tensor:
        nb, h, w, nc = color.shape
        scr = K.aa_setup(_np(pos).astype(np.float64), h, w)
        ev = K.aa_events(_np(rast), scr, _np(tri), _np(opp))
        cflat = color.detach().reshape(-1, nc).contiguous()
        out = cflat.clone()
        if len(ev):
            K.aa_forward(cflat.numpy(), ev, out.numpy())
        ctx.save_for_backward(color, pos)
        ctx.ev = ev
        ctx.hw = (h, w)
        return out.reshape(nb, h, w, nc)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        color, pos = ctx.saved_tensors
        nc = color.shape[-1]
        gflat = grad.reshape(-1, nc).contiguous()
        gcolor = gflat.clone()
        gpos = torch.zeros(pos.shape, dtype=torch.float64)
        if len(ctx.ev):
            K.aa_backward(_np(color.reshape(-1, nc)), ctx.ev, _np(pos).astype(np.float64), _np(gflat),
                          gcolor.numpy(), gpos.numpy(), ctx.hw[0], ctx.hw[1])
        return gcolor.reshape(color.shape), None, gpos.to(pos.dtype), None, None
