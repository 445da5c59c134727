"""The refined-camera store's property groups (saved in the .blend) and the Apply / Clear Refined Cameras operators."""

import bpy
from bpy.props import (BoolProperty, CollectionProperty, FloatProperty, FloatVectorProperty, IntProperty,
                       PointerProperty, StringProperty)
from mathutils import Matrix

from .camera_refine import RefinedCamera, camera_matrix_world, lens_for_focal
from .camera_store import scene_camera, stored_cameras, stored_count
from .gather import camera_params

FOCAL_EPS = 1e-6


class PHOTOMESH_PG_refined_camera(bpy.types.PropertyGroup):
    """One view's refined camera (OpenCV K, R, t in world units) and the size of its correction."""

    view: StringProperty(name="View", description="The view's name in the job")
    camera: StringProperty(name="Camera", description="The Blender camera object the view was gathered from")
    K: FloatVectorProperty(name="K", size=9, description="Refined intrinsics, row-major 3x3 (pixels)")
    R: FloatVectorProperty(name="R", size=9, description="Refined world-to-camera rotation, row-major 3x3")
    t: FloatVectorProperty(name="t", size=3, description="Refined world-to-camera translation")
    width: IntProperty(name="Width", description="Width of the view's image in the job (pixels)")
    height: IntProperty(name="Height", description="Height of the view's image in the job (pixels)")
    rotation_deg: FloatProperty(name="Rotation Correction", description="Angle of the rotation correction (degrees)")
    translation: FloatProperty(name="Centre Move", description="Distance the camera centre moved (scene units)")
    weight: FloatProperty(name="Weight", default=1.0, description="Below 1 when the view was down-weighted")
    aligned: BoolProperty(name="Aligned", default=True, description="False when the view could not be aligned")
    held: BoolProperty(name="Kept", default=False,
                       description="True when the refinement kept the given camera (its correction was within noise)")


class PHOTOMESH_PG_refined_cameras(bpy.types.PropertyGroup):
    """The refined cameras of the scene's last run with Refine Cameras on (saved in the .blend)."""

    source: StringProperty(name="Run", description="The reconstruction whose run refined these cameras")
    focal_scale: FloatProperty(name="Focal Scale", default=1.0, description="Shared focal-length scale of the run")
    items: CollectionProperty(type=PHOTOMESH_PG_refined_camera)


def _overridden(obj) -> bool:
    """Whether constraints or keyframes will put the camera's pose back on the next update or frame change."""
    if any(c.enabled and c.influence > 0 for c in getattr(obj, "constraints", ())):
        return True
    action = obj.animation_data.action if obj.animation_data is not None else None
    if action is None:
        return False
    fcurves = getattr(action, "fcurves", None)
    if fcurves is None:
        return True
    return any(fc.data_path.startswith(("location", "rotation", "delta_")) for fc in fcurves)


def apply_refined_camera(scene, obj, cam: RefinedCamera, focal_scale: float) -> None:
    """Set the camera object's world pose (any parenting) and, when the focal scale is not 1, its lens."""
    _, _, scale = obj.matrix_world.decompose()
    obj.matrix_world = Matrix(camera_matrix_world(cam.R, cam.t, tuple(scale)).tolist())
    if abs(focal_scale - 1.0) > FOCAL_EPS:
        obj.data.lens = lens_for_focal(camera_params(obj, scene), float(cam.K[0, 0]), (cam.width, cam.height))


class PHOTOMESH_OT_apply_refined_cameras(bpy.types.Operator):
    """Move the cameras used for the last refining run to their refined poses (and focal length)"""

    bl_idname = "photomesh.apply_refined_cameras"
    bl_label = "Apply Refined Cameras"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context) -> bool:
        """Only when the scene stores refined cameras."""
        if stored_count(context) == 0:
            if hasattr(cls, "poll_message_set"):
                cls.poll_message_set("No refined cameras stored: run Reconstruct with Refine Cameras on first")
            return False
        return True

    def execute(self, context) -> set:
        """Apply each stored camera; name those deleted or renamed since the run."""
        scene = context.scene
        cameras, focal_scale = stored_cameras(scene)
        missing: list[str] = []
        overridden: list[str] = []
        applied = 0
        context.view_layer.update()
        for cam in cameras:
            obj = scene_camera(scene, cam.camera)
            if obj is None:
                missing.append(cam.camera)
                continue
            apply_refined_camera(scene, obj, cam, focal_scale)
            applied += 1
            if _overridden(obj):
                overridden.append(obj.name)
        context.view_layer.update()
        focal = f", focal length x{focal_scale:.4f}" if abs(focal_scale - 1.0) > FOCAL_EPS else ""
        if missing:
            self.report({"WARNING"}, f"Camera(s) not found (deleted or renamed since the run): {', '.join(missing)}. "
                                     f"Applied the other {applied}.")
        if overridden:
            self.report({"WARNING"}, f"Constraints or keyframes drive {', '.join(overridden)}: they may put the old "
                                     "pose back (remove them or insert new keyframes).")
        if applied == 0:
            return {"CANCELLED"}
        self.report({"INFO"}, f"Applied refined poses to {applied} camera(s){focal}.")
        return {"FINISHED"}


class PHOTOMESH_OT_clear_refined_cameras(bpy.types.Operator):
    """Forget the refined cameras stored with the scene (the cameras themselves stay as they are)"""

    bl_idname = "photomesh.clear_refined_cameras"
    bl_label = "Clear Refined Cameras"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context) -> bool:
        """Only when there is something to clear."""
        return stored_count(context) > 0

    def execute(self, context) -> set:
        """Empty the stored list."""
        store = context.scene.photomesh_cameras
        store.items.clear()
        store.source = ""
        store.focal_scale = 1.0
        return {"FINISHED"}


CLASSES = (PHOTOMESH_PG_refined_camera, PHOTOMESH_PG_refined_cameras, PHOTOMESH_OT_apply_refined_cameras,
           PHOTOMESH_OT_clear_refined_cameras)


def register_extra() -> None:
    """Attach the refined-camera store to scenes."""
    bpy.types.Scene.photomesh_cameras = PointerProperty(type=PHOTOMESH_PG_refined_cameras)


def unregister_extra() -> None:
    """Remove the property added by register_extra."""
    del bpy.types.Scene.photomesh_cameras
