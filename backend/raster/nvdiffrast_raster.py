"""Thin wrapper around nvdiffrast.torch (optional, CUDA only, NVIDIA non-commercial licence)."""
from __future__ import annotations

import torch

from .base import RasterizerUnavailable
from .topology import TopologyCache

INSTALL_HINT = ("install it with `pip install diffrp-nvdiffrast` (needs a CUDA build of torch and the CUDA "
                "toolkit with nvcc; it compiles at first use), or use rasterizer 'torch'")


def _import_dr():
    """The nvdiffrast.torch module, or RasterizerUnavailable with the install hint."""
    try:
        import nvdiffrast.torch as dr
    except Exception as exc:
        raise RasterizerUnavailable(f"nvdiffrast is not available ({exc}); {INSTALL_HINT}") from exc
    return dr


class NvdiffrastRasterizer:
    """nvdiffrast's CUDA rasterizer behind our Rasterizer interface."""

    name = "nvdiffrast"

    def __init__(self, device: torch.device | str = "cuda") -> None:
        self.device = torch.device(device)
        self._dr = _import_dr()
        if self.device.type != "cuda":
            raise RasterizerUnavailable(f"nvdiffrast needs a CUDA device, got {self.device}; use rasterizer 'torch'")
        self._ctx = self._dr.RasterizeCudaContext(device=self.device)
        self._topology = TopologyCache(lambda tri: self._dr.antialias_construct_topology_hash(
            tri.to(torch.int32).contiguous()))

    def rasterize(self, pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
        """rast (B, H, W, 4) = (u, v, z/w, triangle_id + 1)."""
        rast, _ = self._dr.rasterize(self._ctx, pos.contiguous(), tri.to(torch.int32).contiguous(),
                                     (int(resolution[0]), int(resolution[1])))
        return rast

    def interpolate(self, attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
        """attr (B, V, C) or (V, C) -> (B, H, W, C)."""
        out, _ = self._dr.interpolate(attr.contiguous(), rast, tri.to(torch.int32).contiguous())
        return out

    def antialias(self, color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
        """nvdiffrast's analytic antialiasing, with the topology hash cached per triangle tensor."""
        tri32 = tri.to(torch.int32).contiguous()
        topo = self._topology.get(tri)
        return self._dr.antialias(color.contiguous(), rast, pos.contiguous(), tri32, topology_hash=topo)
