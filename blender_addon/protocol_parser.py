"""Parser of the backend's JSON-lines progress stream (DESIGN.md "Progress protocol"). No bpy."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Optional

EVENT_TYPES = ("stage", "progress", "preview", "done", "error")


@dataclass
class Event:
    """One well-formed message of the stream."""

    type: str
    data: dict


@dataclass
class ProgressState:
    """Everything the panel shows about a running job, folded from the events so far."""

    stage: str = ""
    step: int = 0
    total: int = 0
    losses: dict = field(default_factory=dict)
    elapsed_s: float = 0.0
    run_eta_s: Optional[float] = None  # the latest line's time left in the whole run; None until the pace is known
    stages_seen: list = field(default_factory=list)
    preview_mesh: Optional[str] = None
    preview_step: int = -1
    result: Optional[str] = None
    error_message: Optional[str] = None
    error_hint: Optional[str] = None
    garbage_lines: int = 0
    last_garbage: str = ""

    @property
    def fraction(self) -> float:
        """Fraction of the current stage done, 0..1 (0 when the stage has no step count)."""
        if self.total <= 0:
            return 0.0
        return max(0.0, min(1.0, self.step / self.total))

    @property
    def eta_s(self) -> Optional[float]:
        """Seconds left in the whole run: the backend's figure, None while it is absent (pace not known yet).

        Never extrapolated here: the first steps hold one-off costs (JIT compile) and would say hours.
        """
        return self.run_eta_s

    def losses_text(self, limit: int = 4) -> str:
        """Compact 'name value' list of the latest losses."""
        parts = []
        for key, value in list(self.losses.items())[:limit]:
            if isinstance(value, (int, float)):
                parts.append(f"{key} {value:.4g}")
            else:
                parts.append(f"{key} {value}")
        return ", ".join(parts)


def format_seconds(seconds: Optional[float]) -> str:
    """Human time like '1m 05s' (or '?' when unknown)."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m {s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"


def parse_line(line: str) -> Optional[Event]:
    """The Event of one stream line, or None when the line is not a valid message."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    kind = obj.get("type")
    if kind not in EVENT_TYPES:
        return None
    return Event(kind, obj)


def _as_int(value: Any, default: int = 0) -> int:
    """Int of a JSON value, or default when it is not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _as_float(value: Any, default: float = 0.0) -> float:
    """Float of a JSON value, or default when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


class StreamParser:
    """Folds stream lines into a ProgressState; tolerant of garbage, never raises on input."""

    def __init__(self) -> None:
        self.state = ProgressState()
        self.events: list[Event] = []
        self.last_line_time = time.monotonic()

    def feed_line(self, line: str) -> Optional[Event]:
        """Parse one line, update the state, and return its Event (None for garbage)."""
        self.last_line_time = time.monotonic()
        event = parse_line(line)
        st = self.state
        if event is None:
            if line.strip():
                st.garbage_lines += 1
                st.last_garbage = line.strip()[:200]
            return None
        d = event.data
        if event.type == "stage":
            name = str(d.get("name", ""))
            st.stage = name
            st.step, st.total = 0, 0
            st.stages_seen.append(name)
        elif event.type == "progress":
            if d.get("stage"):
                st.stage = str(d["stage"])
            st.step = _as_int(d.get("step"), st.step)
            st.total = _as_int(d.get("total"), st.total)
            if isinstance(d.get("losses"), dict):
                st.losses = dict(d["losses"])
            st.elapsed_s = _as_float(d.get("elapsed_s"), st.elapsed_s)
            eta = d.get("eta_s")
            st.run_eta_s = max(0.0, _as_float(eta)) if isinstance(eta, (int, float)) else None
        elif event.type == "preview":
            if isinstance(d.get("mesh"), str):
                st.preview_mesh = d["mesh"]
                st.preview_step = _as_int(d.get("step"), st.preview_step)
        elif event.type == "done":
            st.result = str(d.get("result") or "result.json")
        elif event.type == "error":
            st.error_message = str(d.get("message") or "the backend reported an error")
            hint = d.get("hint")
            st.error_hint = str(hint) if hint else None
        self.events.append(event)
        return event

    def feed_text(self, text: str) -> list[Event]:
        """Parse several newline-separated lines; return their Events."""
        out = []
        for line in text.splitlines():
            ev = self.feed_line(line)
            if ev is not None:
                out.append(ev)
        return out
