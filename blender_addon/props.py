"""Scene settings of a reconstruction and the window-manager status of the running job."""
import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)

from .job_spec import QUALITY_PRESETS
from .point_cloud import is_point_cloud

IMAGE_SOURCES = [
    ("BACKGROUND", "Camera Background", "Each camera's background image (as photogrammetry importers set up)"),
    ("FOLDER", "Image Folder", "A folder of images named after the cameras"),
    ("RENDER", "Render from Cameras", "Render the current scene from each camera (RGBA) and reconstruct it"),
]
MASK_SOURCES = [
    ("ALPHA", "Image Alpha", "The images' alpha channel is the object's mask"),
    ("FOLDER", "Mask Folder", "A folder of masks named after the cameras (white = object)"),
]
BBOX_SOURCES = [
    ("AUTO", "Automatic", "Derived by the backend from the cameras and masks"),
    ("OBJECT", "Object", "The bounding box of a chosen object (e.g. a cube around the subject)"),
]
DEVICES = [
    ("AUTO", "Auto", "CUDA, then Apple MPS, then CPU"),
    ("CUDA", "CUDA", "NVIDIA GPU"),
    ("MPS", "Apple MPS", "Apple silicon GPU"),
    ("CPU", "CPU", "Processor only (slow)"),
]
QUALITIES = [(key, p["label"], p["description"]) for key, p in QUALITY_PRESETS.items()]
SYMMETRY = [
    ("DETECT", "Detect", "Find the mirror-symmetry plane and report it"),
    ("ENFORCE", "Enforce", "Find the plane and make the mesh symmetric about it"),
    ("OFF", "Off", "No symmetry analysis"),
]
ENGINES = [
    ("CYCLES", "Cycles", "Render the input views with Cycles"),
    ("EEVEE", "EEVEE", "Render the input views with EEVEE (needs a GPU context)"),
    ("SCENE", "Scene Engine", "Use the scene's current render engine"),
]


class PHOTOMESH_PG_settings(bpy.types.PropertyGroup):
    """Per-scene reconstruction settings."""

    job_name: StringProperty(name="Name", default="Photomesh",
                             description="Name of the reconstructed object and of its job folder")
    image_source: EnumProperty(name="Images", items=IMAGE_SOURCES, default="BACKGROUND")
    image_folder: StringProperty(name="Image Folder", subtype="DIR_PATH")
    mask_source: EnumProperty(name="Masks", items=MASK_SOURCES, default="ALPHA")
    mask_folder: StringProperty(name="Mask Folder", subtype="DIR_PATH")
    bbox_source: EnumProperty(name="Bounds", items=BBOX_SOURCES, default="AUTO")
    bbox_object: PointerProperty(name="Bounds Object", type=bpy.types.Object)
    device: EnumProperty(name="Device", items=DEVICES, default="AUTO")
    quality: EnumProperty(name="Quality", items=QUALITIES, default="STANDARD")
    symmetry: EnumProperty(name="Symmetry", items=SYMMETRY, default="DETECT")
    max_faces: IntProperty(name="Max Faces", default=0, min=0, max=10_000_000,
                           description="Face budget of the result: a larger optimised mesh is decimated before "
                                       "UV mapping (0: the quality preset's budget)")
    render_engine: EnumProperty(name="Engine", items=ENGINES, default="CYCLES")
    render_samples: IntProperty(name="Samples", default=32, min=1, max=4096,
                                description="Samples per pixel when rendering the input views")
    refine_cameras: BoolProperty(name="Refine Cameras", default=False,
                                 description="Also correct each camera's pose (and a shared focal length) while "
                                             "optimising: for cameras from photogrammetry, phones or hand placement "
                                             "that are off by a degree or so. Apply the result with "
                                             "Apply Refined Cameras")
    show_previews: BoolProperty(name="Show Previews", default=True,
                                description="Show intermediate meshes in the viewport while optimising")
    start_points: PointerProperty(name="Start From", type=bpy.types.Object,
                                  poll=lambda self, obj: is_point_cloud(obj),
                                  description="Start from this point cloud's surface instead of the visual hull "
                                              "(sees concavities the hull cannot); empty: the visual hull")


class PHOTOMESH_PG_status(bpy.types.PropertyGroup):
    """State of the running job, shown by the panel (not saved in files)."""

    running: BoolProperty(default=False)
    progress: FloatProperty(name="Progress", subtype="PERCENTAGE", min=0.0, max=100.0, default=0.0)
    stage: StringProperty(default="")
    step: IntProperty(default=0)
    total: IntProperty(default=0)
    losses: StringProperty(default="")
    eta: StringProperty(default="")
    message: StringProperty(default="")


CLASSES = (PHOTOMESH_PG_settings, PHOTOMESH_PG_status)


def register_extra() -> None:
    """Attach the settings to scenes and the status to the window manager."""
    bpy.types.Scene.photomesh = PointerProperty(type=PHOTOMESH_PG_settings)
    bpy.types.WindowManager.photomesh_job = PointerProperty(type=PHOTOMESH_PG_status)


def unregister_extra() -> None:
    """Remove the properties added by register_extra."""
    del bpy.types.WindowManager.photomesh_job
    del bpy.types.Scene.photomesh
