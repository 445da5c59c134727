"""`python -m backend convert SRC --to job DST`: any supported layout to a DESIGN.md job folder."""
from __future__ import annotations

from pathlib import Path

from backend.io.detect import load_any
from backend.io.job import write_job


def convert(src: Path, dst: Path) -> Path:
    """Read `src` in any supported layout and write it as a job folder at `dst`; returns dst."""
    return write_job(load_any(Path(src)), Path(dst))
