"""Helpers shared by the layout readers: numeric text files, masks from alpha, default settings."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.runtime.errors import JobError


def load_numbers(path: Path, count: int, view: str | None = None) -> np.ndarray:
    """Exactly `count` numbers from a whitespace/comma separated text file, as float64."""
    try:
        text = Path(path).read_text(encoding="utf-8").replace(",", " ")
        values = np.array([float(x) for x in text.split()], dtype=np.float64)
    except FileNotFoundError as exc:
        raise JobError(f"file not found: {path}", "every view needs its _k.txt, _r.txt and _t.txt", view=view) from exc
    except ValueError as exc:
        raise JobError(f"{path} holds something that is not a number", "write plain numbers", view=view) from exc
    if values.size != count:
        raise JobError(f"{path} has {values.size} numbers, expected {count}",
                       "K and R files hold 3x3 matrices, t files 3 numbers, bbox.txt 6 numbers (min then max)",
                       view=view)
    return values


def mask_from_alpha(alpha: np.ndarray | None) -> np.ndarray | None:
    """Alpha > 0.5 as the mask, or None when the image has no alpha channel (the mask is then made later)."""
    return None if alpha is None else alpha > 0.5


def view_names(paths: list[str]) -> list[str]:
    """File stems, or the extension-less relative paths when stems repeat."""
    stems = [Path(p).stem if Path(p).suffix.lower() in (".png", ".jpg", ".jpeg", ".exr") else Path(p).name for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [str(Path(p).with_suffix("")).replace("/", "_").replace("\\", "_").lstrip("._") for p in paths]
