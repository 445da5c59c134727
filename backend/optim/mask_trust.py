"""How far each mask is trusted: holes the other views contradict are filled for the hull and weighted down.

`geometry/mask_consensus.contradicted_masks` finds, per view, the enclosed mask holes that only that view
carves. Here they become the run's decisions: the hull is carved from the repaired masks, and in the mask
loss the repaired pixels weigh the view's floor (the schedule's `mask_floor_user` for the user's masks,
`mask_floor_auto` for automatic ones, which are trusted less), so a wrong mask cannot pull a tunnel back in.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backend.geometry.mask_consensus import contradicted_masks

MIN_VIEWS = 12  # fewer views cannot outvote one wrong mask (a true hole may be seen by one view alone)
WARN_SHARE = 0.01  # a view whose contradicted pixels reach this share of its image is named in the warnings


def view_floors(views: list, floor_user: float, floor_auto: float) -> np.ndarray:
    """Per view, the mask-loss weight of its contradicted pixels: automatic masks (`mask_auto`) get floor_auto."""
    return np.array([floor_auto if getattr(v, "mask_auto", False) else floor_user for v in views], dtype=np.float64)


def pixel_weights(repair: np.ndarray | None, floor: float) -> np.ndarray | None:
    """(H, W) float32 mask-loss weights: the floor on the repaired pixels, 1 elsewhere; None when all would be 1."""
    if repair is None or floor >= 1.0 or not repair.any():
        return None
    return np.where(repair, np.float32(max(floor, 0.0)), np.float32(1.0)).astype(np.float32)


def skip_reason(n_views: int, mask_repair: bool, refine_cameras: bool, initial_mesh: bool) -> str | None:
    """Why the masks' consensus does not run, or None when it does."""
    if not mask_repair:
        return "mask_repair is off"
    if initial_mesh:
        return "the start mesh came from the initial_mesh file, not from the masks"
    if refine_cameras:
        return "camera refinement is on: masks may disagree because of the cameras (the hull keeps its tolerance)"
    if n_views < MIN_VIEWS:
        return f"{n_views} views: fewer than {MIN_VIEWS} cannot outvote one wrong mask"
    return None


@dataclass
class MaskTrust:
    """The consensus' outcome for one run: per view the repaired pixels and the mask-loss weights."""

    names: list[str]
    reason: str | None = None  # why it did not run (None: it ran)
    repairs: list[np.ndarray | None] = field(default_factory=list)
    weights: list[np.ndarray | None] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # pixels per view's image

    @property
    def ran(self) -> bool:
        """Whether the consensus ran."""
        return self.reason is None

    def pixels(self) -> dict[str, int]:
        """Repaired pixels per contradicted view."""
        return {n: int(r.sum()) for n, r in zip(self.names, self.repairs) if r is not None}

    def info(self) -> dict:
        """result.json "mask_consensus"."""
        pixels = self.pixels()
        return {"ran": self.ran, "reason": self.reason or "ran", "contradicted": list(pixels), "pixels": pixels}

    def warning(self) -> str | None:
        """A warning naming the views with at least WARN_SHARE of their pixels contradicted, or None."""
        named = [n for (n, r), size in zip(zip(self.names, self.repairs), self.sizes)
                 if r is not None and r.sum() >= WARN_SHARE * size]
        if not named:
            return None
        return (f"the masks of {len(named)} view(s) have holes that the other views contradict (at least "
                f"{100 * WARN_SHARE:g} % of their pixels), filled for the visual hull: {', '.join(named[:10])}")


def weigh_masks(views: list, lo: np.ndarray, hi: np.ndarray, mask_repair: bool, floor_user: float,
                floor_auto: float, refine_cameras: bool = False, initial_mesh: bool = False) -> MaskTrust:
    """The masks' consensus over the box [lo, hi] (or why it is skipped) and the mask-loss weights it implies."""
    names = [v.name for v in views]
    reason = skip_reason(len(views), mask_repair, refine_cameras, initial_mesh)
    if reason is not None:
        return MaskTrust(names, reason, [None] * len(views), [None] * len(views))
    repairs = contradicted_masks(views, lo, hi)
    floors = view_floors(views, floor_user, floor_auto)
    return MaskTrust(names, None, repairs, [pixel_weights(r, fl) for r, fl in zip(repairs, floors)],
                     [int(np.asarray(v.mask).size) for v in views])
