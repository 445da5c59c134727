"""Registration and unregistration of the add-on leave nothing behind."""
from __future__ import annotations

import bpy  # noqa: I001 - bpy first: it makes addon_utils importable
import addon_utils

import blender_addon


def _registered_names() -> set:
    """Every bpy.types name plus the properties of Scene and WindowManager."""
    return (set(dir(bpy.types)) | {f"Scene.{p.identifier}" for p in bpy.types.Scene.bl_rna.properties}
            | {f"WM.{p.identifier}" for p in bpy.types.WindowManager.bl_rna.properties})


def test_enable_disable_leaves_nothing() -> None:
    before = _registered_names()
    for _ in range(2):
        addon_utils.enable("blender_addon", default_set=True, handle_error=None)
        assert "blender_addon" in bpy.context.preferences.addons
        assert hasattr(bpy.types, "PHOTOMESH_PT_reconstruct")
        assert hasattr(bpy.types, "PHOTOMESH_OT_reconstruct")
        fresh = bpy.data.scenes.new("fresh")  # other tests change the current scene's settings
        assert fresh.photomesh.quality == "STANDARD"
        bpy.data.scenes.remove(fresh)
        assert bpy.context.window_manager.photomesh_job.running is False
        assert hasattr(bpy.ops.photomesh, "reconstruct")
        addon_utils.disable("blender_addon", default_set=True, handle_error=None)
        assert _registered_names() == before
        assert not hasattr(bpy.types.Scene, "photomesh")
        assert "blender_addon" not in bpy.context.preferences.addons


def test_modules_listed_and_bl_info() -> None:
    for name in ("props", "prefs", "ops_reconstruct", "panel", "ops_symmetry", "ops_cleanup", "ops_compare",
                 "panel_eval"):
        assert name in blender_addon.MODULES
    assert blender_addon.bl_info["blender"] == (3, 4, 0)
    assert blender_addon.bl_info["name"] == "Photomesh"
