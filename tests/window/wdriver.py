"""Helpers for scripts that drive a real, windowed Blender (3.4 or 4.2+) from inside it.

A driver script is started as `blender --enable-event-simulate [file.blend] --python SCRIPT -- CONFIG.json`.
It reads its configuration from CONFIG.json, runs its checks from `bpy.app.timers` callbacks (so
Blender's event loop, redraws and modal operators keep running in between), collects what it saw
in `Driver.result` and writes it to the JSON file named by the configuration before quitting.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

import bpy


def read_config() -> dict:
    """The JSON configuration whose path follows `--` on Blender's command line."""
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    if not argv:
        raise SystemExit("driver: pass the configuration file after '--'")
    return json.loads(Path(argv[0]).read_text())


def main_window():
    """The first (main) window of the window manager."""
    return bpy.context.window_manager.windows[0]


def view3d_area(window=None):
    """The largest 3D viewport area of a window."""
    win = window or main_window()
    areas = [a for a in win.screen.areas if a.type == "VIEW_3D"]
    if not areas:
        raise RuntimeError("no 3D viewport in the main window")
    return max(areas, key=lambda a: a.width * a.height)


def region_of(area, kind: str):
    """The region of a given type (WINDOW, UI, ...) in an area."""
    for region in area.regions:
        if region.type == kind:
            return region
    raise RuntimeError(f"area {area.type} has no {kind} region")


def show_sidebar_tab(window, region, tab: str) -> None:
    """Bring a sidebar tab to the front: the 4.x API, else a mouse wheel over the tab strip (3.x)."""
    if hasattr(region, "active_panel_category"):
        region.active_panel_category = tab
        region.tag_redraw()
        return
    x, y = region.x + region.width - 6, region.y + region.height // 3
    window.event_simulate(type="MOUSEMOVE", value="NOTHING", x=x, y=y)
    window.event_simulate(type="WHEELDOWNMOUSE", value="PRESS", x=x, y=y)


def context_override(window=None, area=None, region=None) -> dict:
    """Context members that make an operator run as if called from that window/area/region."""
    win = window or main_window()
    ctx = {"window": win, "screen": win.screen}
    if area is not None:
        ctx["area"] = area
        ctx["region"] = region if region is not None else region_of(area, "WINDOW")
    return ctx


def call_with_context(op: Callable, ctx: dict, *args, **kwargs):
    """Call an operator with a context override (temp_override on 3.2+, else the dict argument)."""
    if hasattr(bpy.context, "temp_override"):
        with bpy.context.temp_override(**ctx):
            return op(*args, **kwargs)
    return op(ctx, *args, **kwargs)


def press_esc(win, area) -> float:
    """Move the pointer to the middle of `area` and press Esc there (a modal operator's cancel); the time."""
    x, y = area.x + area.width // 2, area.y + area.height // 2
    t = time.monotonic()
    win.event_simulate(type="MOUSEMOVE", value="NOTHING", x=x, y=y)
    win.event_simulate(type="ESC", value="PRESS", x=x, y=y)
    win.event_simulate(type="ESC", value="RELEASE", x=x, y=y)
    return t


def screenshot(path: Path) -> bool:
    """Save the main window as Blender draws it (its own screenshot operator); True when written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    win = main_window()
    area = view3d_area(win)
    call_with_context(bpy.ops.screen.screenshot, context_override(win, area), filepath=str(path))
    return path.is_file() and path.stat().st_size > 0


def backend_processes(parent_pid: Optional[int] = None) -> dict[int, str]:
    """Live child processes of Blender running `-m backend` (pid -> state letter from /proc)."""
    parent = os.getpid() if parent_pid is None else parent_pid
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == parent and b"backend" in cmdline and b"-m" in cmdline:
            found[int(entry.name)] = state
    return found


def process_state(pid: int) -> Optional[str]:
    """The /proc state letter of a process (R, S, Z, ...), or None when it no longer exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[0]


class Driver:
    """Runs a sequence of timer-driven steps in a live Blender and writes the result as JSON."""

    def __init__(self, config: dict, interval_s: float = 0.1) -> None:
        self.config = config
        self.interval_s = interval_s
        self.result: dict = {"blender_version": list(bpy.app.version), "python": sys.version.split()[0],
                             "background": bool(bpy.app.background), "errors": [], "log": []}
        self.started = time.monotonic()
        self.deadline = self.started + float(config.get("timeout_s", 240))
        self.ticks: list[float] = []
        self.tick_ends: list[float] = []
        bpy.context.preferences.view.show_splash = False
        self._step: Optional[Callable[[], Optional[Callable]]] = None
        self._done = False

    def log(self, message: str) -> None:
        """Record a line in the result (and print it to Blender's console)."""
        line = f"{time.monotonic() - self.started:7.2f}s {message}"
        self.result["log"].append(line)
        print("[window-test]", line, flush=True)

    def start(self, first: Callable[[], Optional[Callable]], delay_s: float = 0.5) -> None:
        """Begin with step `first`; each step returns the next step, or None to stay on itself."""
        self._step = first
        bpy.app.timers.register(self._tick, first_interval=delay_s, persistent=True)

    def steady(self, then: Callable[[], Optional[Callable]], gaps: int = 3, max_gap_s: float = 0.35,
               limit_s: float = 60.0) -> Callable[[], Optional[Callable]]:
        """A step that waits until the timer fires at its interval (start-up redraws done), then goes to `then`."""
        begun = time.monotonic()

        def step() -> Optional[Callable]:
            recent = self.ticks[-(gaps + 1):]
            if len(recent) == gaps + 1 and max(b - a for a, b in zip(recent, recent[1:])) < max_gap_s:
                self.log(f"timer steady after {time.monotonic() - begun:.1f} s")
                return then
            if time.monotonic() - begun > limit_s:
                raise TimeoutError(f"the timer did not settle to {max_gap_s} s gaps within {limit_s} s")
            return None

        return step

    def _tick(self) -> Optional[float]:
        """Timer callback: count the tick, run the current step, enforce the deadline."""
        if self._done:
            return None
        self.ticks.append(time.monotonic())
        try:
            if time.monotonic() > self.deadline:
                raise TimeoutError(f"driver deadline of {self.config.get('timeout_s', 240)} s passed")
            nxt = self._step()
            if nxt is not None:
                self._step = nxt
        except Exception:
            self.result["errors"].append(traceback.format_exc())
            self.finish()
            return None
        finally:
            self.tick_ends.append(time.monotonic())
        return None if self._done else self.interval_s

    def finish(self) -> None:
        """Write the result file and quit Blender (from within a timer, so the event loop ends cleanly)."""
        if self._done:
            return
        self._done = True
        self.result["elapsed_s"] = time.monotonic() - self.started
        self.result["tick_count"] = len(self.ticks)
        self.result["tick_spans"] = [[a - self.started, b - self.started] for a, b in zip(self.ticks, self.tick_ends)]
        out = Path(self.config["result"])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.result, indent=1, default=str))
        bpy.app.timers.register(self._quit, first_interval=0.2)

    def _quit(self) -> None:
        """Quit Blender without saving."""
        call_with_context(bpy.ops.wm.quit_blender, context_override())
        return None


def datablock_counts() -> dict:
    """How many meshes, materials and images the file holds (a cancelled run must add none)."""
    return {"meshes": len(bpy.data.meshes), "materials": len(bpy.data.materials),
            "images": len(bpy.data.images), "objects": len(bpy.data.objects)}


def status_sample() -> dict:
    """The job status the panel draws from (window manager properties)."""
    st = bpy.context.window_manager.photomesh_job
    return {"running": bool(st.running), "progress": float(st.progress), "stage": st.stage,
            "step": int(st.step), "total": int(st.total), "eta": st.eta, "losses": st.losses}
