"""The photos command: a folder of photographs in; cameras (structure from motion), masks and a mesh out."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from backend.capture.job_folder import write_photo_job
from backend.capture.locate import apply_similarity, camera_vectors, locate_object, transform_points
from backend.geometry.floor import floor_to_dict
from backend.runtime.errors import JobError
from backend.post.estimate import estimate_run_seconds
from backend.runtime.protocol import Reporter

JOB_DIR = "job"


def sfm_report(sfm, frame_scale: float) -> dict:
    """result.json / sfm.json "sfm": what structure from motion found."""
    return {"registered": [c.photo.name for c in sfm.cameras], "unregistered": list(sfm.unregistered),
            "left_out": dict(sfm.left_out), "reprojection_px": round(float(sfm.reprojection_px), 4),
            "points": int(len(sfm.points)), "seconds": round(float(sfm.seconds), 2),
            "warnings": list(sfm.warnings), "scale": frame_scale,
            "frame": "z up, the object at the origin, its box's largest side 1 unit"}


def prepare_job(photos_dir: Path, out_dir: Path, reporter: Reporter, settings: dict | None = None,
                masks_dir: Path | None = None, max_image_size: int = 1600, matcher: str = "auto") -> tuple[Path, dict]:
    """Structure from motion, the object's frame and its masks, written as OUT/job; returns (job dir, sfm report).
    The structure-from-motion work folder goes whatever happens, and OUT too when this run made it and it is empty."""
    photos_dir, out_dir = Path(photos_dir), Path(out_dir)
    reporter.stage("load")
    if not photos_dir.is_dir():
        raise JobError(f"photo folder {photos_dir} does not exist", "Give the folder that holds the photos.")
    if masks_dir is not None and not Path(masks_dir).is_dir():
        raise JobError(f"mask folder {masks_dir} does not exist", "Give the folder that holds <photo stem>.png masks.")
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / ".sfm_work"
    try:
        return build_job(photos_dir, out_dir, work, reporter, settings, masks_dir, max_image_size, matcher)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()


def build_job(photos_dir: Path, out_dir: Path, work: Path, reporter: Reporter, settings: dict | None,
              masks_dir: Path | None, max_image_size: int, matcher: str = "auto") -> tuple[Path, dict]:
    """prepare_job's work inside OUT: structure from motion in `work`, then the frame, the masks and OUT/job."""
    from backend.capture.sfm import run_sfm

    reporter.stage("sfm")
    t0 = time.monotonic()

    last_step = [""]

    def sfm_progress(step: str, fraction: float) -> None:
        if step != last_step[0]:
            last_step[0] = step
            reporter.log(f"sfm: {step}")
        reporter.progress("sfm", int(round(1000 * min(max(fraction, 0.0), 1.0))), 1000)

    sfm = run_sfm(photos_dir, work, progress=sfm_progress, poll=reporter.check_cancel, max_image_size=max_image_size,
                  matcher=matcher)
    for message in sfm.warnings:
        reporter.log(f"warning: {message}")
    centers, axes, ups = camera_vectors([c.R for c in sfm.cameras], [c.t for c in sfm.cameras])
    frame = locate_object(centers, axes, ups, sfm.points, sfm.point_views)
    poses = [apply_similarity(frame.transform, c.R, c.t) for c in sfm.cameras]
    points = transform_points(frame.transform, sfm.points)
    scale = float(np.cbrt(np.linalg.det(np.asarray(frame.transform)[:3, :3])))
    report = sfm_report(sfm, scale)
    if frame.floor is not None:
        report["floor"] = floor_to_dict(frame.floor)  # the job frame's floor (job.json too): the mesh is set down on it
    report["seconds_total"] = round(time.monotonic() - t0, 2)

    reporter.stage("masks")
    if masks_dir is not None:
        from backend.capture.user_masks import user_masks

        masks = user_masks(Path(masks_dir), sfm, max_image_size)
        report["masks"] = "given"
    else:
        from backend.capture.masks import make_masks
        from backend.capture.seed_visibility import visible_points
        from backend.io.images import read_image

        images = [np.round(read_image(c.image_path, c.name)[0] * 255).astype(np.uint8) for c in sfm.cameras]
        background = np.flatnonzero(~frame.object_points)
        visible = visible_points(len(background), [sfm.point_views[k] for k in background], len(sfm.cameras))
        masks = make_masks(images, [c.K for c in sfm.cameras], [p[0] for p in poses], [p[1] for p in poses],
                           frame.bbox_min, frame.bbox_max, points[frame.object_points],
                           background_points=points[background], background_visible=visible,
                           progress=lambda f: reporter.progress("masks", int(round(1000 * f)), 1000),
                           poll=reporter.check_cancel, floor=frame.floor)
        report["masks"] = "automatic"
    empty = [c.name for c, m in zip(sfm.cameras, masks) if not np.any(m)]
    if empty:
        report["warnings"].append(f"no object found in {len(empty)} photo(s): {', '.join(empty[:10])}")
    views = [{"name": c.name, "K": c.K, "R": r, "t": t, "width": c.width, "height": c.height}
             for c, (r, t) in zip(sfm.cameras, poses)]
    job_dir = write_photo_job(out_dir / JOB_DIR, views, [c.image_path for c in sfm.cameras], masks,
                              (frame.bbox_min, frame.bbox_max), dict(settings or {}), points, sfm.colors, report,
                              report.get("floor"))
    return job_dir, report


def photos_to_mesh(photos_dir: Path, out_dir: Path, reporter: Reporter, settings: dict | None = None,
                   masks_dir: Path | None = None, prepare_only: bool = False, max_image_size: int = 1600,
                   preview_every: int = 0, matcher: str = "auto") -> dict:
    """The whole photos command: OUT/job from the photos, then (unless prepare_only) the mesh into OUT."""
    from backend.io.job import load_job
    from backend.io.validate import validate_scene

    settings = dict(settings or {})
    job_dir, report = prepare_job(photos_dir, out_dir, reporter, settings, masks_dir, max_image_size, matcher)
    if prepare_only:
        return {"job": str(job_dir), "sfm": report}
    scene = load_job(job_dir)
    views = [v for v in scene.views if np.any(v.mask)]
    if len(views) < 2:
        raise JobError("the object was found in fewer than 2 photos",
                       "Photograph the object from all around, filling a good part of each frame, on a background "
                       "that differs from it; or give your own masks with --masks DIR.")
    scene.views = views
    validate_scene(scene)
    reporter.expect(estimate_run_seconds(scene))
    from backend.pipelines.reconstruct import reconstruct

    return reconstruct(scene, out_dir, reporter, preview_every=preview_every,
                       extra_result={"sfm": report, "cameras": photo_camera_entries(scene)})


def photo_camera_entries(scene) -> list[dict]:
    """result.json "cameras" of a photos run: each registered photo by its file stem, K, R, t in the job frame
    (the issue-10 entry form, uncorrected: camera refinement, when on, replaces them with its own)."""
    scale = float(scene.image_scale_applied or 1.0)
    out = []
    for v in scene.views:
        K = np.array(v.K, dtype=np.float64)
        K[:2] /= scale
        out.append({"name": v.name, "K": K.tolist(), "R": np.asarray(v.R).tolist(), "t": np.asarray(v.t).tolist(),
                    "rotation_deg": 0.0, "translation": 0.0, "weight": 1.0, "aligned": True, "held": True})
    return out
