"""Structure from motion for a folder of photos: checks, SIFT features, matching, incremental mapping with
bundle adjustment (pycolmap, CPU), and undistortion to pinhole images. Each native step runs in a child
process, so a cancel (poll raising) kills it at once."""
from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pycolmap

from backend.capture import colmap_steps as steps
from backend.runtime.worker import run_killable
from backend.capture.photo_checks import check_photos, check_registration
from backend.capture.reconstruction import sfm_cameras, sparse_points
from backend.capture.sfm_types import SfmCamera, SfmResult
from backend.runtime.errors import JobError

__all__ = ["SfmCamera", "SfmResult", "run_sfm", "needs_focal_retry", "better_model"]

Model = tuple[str, int, float]   # (model folder, registered photos, mean reprojection px)


def needs_focal_retry(registered: int, attempted: int) -> bool:
    """Mapping without EXIF focal priors is worth a try when the model holds under half the photos (or under 3)."""
    return registered < max(3, math.ceil(attempted / 2))


def better_model(a: Model | None, b: Model | None) -> Model | None:
    """The model with more registered photos; on a tie the lower reprojection error."""
    if a is None or b is None:
        return a if b is None else b
    return a if (a[1], -a[2]) >= (b[1], -b[2]) else b


def _fresh_database(work_dir: Path) -> Path:
    """work_dir/database.db, removed first (with its sqlite side files) so each run starts clean."""
    db = work_dir / "database.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    return db


def _map_with_retry(db: str, photos_dir: Path, work_dir: Path, n: int, poll: Callable[[], None] | None,
                    say: Callable[[str, float], None], warnings: list[str]) -> tuple[Model | None, list[Model]]:
    """Incremental mapping; when under half the photos register and some camera had an EXIF focal prior,
    map again without the priors (EXIF is a hint: resized photos keep the original's focal plane
    resolution) and keep the better model. Returns the best model and its run's models."""
    models = run_killable(steps.incremental_map, (db, str(photos_dir), str(work_dir / "sparse"), n),
                          None, poll, "mapping", on_message=say)
    best = models[0] if models else None
    if not needs_focal_retry(best[1] if best else 0, n) or steps.reset_focal_priors(db) == 0:
        return best, models
    retry = run_killable(steps.incremental_map, (db, str(photos_dir), str(work_dir / "sparse_no_exif_focal"), n),
                     None, poll, "mapping", on_message=say)
    chosen = better_model(best, retry[0] if retry else None)
    if chosen is best:
        return best, models
    warnings.append("The EXIF focal lengths did not fit the photos (resized or edited photos?): mapping without "
                    f"them placed {chosen[1]} of {n} photos (with them: {best[1] if best else 0})")
    return chosen, retry


def run_sfm(photos_dir: Path, work_dir: Path, *, progress: Callable[[str, float], None] | None = None,
            poll: Callable[[], None] | None = None, max_image_size: int = 1600, matcher: str = "auto") -> SfmResult:
    """Cameras and sparse points for the photos in photos_dir; everything is written under work_dir
    (database.db, sparse*/ mapped models, refined/ the model with principal points refined, images/<stem>.png
    undistorted, undistorted/ the pinhole model).

    progress(step, fraction) runs for steps check, extract, match, map, refine (a last bundle adjustment
    freeing the principal points, for cameras with 10+ photos), undistort; poll() runs every 50 ms
    and may raise (Cancelled) to stop at once. max_image_size bounds the longest side for feature
    extraction and for the undistorted images. matcher: exhaustive (every pair), overlap (a coarse pass on the
    largest-scale features picks the pairs that overlap, in any file order; only those are matched in full),
    sequential (file-name order) or auto (exhaustive up to 30 photos, overlap up to 200, sequential beyond).
    JobError when the photos cannot give 3 registered cameras.
    """
    t0 = time.monotonic()
    photos_dir, work_dir = Path(photos_dir), Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda step, fraction: None)
    check = check_photos(photos_dir, poll, progress=lambda f: say("check", f))
    warnings = list(check.warnings)
    names = [p.name for p in check.usable]
    mode = steps.choose_matcher(matcher, len(names))
    db = str(_fresh_database(work_dir))
    shutil.rmtree(work_dir / "sparse_no_exif_focal", ignore_errors=True)

    groups = [[p.name for p in g] for g in check.groups]
    run_killable(steps.extract, (db, str(photos_dir), groups, max_image_size),
                 None, poll, "feature extraction", on_message=say)
    pairs = run_killable(steps.match, (db, mode, names, str(work_dir)), None, poll, "feature matching", on_message=say)
    if pairs == 0:
        check_registration([], names, photos_dir)
    best, models = _map_with_retry(db, photos_dir, work_dir, len(names), poll, say, warnings)
    if best is None:
        check_registration([], names, photos_dir)
    rec = pycolmap.Reconstruction(best[0])
    registered = sorted(rec.image(i).name for i in rec.reg_image_ids())
    warnings += check_registration(registered, names, photos_dir)
    others = sorted({n for path, _, _ in models if path != best[0]
                     for n in (im.name for im in pycolmap.Reconstruction(path).images.values() if im.has_pose)}
                    - set(registered))
    if others:
        warnings.append("These photos formed a separate group that does not overlap the main one and are left out: "
                        + ", ".join(others) + "; add photos between the two groups to join them")

    refined_dir = work_dir / "refined"
    shutil.rmtree(refined_dir, ignore_errors=True)
    refined = run_killable(steps.refine_principal_points, (best[0], str(refined_dir)),
                           None, poll, "principal points", on_message=say)
    if refined is not None:
        best = (str(refined_dir), best[1], refined)
    model_dir = work_dir / "undistorted"
    run_killable(steps.undistort, (best[0], str(photos_dir), str(work_dir / "images"), str(model_dir), max_image_size),
             None, poll, "undistortion", on_message=say)
    urec = pycolmap.Reconstruction(str(model_dir))
    cameras = sfm_cameras(urec, photos_dir, work_dir / "images")
    points, colors, views = sparse_points(urec)
    return SfmResult(cameras=cameras, unregistered=[n for n in names if n not in set(registered)],
                     left_out=dict(check.left_out), points=points, colors=colors, point_views=views,
                     reprojection_px=best[2], seconds=time.monotonic() - t0, warnings=warnings, model_dir=model_dir,
                     source_model_dir=Path(best[0]))
