"""One triangle at 8x8, forward and backward: the render a rasterizer must get right before it is used."""
from __future__ import annotations

import torch


def covers_centre(rasterizer) -> bool:
    """Render one triangle around the image centre; True when it covers the centre and gradients reach pos."""
    dev = rasterizer.device
    pos = torch.tensor([[[-0.8, -0.8, 0.0, 1.0], [0.8, -0.7, 0.0, 1.0], [0.0, 0.8, 0.0, 1.0]]],
                       device=dev, requires_grad=True)
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32, device=dev)
    rast = rasterizer.rasterize(pos, tri, (8, 8))
    mask = (rast[..., 3:] > 0).to(pos.dtype)
    img = rasterizer.antialias(rasterizer.interpolate(pos[..., :1], rast, tri) + mask, rast, pos, tri)
    img.sum().backward()
    return bool(rast[0, 4, 4, 3] == 1) and bool(torch.isfinite(pos.grad).all()) and bool(pos.grad.abs().sum() > 0)
