"""Device-agnostic visibility pass in plain torch (CUDA / MPS without nvdiffrast, or CPU for tests).

Same coverage rules as visibility_numba (vertices snapped to 1/16 pixel first): every (face, pixel
of its bbox) candidate is tested with oriented edge functions and the top-left tie rule, then the
nearest candidate per pixel is kept with a scatter_reduce "amin" on a key packing float32 depth
(high 32 bits) and face id (low 32).
Candidates are processed in chunks so memory stays bounded for large triangles.
"""
from __future__ import annotations

import torch

from .base import SUBPIXELS

_EMPTY = torch.iinfo(torch.int64).max


def _work_dtype(device: torch.device) -> torch.dtype:
    """float64 where the device has it (matches the CPU rasterizer), else float32."""
    return torch.float32 if device.type == "mps" else torch.float64


def _depth_key(z: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """Order-preserving int64 key: float32 depth bits in the high half, face index in the low half."""
    bits = z.to(torch.float32).contiguous().view(torch.int32)
    bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return bits.to(torch.int64) * (1 << 32) + face


@torch.no_grad()
def face_setup(pos: torch.Tensor, tri: torch.Tensor, height: int, width: int) -> dict[str, torch.Tensor]:
    """Oriented edge coefficients (B, F, 3, 3), depth plane (B, F, 3), bbox, tie bits and validity."""
    dt = _work_dtype(pos.device)
    v = pos.detach().to(dt)[:, tri.long()]                      # (B, F, 3, 4)
    w = v[..., 3]
    ok = (w > 0).all(-1)
    ws = torch.where(w > 0, w, torch.ones_like(w))
    xs = torch.round(v[..., 0] / ws * (8.0 * width)) / SUBPIXELS + 0.5 * (width - 1)
    ys = torch.round(v[..., 1] / ws * (8.0 * height)) / SUBPIXELS + 0.5 * (height - 1)
    zs = v[..., 2] / ws
    area = (xs[..., 1] - xs[..., 0]) * (ys[..., 2] - ys[..., 0]) - (xs[..., 2] - xs[..., 0]) * (ys[..., 1] - ys[..., 0])
    ok &= (area != 0) & torch.isfinite(area)
    s = torch.where(area > 0, 1.0, -1.0).to(dt)
    i = torch.tensor([1, 2, 0], device=pos.device)
    j = torch.tensor([2, 0, 1], device=pos.device)
    xi, xj, yi, yj = xs[..., i], xs[..., j], ys[..., i], ys[..., j]
    a = (yi - yj) * s[..., None]
    b = (xj - xi) * s[..., None]
    c = (xi * yj - xj * yi) * s[..., None]
    edges = torch.stack([a, b, c], dim=-1)                      # (B, F, 3, 3)
    inv = 1.0 / torch.where(ok, area * s, torch.ones_like(area))
    plane = (zs[..., None] * edges).sum(-2) * inv[..., None]    # (B, F, 3)
    tie = (a > 0) | ((a == 0) & (b > 0))
    x0 = torch.ceil(xs.amin(-1)).clamp(min=0)
    x1 = torch.floor(xs.amax(-1)).clamp(max=width - 1)
    y0 = torch.ceil(ys.amin(-1)).clamp(min=0)
    y1 = torch.floor(ys.amax(-1)).clamp(max=height - 1)
    ok &= (x0 <= x1) & (y0 <= y1)
    bbox = torch.stack([x0, x1, y0, y1], -1).nan_to_num(0).clamp(-1, max(width, height)).long()
    return {"edges": edges, "plane": plane, "tie": tie, "bbox": bbox, "ok": ok}


@torch.no_grad()
def visible_ids(pos: torch.Tensor, tri: torch.Tensor, height: int, width: int,
                chunk: int | None = None) -> torch.Tensor:
    """(B, H, W) int32 visible triangle id + 1 (0 = empty), computed on pos's device.

    chunk: (face, pixel) candidates per step; default 2^25 on CUDA (a few GB), else 2^22.
    """
    nb, nf = pos.shape[0], tri.shape[0]
    dev = pos.device
    if chunk is None:
        chunk = 1 << 25 if dev.type == "cuda" else 1 << 22
    setup = face_setup(pos, tri, height, width)
    keys = torch.full((nb * height * width,), _EMPTY, dtype=torch.int64, device=dev)
    flat = setup["ok"].reshape(-1).nonzero().squeeze(1)         # (b * F + f) of candidate faces
    if flat.numel() == 0:
        return torch.zeros((nb, height, width), dtype=torch.int32, device=dev)
    bbox = setup["bbox"].reshape(-1, 4)[flat]
    wid = bbox[:, 1] - bbox[:, 0] + 1
    counts = wid * (bbox[:, 3] - bbox[:, 2] + 1)
    ends = torch.cumsum(counts, 0)
    starts = ends - counts
    edges = setup["edges"].reshape(-1, 3, 3)[flat]
    plane = setup["plane"].reshape(-1, 3)[flat]
    tie = setup["tie"].reshape(-1, 3)[flat]
    lo = 0
    while lo < len(flat):
        hi = int(torch.searchsorted(ends, starts[lo] + chunk, right=True))
        hi = max(hi, lo + 1)
        n = int(ends[hi - 1] - starts[lo])
        rep = torch.repeat_interleave(torch.arange(lo, hi, device=dev), counts[lo:hi], output_size=n)
        local = torch.arange(n, device=dev) + starts[lo] - starts[rep]
        px = bbox[rep, 0] + local % wid[rep]
        py = bbox[rep, 2] + local // wid[rep]
        e = edges[rep]
        xf = px.to(e.dtype)[:, None]
        yf = py.to(e.dtype)[:, None]
        val = e[..., 0] * xf + e[..., 1] * yf + e[..., 2]
        inside = ((val > 0) | ((val == 0) & tie[rep])).all(-1)
        pl = plane[rep]
        z = pl[:, 0] * xf[:, 0] + pl[:, 1] * yf[:, 0] + pl[:, 2]
        inside &= (z >= -1) & (z <= 1)
        sel = inside.nonzero().squeeze(1)
        if sel.numel():
            face = flat[rep[sel]]
            b = face // nf
            pix = (b * height + py[sel]) * width + px[sel]
            keys.scatter_reduce_(0, pix, _depth_key(z[sel], face - b * nf), reduce="amin")
        lo = hi
    ids = torch.where(keys == _EMPTY, torch.zeros_like(keys), (keys & 0xFFFFFFFF) + 1)
    return ids.to(torch.int32).reshape(nb, height, width)
