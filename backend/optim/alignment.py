"""Which views cannot be aligned (silhouette overlap an outlier after refinement), and the refined cameras'
entries of result.json in the job's frame."""
from __future__ import annotations

import numpy as np

from backend.io.views import View
from backend.pose import camera_center, denormalize_pose, rotation_angle_deg

MIN_IOU = 0.75  # below this silhouette overlap a view is never counted as aligned
OUTLIER_GAP = 0.06  # nor when its overlap is this far (or 6 MADs, if more) below the median view's
DOWN_WEIGHT = 0.05  # loss weight of a view that cannot be aligned


def unaligned(ious: np.ndarray) -> np.ndarray:
    """Boolean per view: its silhouette IoU is below MIN_IOU or an outlier below the others."""
    ious = np.asarray(ious, dtype=np.float64)
    med = float(np.median(ious))
    mad = float(np.median(np.abs(ious - med)))
    return (ious < MIN_IOU) | (ious < med - max(OUTLIER_GAP, 6.0 * 1.4826 * mad))


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


def camera_entries(views: list[View], rotations: np.ndarray, centres: np.ndarray, focal: float,
                   c: np.ndarray, s: float, image_scale: float, weights: np.ndarray,
                   flags: np.ndarray) -> list[dict]:
    """result.json "cameras": refined K, R, t per view in the job's world frame and pixels, the size of each
    correction, its weight and whether it was aligned. rotations (N, 3, 3), centres (N, 3) are normalised-frame
    poses; views are the scene's (world-frame) views; image_scale undoes the job's image_scale on K."""
    out = []
    for i, v in enumerate(views):
        R = rotations[i]
        t = denormalize_pose(R, -R @ centres[i], c, s)
        K = np.array(v.K, dtype=np.float64)
        K[:2] /= image_scale
        K[0, 0] *= focal
        K[0, 1] *= focal
        K[1, 1] *= focal
        out.append({
            "name": v.name, "K": K.tolist(), "R": R.tolist(), "t": t.tolist(),
            "rotation_deg": rotation_angle_deg(R @ np.asarray(v.R).T),
            "translation": float(np.linalg.norm(camera_center(R, t) - v.center)),
            "weight": round(float(weights[i]), 6), "aligned": not bool(flags[i]),
        })
    return out
