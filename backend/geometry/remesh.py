"""Isotropic remeshing (Botsch-Kobbelt via gpytoolbox) in a killable worker process with a timeout."""
from __future__ import annotations

import multiprocessing as mp
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from backend.geometry.mesh_ops import collapse_degenerate, largest_component

RemeshFn = Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]


def botsch_remesh(vertices: np.ndarray, faces: np.ndarray, edge_length: float) -> tuple[np.ndarray, np.ndarray]:
    """gpytoolbox.remesh_botsch to the target edge length (10 iterations, projected onto the input)."""
    import gpytoolbox

    v, f = gpytoolbox.remesh_botsch(np.ascontiguousarray(vertices, dtype=np.float64),
                                    np.ascontiguousarray(faces, dtype=np.int32),
                                    i=10, h=float(edge_length), project=True)
    return np.asarray(v, dtype=np.float64), np.asarray(f, dtype=np.int64)


@dataclass
class RemeshResult:
    """Outcome of a guarded remesh: the mesh to continue with and what happened."""

    vertices: np.ndarray
    faces: np.ndarray
    ok: bool
    seconds: float
    message: str = ""


def _worker(fn: RemeshFn, vertices: np.ndarray, faces: np.ndarray, h: float, conn: object) -> None:
    """Run fn in the child and send back (vertices, faces) or the error text."""
    try:
        v, f = fn(vertices, faces, h)
        conn.send(("ok", np.asarray(v), np.asarray(f)))
    except BaseException as exc:  # noqa: BLE001 - anything the worker does wrong goes back as text
        conn.send(("error", f"{type(exc).__name__}: {exc}", None))
    finally:
        conn.close()


def _context() -> mp.context.BaseContext:
    """fork where it is safe and fast (Linux), spawn elsewhere."""
    if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods():
        return mp.get_context("fork")
    return mp.get_context("spawn")


def _stop(proc: mp.process.BaseProcess) -> None:
    """Kill the worker and reap it."""
    if proc.is_alive():
        proc.kill()
    proc.join(timeout=2.0)


def run_guarded(fn: RemeshFn, vertices: np.ndarray, faces: np.ndarray, h: float, timeout_s: float,
                poll: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run fn(vertices, faces, h) in a worker process; TimeoutError / RuntimeError when it fails.

    `poll` is called every 50 ms while waiting (it may raise, e.g. on cancel); the worker is
    killed whenever this function leaves without a result.
    """
    ctx = _context()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker, args=(fn, vertices, faces, h, send), daemon=True)
    proc.start()
    send.close()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if poll is not None:
                poll()
            if recv.poll(0.05):
                try:
                    status, a, b = recv.recv()
                except EOFError as exc:
                    raise RuntimeError(f"remesh worker died (exit code {proc.exitcode})") from exc
                if status != "ok":
                    raise RuntimeError(f"remesh failed: {a}")
                return a, b
            if not proc.is_alive() and not recv.poll(0):
                raise RuntimeError(f"remesh worker died (exit code {proc.exitcode})")
            if time.monotonic() > deadline:
                raise TimeoutError(f"remesh did not return within {timeout_s:.0f} s")
    finally:
        _stop(proc)
        recv.close()


def guarded_remesh(vertices: np.ndarray, faces: np.ndarray, edge_length: float, timeout_s: float = 60.0,
                   remesh_fn: RemeshFn = botsch_remesh, poll: Callable[[], None] | None = None) -> RemeshResult:
    """Collapse degenerate triangles, then remesh in a guarded worker; on any failure keep the input mesh."""
    t0 = time.monotonic()
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    try:
        v, f = collapse_degenerate(vertices, faces)
        v, f = run_guarded(remesh_fn, v, f, edge_length, timeout_s, poll)
        v, f = largest_component(np.asarray(v, dtype=np.float64), np.asarray(f, dtype=np.int64))
        if len(f) < 4 or not np.isfinite(v).all():
            raise RuntimeError(f"remesh returned an unusable mesh ({len(v)} vertices, {len(f)} faces)")
    except (TimeoutError, RuntimeError, ValueError, IndexError) as exc:
        return RemeshResult(vertices, faces, False, time.monotonic() - t0, str(exc))
    return RemeshResult(v, f, True, time.monotonic() - t0)
