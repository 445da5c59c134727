"""Thin wrapper around nvdiffrast.torch (optional, CUDA only, NVIDIA non-commercial licence).

nvdiffrast (the `diffrp-nvdiffrast` build) compiles its CUDA plugin at first use with
torch.utils.cpp_extension and then imports it by name. On Python 3.12+ the module torch loads is no
longer left in sys.modules, and the build folder is not on sys.path, so that import fails
(ModuleNotFoundError: nvdiffrast_plugin_...). We put the build folder on sys.path first, and if the
import still fails after a build we load the built library ourselves and retry once.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import torch

from .base import RasterizerUnavailable
from .topology import TopologyCache

INSTALL_HINT = ("install it with `pip install diffrp-nvdiffrast` (needs a CUDA build of torch and the CUDA "
                "toolkit with nvcc; it compiles at first use), or use rasterizer 'torch'")


def plugin_name(nvdiffrast_version: str, torch_version: str) -> str:
    """Module name nvdiffrast gives its compiled CUDA plugin (non-word characters become '_')."""
    return re.sub(r"\W|^(?=\d)", "_", f"nvdiffrast_plugin_{nvdiffrast_version}_torch{torch_version}")


def plugin_build_dir(name: str) -> Path:
    """Folder torch.utils.cpp_extension builds a module of this name in (TORCH_EXTENSIONS_DIR aware)."""
    from torch.utils import cpp_extension
    return Path(cpp_extension._get_build_directory(name, False))


def make_plugin_importable(name: str) -> Path:
    """Put the plugin's build folder on sys.path so `import <name>` finds the built module; returns it."""
    folder = plugin_build_dir(name)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    return folder


def load_built_plugin(name: str) -> bool:
    """Load <build folder>/<name>.so (or .pyd) into sys.modules if it exists and is not loaded yet."""
    if name in sys.modules:
        return False
    folder = plugin_build_dir(name)
    for lib in sorted(folder.glob(f"{name}.*")):
        if lib.suffix not in (".so", ".pyd"):
            continue
        spec = importlib.util.spec_from_file_location(name, lib)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
        return True
    return False


def _import_dr():
    """The nvdiffrast.torch module, or RasterizerUnavailable with the install hint."""
    try:
        import nvdiffrast
        import nvdiffrast.torch as dr
    except Exception as exc:
        raise RasterizerUnavailable(f"nvdiffrast is not available ({exc}); {INSTALL_HINT}") from exc
    return dr, plugin_name(getattr(nvdiffrast, "__version__", "unknown"), torch.__version__)


def _cuda_context(dr, name: str, device: torch.device):
    """RasterizeCudaContext (this builds or loads the plugin), recovering once from the import failure."""
    make_plugin_importable(name)
    try:
        return dr.RasterizeCudaContext(device=device)
    except ModuleNotFoundError as exc:
        if exc.name != name or not load_built_plugin(name):
            raise
    return dr.RasterizeCudaContext(device=device)


class NvdiffrastRasterizer:
    """nvdiffrast's CUDA rasterizer behind our Rasterizer interface; checked by a tiny render at start."""

    name = "nvdiffrast"

    def __init__(self, device: torch.device | str = "cuda") -> None:
        self.device = torch.device(device)
        self._dr, plugin = _import_dr()
        if self.device.type != "cuda":
            raise RasterizerUnavailable(f"nvdiffrast needs a CUDA device, got {self.device}; use rasterizer 'torch'")
        try:
            self._ctx = _cuda_context(self._dr, plugin, self.device)
        except Exception as exc:
            raise RasterizerUnavailable(
                f"nvdiffrast's CUDA plugin {plugin} does not build or load ({type(exc).__name__}: {exc}); "
                f"build folder {plugin_build_dir(plugin)}; {INSTALL_HINT}") from exc
        self._topology = TopologyCache(lambda tri: self._dr.antialias_construct_topology_hash(
            tri.to(torch.int32).contiguous()))
        self.self_test()

    def self_test(self) -> None:
        """Rasterize one triangle at 8x8; RasterizerUnavailable unless it covers the centre pixel."""
        from .self_test import covers_centre
        try:
            ok = covers_centre(self)
        except Exception as exc:
            raise RasterizerUnavailable(f"nvdiffrast loads but fails to rasterize ({type(exc).__name__}: {exc}); "
                                        "use rasterizer 'torch'") from exc
        if not ok:
            raise RasterizerUnavailable("nvdiffrast loads but its test render is wrong; use rasterizer 'torch'")

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
