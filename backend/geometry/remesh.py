"""Isotropic remeshing (Botsch-Kobbelt via gpytoolbox) in a killable worker process with a timeout."""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from backend.geometry.mesh_ops import collapse_degenerate, face_areas, largest_component
from backend.runtime.worker import run_killable

RemeshFn = Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]

# A remesh of a surface keeps its area (projected onto it, it can only lose some where it smooths) and makes about
# area / (0.433 h^2) triangles (equilateral at edge length h): measured 0.91-0.98 of that on fandisk's four remeshes.
# A crease-keeping remesh once returned 1.35x that many, with sheets folded through the solid that the rest of the
# run could not undo (Chamfer 0.98 % instead of 0.09-0.10 %; BENCHMARKS.md "A remesh that folds the surface").
PLAUSIBLE_FACES = 1.2  # most faces over those the input's area holds at the target edge length
PLAUSIBLE_AREA = 1.1  # most area over the input's
PLAUSIBLE_MIN_EXPECTED = 100  # below this many expected faces the count is not tested (too coarse to say)


def botsch_remesh(vertices: np.ndarray, faces: np.ndarray, edge_length: float,
                  feature_edges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """gpytoolbox.remesh_botsch to the target edge length (10 iterations, projected onto the input); feature
    edges (creases) are split and collapsed only along the crease and never flipped, so the crease stays."""
    import gpytoolbox

    v, f = gpytoolbox.remesh_botsch(np.ascontiguousarray(vertices, dtype=np.float64),
                                    np.ascontiguousarray(faces, dtype=np.int32),
                                    i=10, h=float(edge_length), project=True, feature_edges=feature_edges)
    return np.asarray(v, dtype=np.float64), np.asarray(f, dtype=np.int64)


def crease_edges(vertices: np.ndarray, faces: np.ndarray, degrees: float) -> np.ndarray:
    """Edges (E, 2) whose two faces' normals turn by more than `degrees`: the creases a remesh should keep."""
    import gpytoolbox

    theta = gpytoolbox.dihedral_angles(np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int32))
    sharp = np.nan_to_num(theta, nan=0.0) > np.deg2rad(degrees)
    edges = [np.stack([faces[sharp[:, c], (c + 1) % 3], faces[sharp[:, c], (c + 2) % 3]], axis=1) for c in range(3)]
    return np.unique(np.sort(np.concatenate(edges), axis=1), axis=0).astype(np.int64)


class CreaseFinder(Protocol):
    """Anything that says which edges of a mesh a remesh keeps as creases (optim.creases.CreaseRule)."""

    def edges(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """The crease edges (E, 2) of the mesh."""
        ...


@dataclass
class RemeshResult:
    """Outcome of a guarded remesh: the mesh to continue with and what happened."""

    vertices: np.ndarray
    faces: np.ndarray
    ok: bool
    seconds: float
    message: str = ""
    crease_edges: int = 0  # edges the remesh kept as creases


def implausible(vertices: np.ndarray, faces: np.ndarray, out_v: np.ndarray, out_f: np.ndarray,
                edge_length: float) -> str | None:
    """Why (out_v, out_f) is not a remesh of (vertices, faces) at `edge_length`: far more faces than the input's area
    holds at that edge length, or more area than the input has; None when it is plausible."""
    area_in = float(face_areas(vertices, faces).sum())
    area_out = float(face_areas(out_v, out_f).sum())
    if area_in > 0 and area_out > PLAUSIBLE_AREA * area_in:
        return f"its area grew {area_out / area_in:.2f}x"
    expected = area_in / (0.433 * float(edge_length) ** 2)
    if expected >= PLAUSIBLE_MIN_EXPECTED and len(out_f) > PLAUSIBLE_FACES * expected:
        return (f"{len(out_f)} faces where the input's area holds about {expected:.0f} at edge length "
                f"{edge_length:.3g}")
    return None


def run_guarded(fn: RemeshFn, vertices: np.ndarray, faces: np.ndarray, h: float, timeout_s: float,
                poll: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run fn(vertices, faces, h) in a killable worker (runtime.worker); TimeoutError / RuntimeError when it fails."""
    v, f = run_killable(fn, (vertices, faces, h), timeout_s, poll, label="remesh")
    return np.asarray(v), np.asarray(f)


def guarded_remesh(vertices: np.ndarray, faces: np.ndarray, edge_length: float, timeout_s: float = 60.0,
                   remesh_fn: RemeshFn = botsch_remesh, poll: Callable[[], None] | None = None,
                   creases: CreaseFinder | None = None) -> RemeshResult:
    """Collapse degenerate triangles, then remesh in a guarded worker (the `creases` rule's edges stay creases);
    on any failure keep the input mesh."""
    t0 = time.monotonic()
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    kept = 0
    note = ""
    try:
        v_in, f_in = collapse_degenerate(vertices, faces)
        fn = remesh_fn
        if creases is not None:
            edges = creases.edges(v_in, f_in)
            kept = len(edges)
            fn = functools.partial(remesh_fn, feature_edges=edges) if kept else remesh_fn
        v, f = remesh_checked(fn, v_in, f_in, edge_length, timeout_s, poll)
        why = implausible(v_in, f_in, v, f, edge_length)
        if why is not None and kept:
            note = f"the crease-keeping remesh was implausible ({why}); remeshed without creases"
            kept = 0
            v, f = remesh_checked(remesh_fn, v_in, f_in, edge_length, timeout_s, poll)
            why = implausible(v_in, f_in, v, f, edge_length)
        if why is not None:
            raise RuntimeError(f"remesh returned an implausible mesh ({why})")
    except (TimeoutError, RuntimeError, ValueError, IndexError) as exc:
        return RemeshResult(vertices, faces, False, time.monotonic() - t0, str(exc), kept)
    return RemeshResult(v, f, True, time.monotonic() - t0, note, crease_edges=kept)


def remesh_checked(fn: RemeshFn, vertices: np.ndarray, faces: np.ndarray, edge_length: float, timeout_s: float,
                   poll: Callable[[], None] | None) -> tuple[np.ndarray, np.ndarray]:
    """The guarded remesh's largest piece; RuntimeError when it is empty or not finite."""
    v, f = run_guarded(fn, vertices, faces, edge_length, timeout_s, poll)
    v, f = largest_component(np.asarray(v, dtype=np.float64), np.asarray(f, dtype=np.int64))
    if len(f) < 4 or not np.isfinite(v).all():
        raise RuntimeError(f"remesh returned an unusable mesh ({len(v)} vertices, {len(f)} faces)")
    return v, f
