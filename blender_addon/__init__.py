"""Photomesh: reconstruct a UV-mapped mesh from photographs (neural deferred shading) in Blender."""
from __future__ import annotations

import importlib

bl_info = {
    "name": "Photomesh",
    "author": "Photomesh contributors",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "3D Viewport > Sidebar > Photomesh",
    "description": "Reconstruct a clean, UV-mapped mesh from photos by neural deferred shading",
    "doc_url": "",
    "category": "Mesh",
}

MODULES = (
    "props",
    "prefs",
    "ops_reconstruct",
    "ops_points",
    "ops_cameras",
    "ops_photos",
    "panel_photos",
    "panel",
    "panel_cameras",
    "ops_symmetry",
    "ops_cleanup",
    "ops_compare",
    "panel_eval",
)

_loaded: list = []


def _modules() -> list:
    """Import the add-on modules in MODULES order (lazily, so the pure modules import without bpy)."""
    return [importlib.import_module(f".{name}", __package__) for name in MODULES]


def register() -> None:
    """Register every module's CLASSES, then its extra properties and handlers."""
    import bpy

    _loaded.clear()
    try:
        for mod in _modules():
            _loaded.append(mod)
            for cls in getattr(mod, "CLASSES", ()):
                bpy.utils.register_class(cls)
            if hasattr(mod, "register_extra"):
                mod.register_extra()
    except Exception:
        unregister()
        raise


def unregister() -> None:
    """Undo register() in reverse order."""
    import bpy

    for mod in reversed(_loaded):
        if hasattr(mod, "unregister_extra"):
            try:
                mod.unregister_extra()
            except (AttributeError, RuntimeError):
                pass
        for cls in reversed(getattr(mod, "CLASSES", ())):
            if getattr(cls, "is_registered", False):
                bpy.utils.unregister_class(cls)
    _loaded.clear()
