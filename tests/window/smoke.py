"""Window smoke check: Blender has a real window, timers fire at their interval, screenshots work."""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import wdriver  # noqa: E402


def main() -> None:
    """Watch a 0.1 s timer for two seconds, then capture the window."""
    drv = wdriver.Driver(wdriver.read_config())
    win = wdriver.main_window()
    drv.result["window_size"] = [win.width, win.height]
    try:
        import gpu
        drv.result["gl_renderer"] = gpu.platform.renderer_get()
    except (ImportError, AttributeError):
        drv.result["gl_renderer"] = None
    try:
        import numpy
        drv.result["numpy"] = numpy.__version__
    except ImportError:
        drv.result["numpy"] = None
    t0: list[float] = []

    def watch():
        """Let the timer tick for two seconds."""
        if not t0:
            t0.append(time.monotonic())
        if time.monotonic() - t0[0] < 2.0:
            return None
        drv.result["ticks_in_2s"] = sum(1 for t in drv.ticks if t > t0[0])
        return capture

    def capture():
        """Screenshot the window and stop."""
        shot = Path(drv.config["artifacts"]) / "smoke_window.png"
        drv.result["screenshot"] = str(shot) if wdriver.screenshot(shot) else None
        drv.finish()

    drv.start(drv.steady(watch))


main()
