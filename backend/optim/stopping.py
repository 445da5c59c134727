"""The run's plan: at which step each remesh happens and when the run ends, fixed up front (a given iteration
count) or decided online as the phases settle (a quality level)."""
from __future__ import annotations

from dataclasses import dataclass, field

from backend.io.quality import QualityLevel


@dataclass
class PhasePlan:
    """Remesh steps and the end of the run. Fixed: both known from the start (stop reason "iterations").
    Converging: each phase ends when its monitor says so, the end is the last remesh plus the level's tail."""

    remesh_steps: list[int]
    end: int | None  # steps of the whole run, None until the last remesh is decided
    cap: int  # the most steps the run can take
    remeshes: int  # how many remeshes the run makes
    level: QualityLevel | None = None
    phases: list[dict] = field(default_factory=list)  # the converging plan's record of each ended phase

    @classmethod
    def fixed(cls, remesh_steps: list[int], iterations: int) -> "PhasePlan":
        """The plan of a fixed schedule."""
        return cls(sorted(remesh_steps), iterations, iterations, len(remesh_steps))

    @classmethod
    def converging(cls, level: QualityLevel, remeshes: int = 3) -> "PhasePlan":
        """A plan whose remeshes wait for the phases to settle, bounded by `level`."""
        return cls([], None, level.max_steps, remeshes, level)

    @property
    def online(self) -> bool:
        """Whether the phases' ends are decided while running."""
        return self.level is not None

    def running(self, step: int) -> bool:
        """Whether step `step` (0-based) is run."""
        return step < (self.cap if self.end is None else self.end)

    def total(self) -> int:
        """The step count progress lines show: the cap until the end is known, then the end."""
        return self.cap if self.end is None else self.end

    def phases_left(self) -> int:
        """Phases before the last remesh still to run, the current one included."""
        return self.remeshes - len(self.remesh_steps)

    def end_phase(self, step: int, record: dict) -> None:
        """The current phase ended after `step` steps: remesh at `step`; after the last remesh the run ends
        the level's tail later (never past the cap)."""
        self.remesh_steps.append(step)
        self.phases.append({"phase": len(self.phases), "end_step": step, **record})
        if self.phases_left() == 0:
            self.end = min(step + self.level.tail_steps, self.cap)

    def stop_reason(self) -> str:
        """"iterations" (fixed), "converged" (every phase settled) or "cap" (one ran to its maximum)."""
        if not self.online:
            return "iterations"
        return "converged" if all(p["reason"] == "converged" for p in self.phases) else "cap"
