"""Whether a rasterizer really renders here (used by `check`): get it, then the one-triangle self-test."""
from __future__ import annotations

import torch

from .self_test import covers_centre


def probe(name: str, device: str | torch.device) -> str | None:
    """None when rasterizer `name` renders on `device`, else the reason it does not."""
    from . import get_rasterizer
    try:
        r = get_rasterizer(name, device)
        if not covers_centre(r):
            return f"{name} on {device}: the test render is wrong"
    except Exception as exc:  # noqa: BLE001 - the reason is the result
        return f"{type(exc).__name__}: {exc}"
    return None
