"""Which views cannot be aligned (silhouette overlap an outlier after refinement), and the refined cameras'
entries of result.json in the job's frame."""
from __future__ import annotations

import numpy as np

from backend.cameras.pose import camera_center, denormalize_pose, rotation_angle_deg
from backend.io.views import View

MIN_IOU = 0.75  # below this silhouette overlap a view is not counted as aligned (when most views reach it)
OUTLIER_GAP = 0.06  # nor when its overlap is this far (or 6 MADs, if more) below the median view's
DOWN_WEIGHT = 0.05  # loss weight of a view that cannot be aligned


def unaligned(ious: np.ndarray) -> np.ndarray:
    """Boolean per view: its silhouette IoU is an outlier below the others', or below MIN_IOU while the median
    view reaches it. When most views overlap poorly the mesh is what is not fitted yet (a short run, a thin
    object at a low resolution), not the cameras: down-weighting them all would only weaken the data terms."""
    ious = np.asarray(ious, dtype=np.float64)
    med = float(np.median(ious))
    mad = float(np.median(np.abs(ious - med)))
    outlier = ious < med - max(OUTLIER_GAP, 6.0 * 1.4826 * mad)
    return outlier | ((ious < MIN_IOU) & (med >= MIN_IOU))


def view_weights(flags: np.ndarray) -> np.ndarray:
    """Loss weights: 1 for aligned views, DOWN_WEIGHT for the others."""
    return np.where(flags, DOWN_WEIGHT, 1.0)


def alignment_warning(name: str, iou: float) -> str:
    """The result.json warning naming a view that could not be aligned."""
    return (f"View '{name}' could not be aligned (silhouette overlap {iou:.2f} after refinement): its image may "
            f"belong to another view or its camera is far off. It was down-weighted.")


def silhouette_iou(covered: np.ndarray, mask: np.ndarray) -> float:
    """Intersection over union of two boolean images (1.0 when both are empty)."""
    union = np.logical_or(covered, mask).sum()
    return float(np.logical_and(covered, mask).sum() / union) if union else 1.0


def refined_views(views: list[View], rotations: np.ndarray, centres: np.ndarray, focal: float,
                  c: np.ndarray, s: float) -> list[View]:
    """The scene's (world-frame) views with the refined poses and focal scale: the cameras the texture is
    baked from. rotations (N, 3, 3), centres (N, 3) are normalised-frame poses."""
    out = []
    for i, v in enumerate(views):
        R = np.asarray(rotations[i], dtype=np.float64)
        K = np.array(v.K, dtype=np.float64)
        K[0, :2] *= focal
        K[1, 1] *= focal
        out.append(View(v.name, v.image, v.mask, K, R, denormalize_pose(R, -R @ centres[i], c, s), v.mask_auto))
    return out


def camera_entries(views: list[View], refined: list[View], image_scale: float, weights: np.ndarray,
                   flags: np.ndarray, held: np.ndarray | None = None) -> list[dict]:
    """result.json "cameras": refined K, R, t per view in the job's world frame and pixels (image_scale undone
    on K), the size of each correction, its weight, whether it was aligned and whether it was held on the
    given camera (its correction stayed within the optimisation's noise)."""
    out = []
    held = np.zeros(len(views), dtype=bool) if held is None else np.asarray(held, dtype=bool)
    for v, r, w, flag, keep in zip(views, refined, weights, flags, held):
        K = np.array(r.K, dtype=np.float64)
        K[:2] /= image_scale
        out.append({
            "name": v.name, "K": K.tolist(), "R": r.R.tolist(), "t": r.t.tolist(),
            "rotation_deg": rotation_angle_deg(r.R @ np.asarray(v.R).T),
            "translation": float(np.linalg.norm(camera_center(r.R, r.t) - v.center)),
            "weight": float(w), "aligned": not bool(flag), "held": bool(keep),
        })
    return out
