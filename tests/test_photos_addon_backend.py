"""Import Photos in Blender (bpy) with the real backend: a Cycles phone-like capture (RGB JPEGs only) becomes one
camera per photo that projects like the truth, the sparse points and a box, and Reconstruct's gathering takes every
photo with its mask."""
from __future__ import annotations

import json
from pathlib import Path

import bpy  # noqa: I001 - bpy first: it makes mathutils importable
import numpy as np
import pytest

from backend.capture.evaluate import align_cameras
from blender_addon.gather import camera_pose, gather_job
from blender_helpers import ADDON, addon  # noqa: F401 - addon: the module's autouse fixture


def _prefs():
    return bpy.context.preferences.addons[ADDON].preferences


@pytest.mark.slow
def test_import_photos_runs_the_backend_and_reconstruct_gathers_them(photo_capture: Path, tmp_path: Path) -> None:
    for coll in (bpy.data.objects, bpy.data.cameras, bpy.data.collections):
        for idb in list(coll):
            coll.remove(idb)
    _prefs().python_path, _prefs().work_dir = "", str(tmp_path / "work")
    try:
        assert bpy.ops.photomesh.import_photos(directory=str(photo_capture / "photos")) == {"FINISHED"}
        photos = bpy.context.scene.photomesh_photos
        cams = sorted((o for o in bpy.context.selected_objects if o.type == "CAMERA"), key=lambda o: o.name)
        stems = sorted(p.stem for p in (photo_capture / "photos").glob("*.jpg"))
        assert [c.name for c in cams] == stems, photos.message
        assert photos.summary.startswith(f"{len(stems)}/{len(stems)} photos placed")
        assert all(c.data.background_images and c.data.background_images[0].image for c in cams)

        truth = json.loads((photo_capture / "truth" / "job" / "job.json").read_text())
        by_view = {v["name"]: v for v in truth["views"]}
        names = json.loads((photo_capture / "truth" / "truth.json").read_text())["photos"]
        true = [by_view[names[f"{c.name}.jpg"]] for c in cams]
        poses = [camera_pose(c) for c in cams]
        rot, _, _ = align_cameras([p[0] for p in poses], [p[1] for p in poses], [v["R"] for v in true],
                                  [v["t"] for v in true])
        assert np.median(rot) < 0.3, rot

        job = gather_job(bpy.context, bpy.context.scene.photomesh, tmp_path / "job")
        assert [v["name"] for v in job["views"]] == stems
        assert all(v["mask"] for v in job["views"])
        lo, hi = np.asarray(job["bbox"]["min"]), np.asarray(job["bbox"]["max"])
        assert np.all(hi > lo) and 0.9 < np.max(hi - lo) < 2.0  # the object's box: largest side 1 unit + margins
    finally:
        _prefs().python_path = _prefs().work_dir = ""
