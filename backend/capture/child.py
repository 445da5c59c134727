"""Run a blocking native step (pycolmap) in a child process that can be killed on cancel and that sends
progress messages back while it works."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backend.runtime.worker import context, stop


def _child(fn: Callable[..., Any], args: tuple, conn: Any) -> None:
    """Run fn(*args, report=...) in the child; messages go back as ("msg", m), the value as ("ok", v)."""
    try:
        conn.send(("ok", fn(*args, report=lambda *m: conn.send(("msg", m)))))
    except BaseException as exc:  # noqa: BLE001 - anything the step does wrong goes back as text
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def run_step(fn: Callable[..., Any], args: tuple, poll: Callable[[], None] | None = None,
             on_message: Callable[..., None] | None = None, label: str = "step") -> Any:
    """fn(*args, report=send) in a child process: its value, RuntimeError when it fails or dies.

    `poll` runs every 50 ms (it may raise, e.g. Cancelled) and the child is then killed at once;
    each `report(*m)` in the child calls `on_message(*m)` here.
    """
    ctx = context()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, args, send), daemon=True)
    proc.start()
    send.close()
    try:
        while True:
            if poll is not None:
                poll()
            if recv.poll(0.05):
                try:
                    kind, value = recv.recv()
                except EOFError as exc:
                    raise RuntimeError(f"{label} worker died (exit code {proc.exitcode})") from exc
                if kind == "msg":
                    if on_message is not None:
                        on_message(*value)
                    continue
                if kind != "ok":
                    raise RuntimeError(f"{label} failed: {value}")
                return value
            if not proc.is_alive() and not recv.poll(0):
                raise RuntimeError(f"{label} worker died (exit code {proc.exitcode})")
    finally:
        stop(proc)
        recv.close()
