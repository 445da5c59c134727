"""The user's own masks for a photos run (`--masks DIR`), undistorted exactly like their photos."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.capture.sfm_types import SfmResult
from backend.io.images import find_image, read_mask
from backend.runtime.errors import JobError


def undistort_mask(mask: np.ndarray, camera: object, max_image_size: int) -> np.ndarray:
    """A photo-sized bool mask resampled into the undistorted pinhole image of `camera` (a pycolmap Camera)."""
    import pycolmap

    from backend.capture.colmap_steps import undistort_options

    opts = undistort_options(max_image_size)
    bitmap = pycolmap.Bitmap.from_array(np.where(mask, 255, 0).astype(np.uint8))
    undistorted, _ = pycolmap.undistort_image(opts, bitmap, camera)
    return np.asarray(undistorted.to_array()) >= 128


def user_masks(masks_dir: Path, sfm: SfmResult, max_image_size: int) -> list[np.ndarray]:
    """One undistorted mask per registered camera from `<photo stem>.<image suffix>` files in masks_dir;
    JobError naming the photo whose mask is missing or the wrong size."""
    import pycolmap

    rec = pycolmap.Reconstruction(str(sfm.source_model_dir))
    by_name = {image.name: image for image in rec.images.values()}
    masks = []
    for cam in sfm.cameras:
        path = find_image(Path(masks_dir) / cam.name)
        if path is None:
            raise JobError(f"no mask for photo {cam.photo.name} in {masks_dir}",
                           f"Name each mask after its photo (e.g. {cam.name}.png, white on the object), or leave "
                           "out --masks to have masks made automatically.", view=cam.name)
        mask = read_mask(path, cam.name)
        lens = rec.camera(by_name[cam.photo.name].camera_id)
        if mask.shape != (lens.height, lens.width):
            raise JobError(f"mask {path.name} is {mask.shape[1]}x{mask.shape[0]} but photo {cam.photo.name} is "
                           f"{lens.width}x{lens.height}", "Give each mask the size of its photo.", view=cam.name)
        out = undistort_mask(mask, lens, max_image_size)
        if out.shape != (cam.height, cam.width):
            raise JobError(f"the undistorted mask of {cam.photo.name} does not match its image",
                           "This is a bug; please report it with the photos.", view=cam.name)
        masks.append(out)
    return masks
