"""Run a long native call in a killable worker process, with a time bound and a poll (cancel) every 50 ms.

A native call (xatlas, gpytoolbox) cannot be interrupted by a signal in the calling process: the
Python signal handler only runs once the call returns. In a child process it can be killed at once.
"""
from __future__ import annotations

import multiprocessing as mp
import sys
import time
from collections.abc import Callable
from typing import Any


def _child(fn: Callable[..., Any], args: tuple, conn: Any, with_report: bool = False) -> None:
    """Run fn(*args) in the child and send back ("ok", value) or ("error", text); with_report, fn also gets
    report=..., whose calls go back as ("msg", args)."""
    try:
        if with_report:
            conn.send(("ok", fn(*args, report=lambda *m: conn.send(("msg", m)))))
        else:
            conn.send(("ok", fn(*args)))
    except BaseException as exc:  # noqa: BLE001 - anything the worker does wrong goes back as text
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def context() -> mp.context.BaseContext:
    """fork where it is safe and fast (Linux), spawn elsewhere."""
    if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods():
        return mp.get_context("fork")
    return mp.get_context("spawn")


def stop(proc: mp.process.BaseProcess) -> None:
    """Kill the worker and reap it."""
    if proc.is_alive():
        proc.kill()
    proc.join(timeout=2.0)


def run_killable(fn: Callable[..., Any], args: tuple, timeout_s: float | None,
                 poll: Callable[[], None] | None = None, label: str = "worker",
                 tick: Callable[[float], None] | None = None, on_message: Callable[..., None] | None = None) -> Any:
    """fn(*args) in a worker process: its value, TimeoutError past timeout_s (None: no bound), RuntimeError when
    it fails or dies.

    `poll` is called every 50 ms while waiting (it may raise, e.g. on cancel) and `tick(elapsed_s)`
    about every 0.5 s (progress); the worker is killed whenever this function leaves without a value. With
    `on_message`, fn is called with report=...: each report(*m) in the worker calls on_message(*m) here.
    """
    ctx = context()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, args, send, on_message is not None), daemon=True)
    t0 = time.monotonic()
    proc.start()
    send.close()
    last_tick = t0
    try:
        while True:
            if poll is not None:
                poll()
            wait = 0.05 if timeout_s is None else min(0.05, max(t0 + timeout_s - time.monotonic(), 0.0))
            if recv.poll(wait):
                try:
                    status, value = recv.recv()
                except EOFError as exc:
                    raise RuntimeError(f"{label} worker died (exit code {proc.exitcode})") from exc
                if status == "msg":
                    if on_message is not None:
                        on_message(*value)
                    continue
                if status != "ok":
                    raise RuntimeError(f"{label} failed: {value}")
                return value
            if not proc.is_alive() and not recv.poll(0):
                raise RuntimeError(f"{label} worker died (exit code {proc.exitcode})")
            now = time.monotonic()
            if timeout_s is not None and now - t0 > timeout_s:
                raise TimeoutError(f"{label} did not return within {timeout_s:.0f} s")
            if tick is not None and now - last_tick >= 0.5:
                last_tick = now
                tick(now - t0)
    finally:
        stop(proc)
        recv.close()
