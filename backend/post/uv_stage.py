"""The UV stage: xatlas in a killable worker under a time bound that grows with the face count, else fast UVs."""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from backend.post.fast_uv import fast_uv
from backend.post.symmetry import SymmetryPlane
from backend.post.uv import UVMesh, compute_uv
from backend.runtime.worker import run_killable

UV_BASE_S = 3.0
UV_PER_FACE_S = 3e-5  # 100k faces: 6 s; 300k: 12 s (xatlas on 2 loaded cores: about 0.35 ms per face)
PROBE_MIN_FACES = 20_000  # above this, a timed xatlas run on a decimated copy predicts the full run
PROBE_FACES = 2_000
PROBE_MARGIN = 1.0  # skip xatlas when the prediction exceeds the bound (predictions run low: charts grow)


def uv_time_bound(faces: int) -> float:
    """Seconds xatlas may take for a mesh of this many faces before the fast parametrisation replaces it."""
    return UV_BASE_S + UV_PER_FACE_S * faces


def xatlas_seconds_predicted(vertices: np.ndarray, faces: np.ndarray, resolution: int) -> float:
    """Seconds xatlas would take on this mesh, from a timed run on a copy decimated to PROBE_FACES (linear in faces)."""
    from backend.post.decimate import quadric_decimate

    v, f = quadric_decimate(vertices, faces, PROBE_FACES)
    t = time.monotonic()
    compute_uv(v, f, None, resolution)
    return (time.monotonic() - t) * len(faces) / max(len(f), 1)


def guarded_uv(vertices: np.ndarray, faces: np.ndarray, seam_plane: SymmetryPlane | None, resolution: int,
               poll: Callable[[], None] | None = None, progress: Callable[[float], None] | None = None,
               timeout_s: float | None = None) -> tuple[UVMesh, str | None]:
    """(UV mesh, warning or None): xatlas within the bound, otherwise the box-projection charts with a warning.

    `poll` may raise (cancel) and kills the worker; `progress(fraction)` follows the time bound.
    """
    bound = uv_time_bound(len(faces)) if timeout_s is None else timeout_s
    shown = [0.0]

    def tick(elapsed: float) -> None:
        """Time-based progress that never goes back (the probe and xatlas each restart the clock)."""
        shown[0] = max(shown[0], min(elapsed / bound, 0.99))
        if progress is not None:
            progress(shown[0])

    try:
        if len(faces) > PROBE_MIN_FACES:
            predicted = run_killable(xatlas_seconds_predicted, (vertices, faces, resolution), bound, poll,
                                     label="xatlas probe", tick=tick)
            if predicted > PROBE_MARGIN * bound:
                raise TimeoutError(f"UV map (xatlas) would take about {predicted:.0f} s for {len(faces)} faces, "
                                   f"over its time bound of {bound:.0f} s")
        mesh = run_killable(compute_uv, (vertices, faces, seam_plane, resolution), bound, poll,
                            label="UV map (xatlas)", tick=tick)
        return mesh, None
    except (TimeoutError, RuntimeError) as exc:
        mesh = fast_uv(vertices, faces, seam_plane, resolution)
        return mesh, (f"{exc}; used the fast box-projection UV map instead ({mesh.charts} charts, "
                      f"packing efficiency {mesh.efficiency:.2f})")
