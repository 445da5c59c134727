"""Which background sparse points each photo really shows, so that they can seed its mask as background.

A floor point other photos saw may hide behind a thin part in this one (a handle or an ear in front of the
floor); seeding it as background there cuts the part away. Only the photo's own observations (the point's
track) prove a point visible in it. Tried and dropped: also counting a point whose colour matches the photo's
where it projects (tolerance 5-12 of 255): its wrong seeds on thin parts cost more than its extra seeds gave.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def visible_points(n_points: int, seen: Sequence[np.ndarray] | None, n_views: int) -> list[np.ndarray] | None:
    """Per view, a bool over the points: the view's features made the point (seen: per point the indices of
    the views of its track). None when the tracks are unknown (every point then seeds every view)."""
    if seen is None:
        return None
    own = np.zeros((n_views, n_points), dtype=bool)
    for k, views in enumerate(seen):
        idx = np.asarray(views, dtype=np.int64).reshape(-1)
        own[idx[(idx >= 0) & (idx < n_views)], k] = True
    return list(own)
