"""Sparse points from known cameras: pycolmap's SIFT features and matches, triangulated with the poses held fixed.

Runs in a child process (`runtime.worker.run_killable`) so a cancel kills it; `report(step, fraction)` sends progress back.
Views are pinhole (the loaders have already undistorted them), one COLMAP camera each.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

Report = Callable[..., None]
MAX_IMAGE_SIDE = 1600  # SIFT runs on images scaled down to this longest side
NEAR_PAIRS = 12  # each view is matched with its nearest views by viewing direction (exhaustive below 2x this)


def view_pairs(axes: np.ndarray, centers: np.ndarray, near: int = NEAR_PAIRS) -> list[tuple[int, int]]:
    """Pairs of view indices to match: all when few, else each view with its `near` most alike views
    (closest optical axes, then centres), so matching grows linearly with the views."""
    n = len(axes)
    if n <= 2 * near:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    d = np.asarray(axes, float)
    c = np.asarray(centers, float)
    scale = np.median(np.linalg.norm(c - c.mean(axis=0), axis=1)) + 1e-12
    cost = (1.0 - d @ d.T) + np.linalg.norm(c[:, None] - c[None], axis=2) / scale
    np.fill_diagonal(cost, np.inf)
    pairs = {(min(i, j), max(i, j)) for i in range(n) for j in np.argsort(cost[i])[:near]}
    return sorted(pairs)


def triangulate(work_dir: str, names: list[str], intrinsics: list[tuple[float, float, float, float]],
                poses: list[tuple[np.ndarray, np.ndarray]], pairs: list[tuple[int, int]],
                report: Report) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Points (N, 3), colours (N, 3) uint8 and per point the view indices that see it, from the images
    work_dir/images/<names[i]> with pinhole intrinsics (fx, fy, cx, cy) and world-to-camera poses (R, t)."""
    import pycolmap

    from backend.capture.colmap_steps import match_pairs

    pycolmap.logging.minloglevel = 1
    work = Path(work_dir)
    image_dir, database = work / "images", str(work / "database.db")
    pycolmap.Database.open(database).close()
    for name, (fx, fy, cx, cy) in zip(names, intrinsics):
        opts = pycolmap.ImageReaderOptions()
        opts.camera_model = "PINHOLE"
        opts.camera_params = f"{fx!r},{fy!r},{cx!r},{cy!r}"
        pycolmap.import_images(database, str(image_dir), pycolmap.CameraMode.SINGLE, [name], opts)
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.use_gpu = False
    extraction.max_image_size = MAX_IMAGE_SIDE
    step = max(1, len(names) // 10)
    for k in range(0, len(names), step):
        pycolmap.extract_features(database, str(image_dir), image_names=names[k:k + step],
                                  extraction_options=extraction, device=pycolmap.Device.cpu)
        report("extract", min(1.0, (k + step) / len(names)))
    match_pairs(database, [(names[i], names[j]) for i, j in pairs], work / "pairs.txt", report, chunks=10,
                smallest=20)
    rec = pycolmap.Reconstruction()
    with pycolmap.Database.open(database) as db:
        for camera in db.read_all_cameras():
            rec.add_camera(camera)
        for rig in db.read_all_rigs():
            rec.add_rig(rig)
        frames, images = db.read_all_frames(), db.read_all_images()
    index = {name: i for i, name in enumerate(names)}
    image_of_frame = {image.frame_id: image for image in images}
    for frame in frames:
        R, t = poses[index[image_of_frame[frame.frame_id].name]]
        frame.rig_from_world = pycolmap.Rigid3d(pycolmap.Rotation3d(np.asarray(R, float)), np.asarray(t, float))
        rec.add_frame(frame)
    for image in images:
        rec.add_image(image)
    for frame in frames:
        rec.register_frame(frame.frame_id)
    out = work / "model"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    report("triangulate", 0.0)
    rec = pycolmap.triangulate_points(rec, database, str(image_dir), str(out))
    report("triangulate", 1.0)
    image_index = {image_id: index[image.name] for image_id, image in rec.images.items()}
    points = [p for p in rec.points3D.values()]
    xyz = np.array([p.xyz for p in points], dtype=np.float64).reshape(-1, 3)
    rgb = np.array([p.color for p in points], dtype=np.uint8).reshape(-1, 3)
    views = [np.unique([image_index[e.image_id] for e in p.track.elements]) for p in points]
    return xyz, rgb, views
