"""A driver that makes Blender segfault on its first run and finishes on the next (tests the harness's repeat).

Configuration (JSON after `--`): `marker` (a file that exists after the first run), `always` (crash every run).
"""
from __future__ import annotations

import ctypes
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import wdriver  # noqa: E402


def main() -> None:
    """Crash Blender from a timer step unless the marker says it crashed already."""
    drv = wdriver.Driver(wdriver.read_config())
    marker = Path(drv.config["marker"])

    def step():
        if drv.config.get("always") or not marker.exists():
            marker.write_text("crashed once")
            ctypes.string_at(0)
        drv.log("second run finishes")
        drv.finish()
        return None

    drv.start(step)


main()
