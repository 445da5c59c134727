"""Progress protocol: one JSON object per line on stdout, or a human progress bar on a terminal."""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from backend.runtime.errors import Cancelled

# Every stage name of the protocol in run order: `reconstruct` runs load, visual_hull, optimize and the
# post-processing (decimate .. write), with `topology` (when it runs) inside optimize at its first remesh, "optimize"
# announced again after it; `photos` adds sfm and masks before visual_hull; `points-to-mesh`
# runs load, outliers, normals, surface, trim and the post-processing. The order gives eta_s its later stages.
STAGES = ("load", "sfm", "masks", "visual_hull", "topology", "optimize", "outliers", "normals", "surface", "trim",
          "decimate", "symmetry", "uv", "texture", "write")
# Test hook (tests/test_cancel_stages.py): with this variable set to a point's name, the run stops there and
# waits for a cancel, so a test signals at an exact stage boundary instead of racing it. Unset: no effect.
HOLD_ENV = "BACKEND_TEST_HOLD_AT"


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
                 log_stream: IO[str] | None = None, quiet_logs: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
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
        self._finished = False
        self._bar_open = False
        self._clock = clock
        self._t0 = clock()
        self.lines: list[dict] = []
        self.estimates: dict[str, float] = {}
        self._stage = ""
        self._stage_t0 = self._t0
        self._pace_from: tuple[float, int] | None = None  # (time, step) of the stage's first step past warm-up

    def emit(self, obj: dict) -> None:
        """Write one protocol object (JSON line, or its human rendering) and flush.

        A closed JSON pipe means its reader (the add-on, or Blender itself after a crash) is gone and nobody will
        take the result: the run is cancelled, so it does not go on using the machine for minutes.
        """
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
                if self.json_mode:
                    self.cancelled.set()

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
        self._stage, self._stage_t0, self._pace_from = name, self._clock(), None
        self.emit({"type": "stage", "name": name})

    def expect(self, estimates: dict[str, float]) -> None:
        """Estimated seconds of stages still to come (post-processing): they feed eta_s of progress lines."""
        self.estimates.update(estimates)

    def eta(self, stage: str, step: int, total: int) -> float | None:
        """Seconds left in the whole run, or None while the pace is unknown.

        The current stage goes at the pace measured from its first reported step on (the first step holds
        one-off costs such as numba's JIT compile, so it is never extrapolated); until a later step is
        reported, the stage's estimate stands in, and without one there is no figure. Later stages add
        their estimates.
        """
        if not self.estimates:
            return None
        now = self._clock()
        current = stage == self._stage
        spent = now - self._stage_t0 if current else 0.0
        if total > 0 and step >= total:
            left = 0.0
        elif current and self._pace_from is not None and step > self._pace_from[1]:
            t_from, step_from = self._pace_from
            left = (now - t_from) / (step - step_from) * (total - step)
        elif stage in self.estimates:
            left = max(self.estimates[stage] - spent, 0.0)
        else:
            return None
        later = STAGES[STAGES.index(stage) + 1:] if stage in STAGES else ()
        return left + sum(self.estimates.get(s, 0.0) for s in later)

    def progress(self, stage: str, step: int, total: int, losses: dict[str, float] | None = None,
                 elapsed_s: float | None = None) -> None:
        """Report a step of a stage, with losses, the seconds since the run started and (once known) eta_s."""
        now = self._clock()
        if elapsed_s is None:
            elapsed_s = now - self._t0
        obj = {"type": "progress", "stage": stage, "step": int(step), "total": int(total),
               "losses": dict(losses or {}), "elapsed_s": round(float(elapsed_s), 3)}
        eta = self.eta(stage, int(step), int(total))
        if eta is not None:
            obj["eta_s"] = round(eta, 1)
        if stage == self._stage and self._pace_from is None and step >= 1:
            self._pace_from = (now, int(step))
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

    def finish(self) -> None:
        """The result folder is in place, so the run is done: a cancel from now on no longer stops it."""
        self._finished = True

    def check_cancel(self) -> None:
        """Raise Cancelled when a cancel was requested (outside a critical section, before finish())."""
        if self.cancelled.is_set() and self._critical == 0 and not self._finished:
            raise Cancelled("cancelled")

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """Defer cancellation raised by signals while the block runs (e.g. the final rename).

        A cancel requested before the block stops it from starting, even one whose signal-raised exception
        was swallowed on the way (a handler that runs inside a finaliser cannot propagate).
        """
        self.check_cancel()
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1
        self.check_cancel()

    def hold_for_test(self, point: str, timeout_s: float = 60.0) -> None:
        """Test hook, inert unless $BACKEND_TEST_HOLD_AT is `point`: say so on stderr, then wait for a cancel.

        A SIGTERM during the wait acts exactly as it would at that point of a real run.
        """
        if os.environ.get(HOLD_ENV) != point:
            return
        self.log(f"test hook: holding at {point}")
        deadline = time.monotonic() + timeout_s
        while not self.cancelled.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT set the cancel flag and, unless deferred or the run is done, interrupt it at once."""

        def handler(signum: int, frame: object) -> None:
            self.cancelled.set()
            if self._critical == 0 and not self._finished:
                raise Cancelled(signal.Signals(signum).name)

        signal.signal(signal.SIGINT, handler)
        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, handler)
