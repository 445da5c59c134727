"""Reconstruction backend: multi-view mesh reconstruction by neural deferred shading.

Run as a separate process (`python -m backend ...`); never imports bpy.
"""
import os

# Same seed, same mesh: without it MKL's matrix products (the neural shader's) take alignment-dependent code paths
# on some CPUs (AVX-512 on this project's AMD EPYC machines), their last bits vary from run to run, and a run with
# sharp creases grows that into a different mesh (fandisk: 0.093-0.099 % Chamfer over four runs of one seed, and
# one run that folded; BENCHMARKS.md). Strict conditional numerical reproducibility on the CPU's own best branch:
# the same figures every run, no slower. Set before torch loads MKL (the backend imports torch only later).
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"
