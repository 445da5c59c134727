"""Reconstruction backend: multi-view mesh reconstruction by neural deferred shading.

Run as a separate process (`python -m backend ...`); never imports bpy.
"""

__version__ = "0.1.0"
