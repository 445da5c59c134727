"""Progress protocol: one JSON object per line on stdout, or a human progress bar on a terminal."""
from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

from backend.runtime.errors import Cancelled

STAGES = ("load", "visual_hull", "optimize", "decimate", "symmetry", "uv", "texture", "write")


def _clean(value: Any) -> Any:
    """JSON-safe copy: numpy/torch scalars to floats, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
        if isinstance(value, int):
            return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


class Reporter:
    """Writes protocol lines (stage, progress, preview, done, error) and logs; holds the cancel flag."""

    def __init__(self, stream: IO[str] | None = None, json_mode: bool | None = None,
                 log_stream: IO[str] | None = None, quiet_logs: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.log_stream = log_stream if log_stream is not None else sys.stderr
        if json_mode is None:
            isatty = getattr(self.stream, "isatty", None)
            json_mode = not (callable(isatty) and isatty())
        self.json_mode = json_mode
        self.quiet_logs = quiet_logs
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self._critical = 0
        self._pending_cancel = False
        self._bar_open = False
        self._t0 = time.monotonic()
        self.lines: list[dict] = []
        self.estimates: dict[str, float] = {}
        self._stage = ""
        self._stage_t0 = self._t0

    def emit(self, obj: dict) -> None:
        """Write one protocol object (JSON line, or its human rendering) and flush."""
        obj = _clean(obj)
        self.lines.append(obj)
        with self._lock:
            try:
                if self.json_mode:
                    self.stream.write(json.dumps(obj, separators=(",", ":")) + "\n")
                else:
                    self._write_human(obj)
                self.stream.flush()
            except (BrokenPipeError, ValueError):
                pass

    def _write_human(self, obj: dict) -> None:
        """Render one object for a person watching a terminal."""
        kind = obj.get("type")
        if kind == "progress":
            total = max(int(obj.get("total") or 1), 1)
            frac = min(max(int(obj.get("step", 0)) / total, 0.0), 1.0)
            filled = int(round(30 * frac))
            losses = " ".join(f"{k}={v:.4g}" for k, v in (obj.get("losses") or {}).items()
                              if isinstance(v, (int, float)))
            left = f" ~{obj['eta_s']:.0f}s left" if obj.get("eta_s") is not None else ""
            self.stream.write(f"\r{obj.get('stage', '')} [{'#' * filled}{'.' * (30 - filled)}] "
                              f"{obj.get('step')}/{total} {obj.get('elapsed_s', 0):.1f}s{left} {losses}\033[K")
            self._bar_open = True
            return
        if self._bar_open:
            self.stream.write("\n")
            self._bar_open = False
        if kind == "stage":
            self.stream.write(f"== {obj['name']}\n")
        elif kind == "preview":
            self.stream.write(f"   preview {obj['mesh']} (step {obj['step']})\n")
        elif kind == "done":
            self.stream.write(f"done: {obj['result']}\n")
        elif kind == "error":
            hint = f"\n  hint: {obj['hint']}" if obj.get("hint") else ""
            self.stream.write(f"error: {obj['message']}{hint}\n")
        else:
            self.stream.write(json.dumps(obj) + "\n")

    def stage(self, name: str) -> None:
        """Announce a pipeline stage."""
        self.check_cancel()
        self._stage, self._stage_t0 = name, time.monotonic()
        self.emit({"type": "stage", "name": name})

    def expect(self, estimates: dict[str, float]) -> None:
        """Estimated seconds of stages still to come (post-processing): they feed eta_s of progress lines."""
        self.estimates.update(estimates)

    def eta(self, stage: str, step: int, total: int) -> float | None:
        """Seconds left in the whole run: this stage extrapolated from its pace, plus the estimates of later ones."""
        if not self.estimates:
            return None
        spent = time.monotonic() - self._stage_t0 if stage == self._stage else 0.0
        if step > 0 and total > 0:
            left = spent / step * max(total - step, 0)
        else:
            left = max(self.estimates.get(stage, 0.0) - spent, 0.0)
        later = STAGES[STAGES.index(stage) + 1:] if stage in STAGES else ()
        return left + sum(self.estimates.get(s, 0.0) for s in later)

    def progress(self, stage: str, step: int, total: int, losses: dict[str, float] | None = None,
                 elapsed_s: float | None = None) -> None:
        """Report a step of a stage, with losses and the seconds since the run started."""
        if elapsed_s is None:
            elapsed_s = time.monotonic() - self._t0
        obj = {"type": "progress", "stage": stage, "step": int(step), "total": int(total),
               "losses": dict(losses or {}), "elapsed_s": round(float(elapsed_s), 3)}
        eta = self.eta(stage, int(step), int(total))
        if eta is not None:
            obj["eta_s"] = round(eta, 1)
        self.emit(obj)

    def preview(self, mesh: str, step: int) -> None:
        """Announce an intermediate mesh, path relative to the result folder."""
        self.emit({"type": "preview", "mesh": mesh, "step": int(step)})

    def done(self, result: str) -> None:
        """Announce the finished result (path of result.json relative to the result folder)."""
        self.emit({"type": "done", "result": result})

    def error(self, message: str, hint: str = "", view: str | None = None) -> None:
        """Report a failure; the process then exits non-zero."""
        obj: dict = {"type": "error", "message": message, "hint": hint}
        if view is not None:
            obj["view"] = view
        self.emit(obj)

    def log(self, message: str) -> None:
        """A human log line on stderr (never on stdout)."""
        if self.quiet_logs:
            return
        with self._lock:
            try:
                if self._bar_open and not self.json_mode:
                    self.stream.write("\n")
                    self._bar_open = False
                self.log_stream.write(message.rstrip("\n") + "\n")
                self.log_stream.flush()
            except (BrokenPipeError, ValueError):
                pass

    def cancel(self) -> None:
        """Ask the run to stop as soon as possible."""
        self.cancelled.set()

    def check_cancel(self) -> None:
        """Raise Cancelled when a cancel was requested (outside a critical section)."""
        if self.cancelled.is_set() and self._critical == 0:
            raise Cancelled("cancelled")

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """Defer cancellation raised by signals while the block runs (e.g. the final rename)."""
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1
        self.check_cancel()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT set the cancel flag and interrupt the main thread at once."""

        def handler(signum: int, frame: object) -> None:
            self.cancelled.set()
            if self._critical == 0:
                raise Cancelled(signal.Signals(signum).name)

        signal.signal(signal.SIGINT, handler)
        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, handler)
