"""Photomesh: reconstruct a UV-mapped mesh from photographs (neural deferred shading) in Blender."""
from __future__ import annotations

import importlib
from pathlib import Path

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
    "panel",
    "ops_symmetry",
    "ops_cleanup",
    "ops_compare",
    "panel_eval",
)

_loaded: list = []


def _module_exists(name: str) -> bool:
    """True when the add-on folder holds the module `name`.py."""
    return (Path(__file__).parent / f"{name}.py").is_file()


def _modules() -> list:
    """Import (or reload) the add-on modules listed in MODULES that exist."""
    mods = []
    for name in MODULES:
        if not _module_exists(name):
            continue
        mod = importlib.import_module(f".{name}", __package__)
        mods.append(mod)
    return mods


def register() -> None:
    """Register every module's CLASSES, then its extra properties and handlers."""
    import bpy

    _loaded.clear()
    for mod in _modules():
        for cls in getattr(mod, "CLASSES", ()):
            bpy.utils.register_class(cls)
        if hasattr(mod, "register_extra"):
            mod.register_extra()
        _loaded.append(mod)


def unregister() -> None:
    """Undo register() in reverse order."""
    import bpy

    for mod in reversed(_loaded):
        if hasattr(mod, "unregister_extra"):
            mod.unregister_extra()
        for cls in reversed(getattr(mod, "CLASSES", ())):
            if getattr(cls, "is_registered", True):
                bpy.utils.unregister_class(cls)
    _loaded.clear()
