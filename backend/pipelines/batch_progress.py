"""Overall progress of a batch: each job's share done from its protocol lines, shown as one bar or JSON lines."""
from __future__ import annotations

import json
import sys
import time
from typing import IO

from backend.runtime.protocol import _clean

# Rough share of a run's time per stage, used until a job's progress lines carry eta_s.
# The topology stage runs inside optimize (at its first remesh): no weight of its own.
STAGE_WEIGHTS = {"load": 0.01, "sfm": 0.1, "masks": 0.03, "visual_hull": 0.05, "topology": 0.0, "optimize": 0.7,
                 "decimate": 0.01, "symmetry": 0.03, "uv": 0.03, "texture": 0.05, "write": 0.01}
FINAL = ("done", "failed", "cancelled")


def job_fraction(msg: dict | None) -> float:
    """Share of one run done, from its latest stage or progress line (eta_s when known, else stage weights)."""
    if not msg:
        return 0.0
    if msg.get("type") == "progress" and msg.get("eta_s") is not None and msg.get("elapsed_s"):
        elapsed, eta = float(msg["elapsed_s"]), float(msg["eta_s"])
        return min(max(elapsed / max(elapsed + eta, 1e-9), 0.0), 0.99)
    stage = msg.get("stage") if msg.get("type") == "progress" else msg.get("name")
    stages = list(STAGE_WEIGHTS)
    if stage not in STAGE_WEIGHTS:
        return 0.0
    before = sum(STAGE_WEIGHTS[s] for s in stages[:stages.index(stage)])
    inside = 0.0
    if msg.get("type") == "progress" and msg.get("total"):
        inside = min(max(int(msg.get("step", 0)) / int(msg["total"]), 0.0), 1.0)
    return min((before + STAGE_WEIGHTS[stage] * inside) / sum(STAGE_WEIGHTS.values()), 0.99)


class BatchProgress:
    """Tracks every job's state and latest line; prints a human bar on a terminal or JSON lines."""

    def __init__(self, names: list[str], json_mode: bool | None = None, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        if json_mode is None:
            isatty = getattr(self.stream, "isatty", None)
            json_mode = not (callable(isatty) and isatty())
        self.json_mode = json_mode
        self.status = {n: "pending" for n in names}
        self.latest: dict[str, dict] = {}
        self.t0 = time.monotonic()
        self._last_emit = 0.0
        self._bar_open = False

    def write(self, obj: dict) -> None:
        """One protocol line (JSON mode) or its human form."""
        obj = _clean(obj)
        try:
            if self.json_mode:
                self.stream.write(json.dumps(obj, separators=(",", ":")) + "\n")
            else:
                self._human(obj)
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass

    def _human(self, obj: dict) -> None:
        """Render a line for a person: a bar redrawn in place, job events on their own lines."""
        if obj.get("type") == "progress":
            filled = int(round(30 * obj["fraction"]))
            running = ", ".join(f"{n}: {self._doing(n)}" for n, s in self.status.items() if s == "running")
            left = f" ~{obj['eta_s']:.0f}s left" if obj.get("eta_s") is not None else ""
            self.stream.write(f"\rbatch [{'#' * filled}{'.' * (30 - filled)}] {obj['step']}/{obj['total']} jobs "
                              f"{obj['elapsed_s']:.0f}s{left}  {running}"[:200] + "\033[K")
            self._bar_open = True
            return
        if self._bar_open:
            self.stream.write("\n")
            self._bar_open = False
        if obj.get("type") == "job":
            extra = f": {obj['error']}" + (f"\n  hint: {obj['hint']}" if obj.get("hint") else "") \
                if obj.get("error") else ""
            more = " (already complete)" if obj.get("skipped") else ""
            attempt = f" (attempt {obj['attempt']})" if obj.get("attempt", 1) > 1 else ""
            self.stream.write(f"{obj['name']}: {obj['status']}{more}{attempt}{extra}\n")
        elif obj.get("type") == "done":
            self.stream.write(f"done: {obj['result']} ({obj.get('message', '')})\n")
        elif obj.get("type") == "stage":
            self.stream.write(f"== {obj['name']}\n")
        elif obj.get("type") == "error":
            hint = f"\n  hint: {obj['hint']}" if obj.get("hint") else ""
            self.stream.write(f"error: {obj['message']}{hint}\n")
        else:
            self.stream.write(f"{obj.get('message', json.dumps(obj))}\n")

    def _doing(self, name: str) -> str:
        """What a running job is doing now, e.g. 'optimize 120/300'."""
        msg = self.latest.get(name) or {}
        if msg.get("type") == "progress":
            return f"{msg.get('stage')} {msg.get('step')}/{msg.get('total')}"
        return str(msg.get("name", "starting"))

    def _where(self, name: str) -> dict:
        """A running job's stage and step, for the JSON progress line."""
        msg = self.latest.get(name) or {}
        if msg.get("type") == "progress":
            return {"stage": msg.get("stage"), "step": msg.get("step"), "total": msg.get("total")}
        return {"stage": msg.get("name")}

    def set_status(self, name: str, status: str, **extra: object) -> None:
        """Record a job's new state and announce it."""
        self.status[name] = status
        self.write({"type": "job", "name": name, "status": status, **{k: v for k, v in extra.items() if v is not None}})

    def line(self, name: str, msg: dict) -> None:
        """A job's stage or progress line (forwarded from its run)."""
        self.latest[name] = msg

    def fraction(self) -> float:
        """Share of the whole batch done: finished jobs count fully, running ones by their own share."""
        if not self.status:
            return 1.0
        total = sum(1.0 if s in FINAL else job_fraction(self.latest.get(n)) if s == "running" else 0.0
                    for n, s in self.status.items())
        return total / len(self.status)

    def tick(self, force: bool = False, every_s: float = 1.0) -> None:
        """Emit the overall progress line (at most every `every_s` seconds unless forced)."""
        now = time.monotonic()
        if not force and now - self._last_emit < every_s:
            return
        self._last_emit = now
        frac = self.fraction()
        elapsed = now - self.t0
        finished = sum(s in FINAL for s in self.status.values())
        obj: dict = {"type": "progress", "stage": "batch", "step": finished, "total": len(self.status),
                     "fraction": round(frac, 4), "elapsed_s": round(elapsed, 1),
                     "running": sorted(n for n, s in self.status.items() if s == "running"),
                     "jobs": {n: self._where(n) for n, s in self.status.items() if s == "running"}}
        if 0.02 < frac < 1.0 and elapsed > 5:
            obj["eta_s"] = round(elapsed * (1 - frac) / frac, 1)
        self.write(obj)
