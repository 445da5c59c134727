"""Rasterizer layer: nvdiffrast semantics, with our own torch implementation for any device."""
from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from .base import Rasterizer, RasterizerUnavailable
from .torch_raster import TorchRasterizer

__all__ = ["Rasterizer", "RasterizerUnavailable", "TorchRasterizer", "auto_rasterizer", "get_rasterizer",
           "resolve_device", "nvdiffrast_available"]


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Torch device for a name; "auto" picks cuda, then mps, then cpu."""
    if isinstance(name, torch.device):
        return name
    if name != "auto":
        dev = torch.device(name)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RasterizerUnavailable(f"device {name!r} requested but CUDA is not available "
                                        "(install a CUDA build of torch, or use device 'cpu')")
        if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise RasterizerUnavailable(f"device {name!r} requested but Apple MPS is not available")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def nvdiffrast_available() -> bool:
    """True when `import nvdiffrast.torch` works (its CUDA plugin is only built at first use)."""
    try:
        import nvdiffrast.torch  # noqa: F401
    except Exception:
        return False
    return True


def auto_rasterizer(dev: torch.device, warn: Callable[[str], None] | None = None) -> Rasterizer:
    """nvdiffrast when it really renders on dev, else ours with `fallback_reason` saying why (also to warn)."""
    from .nvdiffrast_raster import NvdiffrastRasterizer
    try:
        return NvdiffrastRasterizer(dev)
    except Exception as exc:  # e.g. its CUDA plugin fails to compile or load: ours still works
        reason = f"nvdiffrast unusable, using the torch rasterizer: {exc}"
    logging.getLogger(__name__).warning(reason)
    if warn is not None:
        warn(reason)
    r = TorchRasterizer(dev)
    r.fallback_reason = reason
    return r


def get_rasterizer(name: str = "auto", device: str | torch.device = "auto",
                   warn: Callable[[str], None] | None = None) -> Rasterizer:
    """Rasterizer by name ("auto", "torch", "nvdiffrast"); auto uses nvdiffrast on CUDA when installed.

    When auto falls back from an installed nvdiffrast, the reason goes to warn and to the returned
    rasterizer's `fallback_reason` (None otherwise).
    """
    dev = resolve_device(device)
    if name == "torch":
        return TorchRasterizer(dev)
    if name == "nvdiffrast":
        from .nvdiffrast_raster import NvdiffrastRasterizer
        return NvdiffrastRasterizer(dev)
    if name == "auto":
        if dev.type == "cuda" and nvdiffrast_available():
            return auto_rasterizer(dev, warn)
        return TorchRasterizer(dev)
    raise ValueError(f"unknown rasterizer {name!r}: use 'auto', 'torch' or 'nvdiffrast'")
