"""The Refined Cameras sub-panel: each camera's correction after a run, Apply and Clear."""
import bpy

from .camera_refine import panel_rows
from .ops_cameras import present_cameras, stored_cameras

MAX_LISTED = 40


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
        rows = panel_rows(cameras, focal_scale, present_cameras(scene, cameras))
        for text, icon in rows[:MAX_LISTED]:
            col.label(text=text, icon=icon)
        if len(rows) > MAX_LISTED:
            col.label(text=f"... and {len(rows) - MAX_LISTED} more")
        row = layout.row(align=True)
        row.operator("photomesh.apply_refined_cameras", icon="CHECKMARK")
        row.operator("photomesh.clear_refined_cameras", text="", icon="X")


CLASSES = (PHOTOMESH_PT_refined_cameras,)
