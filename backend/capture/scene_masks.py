"""Masks for the views of a loaded job that came without alpha or mask file (DESIGN: made, not refused).

Sparse points come from the job's own structure-from-motion model (COLMAP layout) or are triangulated
from the known cameras with pycolmap (`triangulate.py`, in a killable child step). `locate_object` finds
the object among them (its frame only serves to find the object: the scene's world frame is left as it
is), the job's bbox wins over the located box, and `make_masks` segments every view; only the views
without a mask take the result. Without enough points but with a bbox, the box alone seeds the masks.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from backend.runtime.worker import run_killable
from backend.capture.locate import MIN_OBJECT_POINTS, camera_vectors, locate_object
from backend.capture.masks import make_masks
from backend.capture.seed_visibility import visible_points
from backend.capture.triangulate import triangulate, view_pairs
from backend.io.views import Scene
from backend.runtime.errors import JobError
from backend.runtime.protocol import Reporter

LOCATED_MARGIN = 0.3  # margin of a located box, share of its side: textureless parts (no points) stay inside
POINTS_SHARE = 0.4  # share of the stage's progress bar that finding the sparse points takes
NO_OBJECT_HINT = ("give the views an alpha channel or mask files, or a bbox around the object in job.json; "
                  "automatic masks need the object textured enough to match between views")


def missing_views(scene: Scene) -> list[int]:
    """Indices of the views whose mask is None."""
    return [i for i, v in enumerate(scene.views) if v.mask is None]


def scene_points(scene: Scene, reporter: Reporter) -> tuple[np.ndarray, list[np.ndarray] | None, str]:
    """The scene's sparse points, per point the views that see them (None when unknown), and where they came from."""
    if scene.points is not None and len(scene.points) >= MIN_OBJECT_POINTS:
        return np.asarray(scene.points, dtype=np.float64).reshape(-1, 3), None, "model"
    views = scene.views
    centers, axes, _ = camera_vectors([v.R for v in views], [v.t for v in views])
    names = [f"{i:05d}.png" for i in range(len(views))]
    with tempfile.TemporaryDirectory(prefix="scene_masks_") as tmp:
        (Path(tmp) / "images").mkdir()
        for name, view in zip(names, views):
            rgb = np.clip(np.asarray(view.image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
            cv2.imwrite(str(Path(tmp) / "images" / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        weights = {"extract": (0.0, 0.5), "match": (0.5, 0.45), "triangulate": (0.95, 0.05)}

        def on_message(step: str, fraction: float) -> None:
            start, span = weights.get(step, (0.0, 0.0))
            share = POINTS_SHARE * (start + span * min(max(fraction, 0.0), 1.0))
            reporter.progress("masks", int(round(1000 * share)), 1000)

        intrinsics = [(float(v.K[0, 0]), float(v.K[1, 1]), float(v.K[0, 2]), float(v.K[1, 2])) for v in views]
        poses = [(np.asarray(v.R, float), np.asarray(v.t, float)) for v in views]
        try:
            xyz, _, seen = run_killable(triangulate, (tmp, names, intrinsics, poses, view_pairs(axes, centers)),
                                        None, poll=reporter.check_cancel, on_message=on_message, label="triangulation")
        except RuntimeError as exc:
            reporter.log(f"warning: triangulating sparse points failed: {exc}")
            return np.zeros((0, 3)), None, "none"
    return xyz, seen, "triangulated"


def inside_box(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """True for points within the axis-aligned box."""
    return np.all((points >= lo) & (points <= hi), axis=1)


def world_box(transform: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned world box around a box given in the frame X' = transform @ X."""
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    A = np.asarray(transform, dtype=np.float64)
    world = (corners - A[:3, 3]) @ np.linalg.inv(A[:3, :3]).T
    return world.min(axis=0), world.max(axis=0)


def object_seeds(scene: Scene, points: np.ndarray, seen: list[np.ndarray] | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, str]:
    """(box min, box max, object points, background point indices or None, how): the object's box and sparse
    points in the scene's world frame; the job's bbox wins over the located one, points outside it are background."""
    views = scene.views
    centers, axes, ups = camera_vectors([v.R for v in views], [v.t for v in views])
    given = None if scene.bbox is None else tuple(np.asarray(b, dtype=np.float64) for b in scene.bbox)
    try:
        frame = locate_object(centers, axes, ups, points, seen, margin=LOCATED_MARGIN)
    except JobError as exc:
        if given is None:
            raise JobError(f"cannot make masks automatically: {exc.message}", NO_OBJECT_HINT) from exc
        return given[0], given[1], np.zeros((0, 3)), None, "box"
    chosen = frame.object_points
    if given is None:
        lo, hi = world_box(frame.transform, frame.bbox_min, frame.bbox_max)
        return lo, hi, points[chosen], np.flatnonzero(~chosen), "points"
    inside = inside_box(points, *given)
    obj = points[chosen & inside]
    if len(obj) < MIN_OBJECT_POINTS:
        return given[0], given[1], np.zeros((0, 3)), np.flatnonzero(~inside), "box"
    return given[0], given[1], obj, np.flatnonzero(~inside), "points"


def fill_missing_masks(scene: Scene, reporter: Reporter) -> list[str]:
    """Make a mask for every view whose mask is None (in place); returns warnings for result.json.

    Views that come out empty (no object found there) are dropped with a warning. Reports stage "masks"
    with progress; a cancel stops it (the triangulation child is killed)."""
    missing = missing_views(scene)
    if not missing:
        return []
    reporter.stage("masks")
    reporter.progress("masks", 0, 1000)
    points, seen, source = scene_points(scene, reporter)
    reporter.check_cancel()
    lo, hi, obj, background, how = object_seeds(scene, points, seen)
    reporter.log(f"masks: {len(points)} sparse points ({source}), {len(obj)} on the object; seeded by {how}")
    views = scene.views

    def progress(fraction: float) -> None:
        reporter.progress("masks", int(round(1000 * (POINTS_SHARE + (1 - POINTS_SHARE) * fraction))), 1000)

    visible = None
    if background is not None and seen is not None:
        visible = visible_points(len(background), [seen[k] for k in background], len(views))
    masks = make_masks([v.image for v in views], [v.K for v in views], [v.R for v in views], [v.t for v in views],
                       lo, hi, obj, background_points=None if background is None else points[background],
                       progress=progress, poll=reporter.check_cancel, background_visible=visible)
    for i in missing:
        views[i].mask = masks[i]
        views[i].mask_auto = True
    warnings = [f"masks were made automatically for {len(missing)} view(s) that had neither alpha nor a mask file "
                f"({len(points)} sparse points, {source}; seeded by {'the object points' if how == 'points' else 'the bbox'})"]
    empty = [views[i].name for i in missing if not masks[i].any()]
    if empty:
        scene.views = [v for v in views if v.mask is None or v.mask.any()]
        warnings.append(f"no object found in {len(empty)} view(s), left out: {', '.join(empty[:10])}")
    for message in warnings:
        reporter.log(f"warning: {message}")
    return warnings

