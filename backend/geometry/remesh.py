"""Isotropic remeshing (Botsch-Kobbelt via gpytoolbox) in a killable worker process with a timeout."""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from backend.geometry.mesh_ops import collapse_degenerate, largest_component
from backend.runtime.worker import run_killable

RemeshFn = Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]


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
    try:
        v, f = collapse_degenerate(vertices, faces)
        fn = remesh_fn
        if creases is not None:
            edges = creases.edges(v, f)
            kept = len(edges)
            fn = functools.partial(remesh_fn, feature_edges=edges) if kept else remesh_fn
        v, f = run_guarded(fn, v, f, edge_length, timeout_s, poll)
        v, f = largest_component(np.asarray(v, dtype=np.float64), np.asarray(f, dtype=np.int64))
        if len(f) < 4 or not np.isfinite(v).all():
            raise RuntimeError(f"remesh returned an unusable mesh ({len(v)} vertices, {len(f)} faces)")
    except (TimeoutError, RuntimeError, ValueError, IndexError) as exc:
        return RemeshResult(vertices, faces, False, time.monotonic() - t0, str(exc), kept)
    return RemeshResult(v, f, True, time.monotonic() - t0, crease_edges=kept)
