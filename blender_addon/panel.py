"""The Photomesh tab of the 3D viewport sidebar: inputs, quality, Reconstruct, live progress."""
import bpy

from .gather import describe_image, folder_matches, selected_cameras
from .job_spec import QUALITY_PRESETS
from .point_cloud import is_point_cloud
from .run_session import active_job
from .symmetry_plane import PLANE_PROPERTY

MAX_LISTED = 12


def _draw_cameras(layout, context, settings) -> None:
    """One line per selected camera with its image, or a warning when it has none."""
    cams = selected_cameras(context)
    box = layout.box()
    others = sum(1 for o in context.selected_objects if o.type != "CAMERA")
    if not cams:
        box.label(text="No camera selected", icon="ERROR")
        return
    box.label(text=f"{len(cams)} camera(s)" + (f", {others} other object(s) ignored" if others else ""),
              icon="CAMERA_DATA")
    matches = folder_matches(settings.image_folder, [c.name for c in cams]) \
        if settings.image_source == "FOLDER" else None
    missing = 0
    col = box.column(align=True)
    for i, cam in enumerate(cams):
        label = describe_image(cam, settings, matches)
        if label is None:
            missing += 1
        if i < MAX_LISTED:
            if label is None:
                col.label(text=f"{cam.name}: no image", icon="ERROR")
            else:
                col.label(text=f"{cam.name}: {label}", icon="IMAGE_DATA")
    if len(cams) > MAX_LISTED:
        col.label(text=f"... and {len(cams) - MAX_LISTED} more")
    if missing:
        box.label(text=f"{missing} camera(s) without an image", icon="ERROR")
    if len(cams) == 1:
        box.label(text="At least 2 cameras are needed", icon="ERROR")


def _draw_progress(layout, context) -> None:
    """Progress bar, stage, step, losses, time left and Cancel."""
    status = context.window_manager.photomesh_job
    job = active_job()
    box = layout.box()
    text = f"{status.stage or 'starting'}" + (f" {status.step}/{status.total}" if status.total else "")
    if hasattr(box, "progress"):
        box.progress(factor=status.progress / 100.0, type="BAR", text=text)
    else:
        row = box.row()
        row.enabled = False
        row.prop(status, "progress", text=text, slider=True)
    if status.losses:
        box.label(text=f"Losses: {status.losses}")
    if status.eta:
        box.label(text=f"Time left: {status.eta}", icon="TIME")
    if job is not None and job.preview_error:
        box.label(text=f"Preview: {job.preview_error[:60]}", icon="INFO")
    box.operator("photomesh.cancel", text="Cancel", icon="CANCEL")


def _draw_symmetry(layout, context) -> None:
    """The active reconstruction's symmetry plane and the Add Mirror Modifier button."""
    obj = context.active_object
    if obj is None or obj.type != "MESH" or PLANE_PROPERTY not in obj:
        return
    box = layout.box()
    plane = obj[PLANE_PROPERTY]
    score = plane.get("score") if hasattr(plane, "get") else None
    box.label(text="Symmetry plane" + (f" (score {score:.4f})" if score is not None else ""), icon="MOD_MIRROR")
    box.operator("object.photomesh_add_mirror", icon="MOD_MIRROR")


class PHOTOMESH_PT_reconstruct(bpy.types.Panel):
    """Reconstruct a mesh from the selected cameras"""

    bl_label = "Reconstruct"
    bl_idname = "PHOTOMESH_PT_reconstruct"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Photomesh"

    def draw(self, context) -> None:
        """Inputs, settings and the Reconstruct button (or the running job's progress)."""
        layout = self.layout
        settings = context.scene.photomesh
        _draw_cameras(layout, context, settings)
        col = layout.column()
        col.prop(settings, "image_source")
        if settings.image_source == "FOLDER":
            col.prop(settings, "image_folder", text="")
        elif settings.image_source == "RENDER":
            row = col.row(align=True)
            row.prop(settings, "render_engine", text="")
            row.prop(settings, "render_samples")
        col.prop(settings, "mask_source")
        if settings.mask_source == "FOLDER":
            col.prop(settings, "mask_folder", text="")
        col.prop(settings, "start_points")
        col.prop(settings, "bbox_source")
        if settings.bbox_source == "OBJECT":
            col.prop(settings, "bbox_object", text="")
        col.separator()
        col.prop(settings, "device")
        col.prop(settings, "quality")
        col.label(text=QUALITY_PRESETS[settings.quality]["description"])
        col.prop(settings, "max_faces")
        col.prop(settings, "symmetry")
        col.prop(settings, "refine_cameras")
        col.prop(settings, "show_previews")
        col.prop(settings, "job_name")
        if context.window_manager.photomesh_job.running and active_job() is not None:
            _draw_progress(layout, context)
        else:
            layout.operator("photomesh.reconstruct", icon="MESH_MONKEY")
            if is_point_cloud(context.active_object):
                layout.operator("photomesh.points_to_mesh", icon="POINTCLOUD_DATA")
        _draw_symmetry(layout, context)


CLASSES = (PHOTOMESH_PT_reconstruct,)
