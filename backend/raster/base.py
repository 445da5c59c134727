"""The rasterizer interface shared by our torch rasterizer and the nvdiffrast wrapper."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

SUBPIXELS = 16.0  # visibility snaps vertices to 1/16 pixel, as nvdiffrast's rasterizer does


@runtime_checkable
class Rasterizer(Protocol):
    """nvdiffrast-style primitives: rasterize, interpolate, antialias (batch-first torch tensors)."""

    name: str
    device: torch.device

    def rasterize(self, pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
        """pos (B, V, 4) clip space, tri (F, 3) int32 -> rast (B, H, W, 4) = (u, v, z/w, triangle_id + 1)."""
        ...

    def interpolate(self, attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
        """attr (B, V, C) or (V, C) -> (B, H, W, C), zero where empty."""
        ...

    def antialias(self, color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
        """Analytic silhouette-edge blending of color (B, H, W, C); gradients flow to pos."""
        ...


class RasterizerUnavailable(RuntimeError):
    """The requested rasterizer cannot run here; the message says how to get it."""
