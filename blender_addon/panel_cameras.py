"""The Refined Cameras sub-panel: each camera's correction after a run, Apply and Clear."""
import bpy

from .camera_refine import panel_rows
from .camera_store import present_cameras, stored_cameras

MAX_LISTED = 40


def _length_formatter(scene):
    """A formatter of lengths in the scene's units (e.g. '5.83 cm'), plain numbers when units are off."""
    units = scene.unit_settings

    def fmt(value: float) -> str:
        """One length."""
        if units.system == "NONE":
            return f"{value:.3g}"
        return bpy.utils.units.to_string(units.system, "LENGTH", value * units.scale_length, precision=3)

    return fmt


class PHOTOMESH_PT_refined_cameras(bpy.types.Panel):
    """Corrections found by the last run with Refine Cameras on"""

    bl_label = "Refined Cameras"
    bl_idname = "PHOTOMESH_PT_refined_cameras"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Photomesh"
    bl_parent_id = "PHOTOMESH_PT_reconstruct"

    @classmethod
    def poll(cls, context) -> bool:
        """Shown only when the scene stores refined cameras."""
        store = getattr(context.scene, "photomesh_cameras", None)
        return store is not None and len(store.items) > 0

    def draw(self, context) -> None:
        """The run's name, one line per camera (rotation, centre move, flags), Apply and Clear."""
        layout = self.layout
        scene = context.scene
        cameras, focal_scale = stored_cameras(scene)
        layout.label(text=f"From '{scene.photomesh_cameras.source}'", icon="INFO")
        col = layout.column(align=True)
        rows = panel_rows(cameras, focal_scale, present_cameras(scene, cameras), _length_formatter(scene), MAX_LISTED)
        for cells, icon in rows:
            if len(cells) == 1:
                col.label(text=cells[0], icon=icon)
                continue
            split = col.split(factor=0.45, align=True)
            split.label(text=cells[0], icon=icon)
            row = split.row(align=True)
            for cell in cells[1:]:
                row.label(text=cell)
        row = layout.row(align=True)
        row.operator("photomesh.apply_refined_cameras", icon="CHECKMARK")
        row.operator("photomesh.clear_refined_cameras", text="", icon="X")


CLASSES = (PHOTOMESH_PT_refined_cameras,)
