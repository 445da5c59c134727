"""Grid nodes the masks rule out: outside the masks of at least a fraction of the views (a vote, not one view)."""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from backend.geometry.visual_hull import outside_counts, silhouettes
from backend.topology.sdf_grid import GridSpec

CARVE_FRACTION = 0.1  # a node is carved when at least this share of the views see it outside their mask
CARVE_MARGIN = 0.05  # carved nodes are set at least this many node spacings outside (just the sign: a larger
# value pulls the surface between a carved node and an inside one inwards)


def carved_nodes(views: list, spec: GridSpec, fraction: float = CARVE_FRACTION, dilate_px: int = 1,
                 poll: Callable[[], None] | None = None) -> np.ndarray:
    """(res, res, res) bool: nodes outside the (dilated) masks of at least max(1, ceil(fraction * views)) views
    (`poll` is called between views, so a cancel is seen)."""
    need = max(1, math.ceil(fraction * len(views)))
    points = spec.points()
    counts = np.zeros(len(points), dtype=np.int32)
    for sil in silhouettes(views, dilate_px):
        if poll is not None:
            poll()
        counts += outside_counts([sil], points)
    return (counts >= need).reshape(spec.res, spec.res, spec.res)


def apply_carving(values: np.ndarray, carved: np.ndarray, spacing: float) -> np.ndarray:
    """The field with every carved node pushed outside (positive by at least CARVE_MARGIN node spacings)."""
    return np.where(carved, np.maximum(values, CARVE_MARGIN * spacing), values)
