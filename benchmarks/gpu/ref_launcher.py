"""Run the reference's reconstruct.py unmodified, with nvdiffrast's CUDA context for its OpenGL one.

    python benchmarks/gpu/ref_launcher.py REF_DIR [reconstruct.py arguments...]

Upstream creates `dr.RasterizeGLContext()`, which needs OpenGL (absent on the GPU machine); the CUDA
context does the same job through the same calls. The swap happens here, at run time, in this
process only; REF_DIR (fetched, git-ignored) is never edited. Our nvdiffrast plugin import fix is
applied first, as the reference would hit the same import failure on Python 3.12.
"""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def swap_context() -> str:
    """Make dr.RasterizeGLContext create a RasterizeCudaContext; returns the nvdiffrast version."""
    import nvdiffrast
    import nvdiffrast.torch as dr
    import torch

    sys.path.insert(0, str(ROOT))
    from backend.raster.nvdiffrast_raster import make_plugin_importable, plugin_name

    make_plugin_importable(plugin_name(nvdiffrast.__version__, torch.__version__))

    def cuda_context(*args, **kwargs):
        """What the reference gets when it asks for an OpenGL context."""
        return dr.RasterizeCudaContext()

    dr.RasterizeGLContext = cuda_context
    return nvdiffrast.__version__


def main() -> None:
    """Swap the context, then run REF_DIR/reconstruct.py as __main__ with the remaining arguments."""
    ref = Path(sys.argv[1]).resolve()
    script = ref / "reconstruct.py"
    if not script.is_file():
        raise SystemExit(f"{script} not found: fetch the reference first (benchmarks/gpu/README.md)")
    sys.path.append(str(Path(__file__).resolve().parent / "shims"))   # after site-packages: real ones win
    print(f"ref_launcher: nvdiffrast {swap_context()}, RasterizeGLContext -> RasterizeCudaContext", flush=True)
    sys.path.insert(0, str(ref))
    sys.argv = [str(script)] + sys.argv[2:]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
