"""G-buffer rendering through the rasterizer interface: coverage, position, normal."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from backend.optim.losses import vertex_normals


@dataclass
class GBuffer:
    """Rendered buffers of a batch of views, all (B, H, W, C)."""

    rast: torch.Tensor
    coverage: torch.Tensor  # antialiased silhouette, differentiable in vertex positions
    position: torch.Tensor
    normal: torch.Tensor

    @property
    def hit(self) -> torch.Tensor:
        """(B, H, W) pixels covered by the mesh."""
        return self.rast[..., 3] > 0


def render_gbuffer(rasterizer: object, vertices: torch.Tensor, faces: torch.Tensor, mvps: torch.Tensor,
                   size: tuple[int, int]) -> GBuffer:
    """Rasterize the mesh in each view (mvps (B, 4, 4)) and interpolate positions and normals."""
    vh = torch.cat([vertices, torch.ones_like(vertices[:, :1])], dim=1)
    pos = torch.einsum("vi,bji->bvj", vh, mvps).contiguous()
    rast = rasterizer.rasterize(pos, faces, size)
    cover = (rast[..., 3:4] > 0).to(vertices.dtype)
    coverage = rasterizer.antialias(cover, rast, pos, faces)
    attrs = torch.cat([vertices, vertex_normals(vertices, faces.long())], dim=1)
    interp = rasterizer.interpolate(attrs, rast, faces)
    normal = torch.nn.functional.normalize(interp[..., 3:6], dim=-1, eps=1e-12)
    return GBuffer(rast, coverage, interp[..., :3], normal)
