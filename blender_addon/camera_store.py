"""The refined cameras a run stored with the scene (`scene.photomesh_cameras`): write, read, check."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .camera_refine import RefinedCamera


def refined_of(item) -> RefinedCamera:
    """The stored item as a RefinedCamera (numpy matrices)."""
    return RefinedCamera(item.view, item.camera, np.array(item.K, dtype=np.float64).reshape(3, 3),
                         np.array(item.R, dtype=np.float64).reshape(3, 3), np.array(item.t, dtype=np.float64),
                         item.width, item.height, item.rotation_deg, item.translation, item.weight, item.aligned,
                         item.held)


def stored_cameras(scene) -> tuple[list[RefinedCamera], float]:
    """The scene's stored refined cameras and focal scale (empty list when none)."""
    store = getattr(scene, "photomesh_cameras", None)
    if store is None:
        return [], 1.0
    return [refined_of(i) for i in store.items], store.focal_scale


def store_refined_cameras(scene, cameras: Sequence[RefinedCamera], focal_scale: float, source: str) -> None:
    """Replace the scene's stored refined cameras with a run's."""
    store = scene.photomesh_cameras
    store.items.clear()
    store.source = source
    store.focal_scale = focal_scale
    for cam in cameras:
        item = store.items.add()
        item.view, item.camera = cam.view, cam.camera
        item.K = np.asarray(cam.K, dtype=np.float64).ravel().tolist()
        item.R = np.asarray(cam.R, dtype=np.float64).ravel().tolist()
        item.t = np.asarray(cam.t, dtype=np.float64).ravel().tolist()
        item.width, item.height = cam.width, cam.height
        item.rotation_deg, item.translation = cam.rotation_deg, cam.translation
        item.weight, item.aligned, item.held = cam.weight, cam.aligned, cam.held


def scene_camera(scene, name: str):
    """The camera object of that name in the scene, or None (deleted, renamed or no longer a camera)."""
    obj = scene.objects.get(name)
    return obj if obj is not None and obj.type == "CAMERA" else None


def stored_count(context) -> int:
    """How many refined cameras the context's scene stores (0 without a scene or the property)."""
    store = getattr(context.scene, "photomesh_cameras", None) if context.scene is not None else None
    return 0 if store is None else len(store.items)


def present_cameras(scene, cameras: Sequence[RefinedCamera]) -> set:
    """Names of the stored cameras that still exist as cameras in the scene."""
    return {c.camera for c in cameras if scene_camera(scene, c.camera) is not None}


def non_aligned(scene) -> Optional[str]:
    """A warning naming the views of the stored run that could not be aligned, or None."""
    cameras, _ = stored_cameras(scene)
    bad = [c.camera for c in cameras if not c.aligned]
    if not bad:
        return None
    return (f"Camera(s) not aligned by the refinement (down-weighted): {', '.join(bad)}; "
            "check their images and poses.")
