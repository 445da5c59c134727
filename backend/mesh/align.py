"""Rigid (optionally uniformly scaled) alignment of a mesh to a reference: PCA start, then ICP.

Scheme (in `backend/mesh/meshmath.py`, shared with `blender_addon/compare_math.py`): sample both
surfaces (`sample_surface`, seed 0); candidate starts are the centroid shift and the four proper
PCA-axis matchings; each runs a few point-to-surface ICP steps (closed-form Umeyama per step),
the best mean distance wins and runs to convergence. The result maps the moving mesh onto the reference.
"""
from __future__ import annotations

import numpy as np

from backend.mesh.meshmath import align_points
from backend.mesh.distance import point_to_surface, sample_surface


def align_meshes(v_mov: np.ndarray, f_mov: np.ndarray, v_ref: np.ndarray, f_ref: np.ndarray,
                 scale: bool = False, n_samples: int = 4000, seed: int = 0) -> np.ndarray:
    """4x4 transform that maps the moving mesh onto the reference mesh."""
    src = sample_surface(v_mov, f_mov, n_samples, seed)[0]
    dst = sample_surface(v_ref, f_ref, n_samples, seed)[0]
    v_ref = np.asarray(v_ref, dtype=np.float64)
    f_ref = np.asarray(f_ref, dtype=np.int64)
    return align_points(src, dst, lambda p: point_to_surface(p, v_ref, f_ref)[2], scale)
