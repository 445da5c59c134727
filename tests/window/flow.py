"""Drive the Reconstruct button's path in a real Blender window and record what a user would see.

Configuration (JSON after `--`): `mode` ("run" to the end, "cancel" with Esc part-way, or "panel":
stop once the panel is shown),
`addon_zip`, `backend_python`, `work_dir`, `iterations`, `preview_every`, `cancel_after_step`,
`artifacts` (screenshots), `result` (this script's JSON output). The scene (cameras selected, each
with its photo) is the .blend opened on the command line.

Steps, each from a 0.1 s `bpy.app.timers` callback: install and enable the add-on from its zip;
open the sidebar on the Photomesh tab; invoke `photomesh.reconstruct` with INVOKE_DEFAULT from the
sidebar's context, as its button does; then, while the modal operator runs, sample the status the
panel shows (and what the panel actually drew, through a draw hook), the backend processes and the
timer's own ticks; press Esc through Blender's event system (mode "cancel"); finally record the
scene's objects and screenshots.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bpy  # noqa: E402

import wdriver  # noqa: E402

ADDON = "photomesh"
TAB = "Photomesh"
PANEL = "PHOTOMESH_PT_reconstruct"


def scene_objects() -> list[dict]:
    """Name, type and mesh size of every object in the scene."""
    out = []
    for obj in bpy.context.scene.objects:
        info = {"name": obj.name, "type": obj.type}
        if obj.type == "MESH":
            me = obj.data
            info.update(vertices=len(me.vertices), faces=len(me.polygons), uv_layers=len(me.uv_layers),
                        materials=[m.name for m in me.materials if m is not None],
                        images=sorted({n.image.name for m in me.materials if m is not None and m.node_tree
                                       for n in m.node_tree.nodes if n.type == "TEX_IMAGE" and n.image}))
        out.append(info)
    return sorted(out, key=lambda o: o["name"])


class Flow:
    """The timer-driven steps of one interactive run."""

    def __init__(self) -> None:
        self.drv = wdriver.Driver(wdriver.read_config())
        self.cfg = self.drv.config
        self.mode = self.cfg["mode"]
        self.art = Path(self.cfg["artifacts"])
        self.res = self.drv.result
        self.res.update(mode=self.mode, samples=[], draws=[], backend_pids={}, screenshots={})
        self.win = wdriver.main_window()
        self.area = wdriver.view3d_area(self.win)
        self.t_invoke = 0.0
        self.t_esc = 0.0
        self.t_end = 0.0
        self.tab_tries = 0
        self.wait_until = 0.0
        self.drag_events: list[tuple] = []
        self.drag_offsets = [8, 6, 10, 4, 12]
        self.ui_width = 0

    def ui_region(self):
        """The 3D viewport's sidebar region."""
        return wdriver.region_of(self.area, "UI")

    def on_panel_draw(self, panel, context) -> None:
        """Draw hook appended to the add-on's panel: what it showed, and when."""
        st = context.window_manager.photomesh_job
        self.res["draws"].append({"t": time.monotonic() - self.drv.started, "running": bool(st.running),
                                  "progress": float(st.progress), "stage": st.stage, "step": int(st.step)})

    def setup(self) -> Optional[Callable]:
        """Install and enable the add-on from its zip, point it at the backend, open the sidebar."""
        ctx = wdriver.context_override(self.win, self.area)
        res = wdriver.call_with_context(bpy.ops.preferences.addon_install, ctx,
                                        filepath=self.cfg["addon_zip"], overwrite=True)
        self.res["addon_install"] = sorted(res)
        res = wdriver.call_with_context(bpy.ops.preferences.addon_enable, ctx, module=ADDON)
        self.res["addon_enable"] = sorted(res)
        addon = bpy.context.preferences.addons.get(ADDON)
        if addon is None:
            raise RuntimeError(f"add-on '{ADDON}' is not enabled after addon_enable")
        addon.preferences.python_path = self.cfg["backend_python"]
        addon.preferences.work_dir = self.cfg["work_dir"]
        settings = bpy.context.scene.photomesh
        settings.quality = "DRAFT"
        settings.device = "CPU"
        settings.show_previews = True
        settings.job_name = "Reconstruction"
        self.res["objects_before"] = scene_objects()
        self.res["data_before"] = wdriver.datablock_counts()
        getattr(bpy.types, PANEL).append(self.on_panel_draw)
        self.area.spaces.active.show_region_ui = True
        self.area.tag_redraw()
        return self.drv.steady(self.widen_sidebar)

    def widen_sidebar(self) -> Optional[Callable]:
        """Drag the sidebar's edge (beside its top panel) to the left, one simulated event per tick, so labels fit."""
        region = self.ui_region()
        if self.drag_events:
            kind, value, x, y = self.drag_events.pop(0)
            self.win.event_simulate(type=kind, value=value, x=x, y=y)
            return None
        if self.ui_width and region.width > self.ui_width + 50:
            self.drv.log(f"sidebar widened from {self.ui_width} to {region.width} px")
            self.res["sidebar_width"] = region.width
            return self.open_tab
        if not self.drag_offsets:
            self.drv.log("sidebar could not be widened; keeping its default width")
            self.res["sidebar_width"] = region.width
            return self.open_tab
        self.ui_width = region.width
        x0, y = region.x + self.drag_offsets.pop(0), region.y + int(0.9 * region.height)
        self.drag_events = [("MOUSEMOVE", "NOTHING", x0 - 30, y), ("MOUSEMOVE", "NOTHING", x0, y),
                            ("LEFTMOUSE", "PRESS", x0, y), ("MOUSEMOVE", "NOTHING", x0 - 60, y),
                            ("MOUSEMOVE", "NOTHING", x0 - 120, y), ("MOUSEMOVE", "NOTHING", x0 - 180, y),
                            ("LEFTMOUSE", "RELEASE", x0 - 180, y), ("MOUSEMOVE", "NOTHING", x0 - 400, y)]
        return None

    def open_tab(self) -> Optional[Callable]:
        """Bring the Photomesh tab to the front: the 4.x API, else a mouse wheel over the tab strip."""
        if self.res["draws"]:
            self.drv.log(f"Photomesh tab open after {self.tab_tries} wheel step(s)")
            self.wait_until = time.monotonic() + 1.0
            return self.shoot_idle
        wdriver.show_sidebar_tab(self.win, self.ui_region(), TAB)
        self.tab_tries += 1
        if self.tab_tries > 12:
            raise RuntimeError("the Photomesh panel was never drawn: tab not found in the sidebar")
        return None

    def shoot(self, name: str) -> None:
        """Screenshot the window into the artefacts folder."""
        path = self.art / f"{name}.png"
        if wdriver.screenshot(path):
            self.res["screenshots"][name] = str(path)
            self.drv.log(f"screenshot {path.name}")

    def shoot_idle(self) -> Optional[Callable]:
        """Capture the panel before the run, then invoke Reconstruct."""
        if time.monotonic() < self.wait_until:
            return None
        if self.mode in ("run", "panel"):
            self.shoot("panel_ready")
        if self.mode == "panel":
            self.res["draw_count"] = len(self.res["draws"])
            self.drv.finish()
            return None
        return self.invoke

    def invoke(self) -> Optional[Callable]:
        """Invoke Reconstruct as its button does: INVOKE_DEFAULT, from the sidebar's context."""
        ctx = wdriver.context_override(self.win, self.area, self.ui_region())
        self.t_invoke = time.monotonic()
        ret = wdriver.call_with_context(
            bpy.ops.photomesh.reconstruct, ctx, "INVOKE_DEFAULT", iterations=int(self.cfg["iterations"]),
            preview_every=int(self.cfg["preview_every"]))
        self.res["invoke_return"] = sorted(ret)
        self.res["invoke_s"] = time.monotonic() - self.t_invoke
        self.res["invoke_returned_at"] = time.monotonic() - self.drv.started
        self.drv.log(f"invoke returned {sorted(ret)} after {self.res['invoke_s']:.2f} s")
        if "RUNNING_MODAL" not in ret:
            raise RuntimeError(f"Reconstruct did not go modal: {sorted(ret)}")
        return self.watch

    def sample(self) -> dict:
        """Record the status and the backend processes at this tick."""
        s = wdriver.status_sample()
        s["t"] = time.monotonic() - self.drv.started
        s["objects"] = len(bpy.context.scene.objects)
        self.res["samples"].append(s)
        for pid, state in wdriver.backend_processes().items():
            self.res["backend_pids"][str(pid)] = state
        return s

    def watch(self) -> Optional[Callable]:
        """Follow the running job; screenshot it mid-way, press Esc (cancel mode), notice its end."""
        s = self.sample()
        from photomesh.run_session import active_job
        if not s["running"] and active_job() is None:
            self.t_end = time.monotonic()
            self.drv.log(f"job ended: {s}")
            self.wait_until = time.monotonic() + 2.0
            return self.settle_after
        in_opt = s["stage"] == "optimize" and s["total"] > 0
        later = s["running"] and s["stage"] in ("decimate", "symmetry", "uv", "texture", "write")
        if self.mode == "run" and "panel_running" not in self.res["screenshots"] \
                and (in_opt and s["step"] >= 0.4 * s["total"] or later):
            self.shoot("panel_running")
        if self.mode == "cancel" and in_opt and s["step"] >= int(self.cfg["cancel_after_step"]):
            self.shoot("cancel_before_esc")
            self.res["pids_before_esc"] = {str(p): st for p, st in wdriver.backend_processes().items()}
            self.res["status_at_esc"] = s
            self.t_esc = wdriver.press_esc(self.win, self.area)
            self.res["esc_at"] = self.t_esc - self.drv.started
            self.drv.log(f"Esc pressed at {s}")
            return self.watch_cancel
        return None

    def watch_cancel(self) -> Optional[Callable]:
        """After Esc: wait for the job to stop."""
        s = self.sample()
        from photomesh.run_session import active_job
        if not s["running"] and active_job() is None:
            self.t_end = time.monotonic()
            self.res["esc_to_stop_s"] = self.t_end - self.t_esc
            self.drv.log(f"stopped {self.res['esc_to_stop_s']:.2f} s after Esc")
            self.wait_until = time.monotonic() + 2.0
            return self.settle_after
        return None

    def settle_after(self) -> Optional[Callable]:
        """Let the window redraw the final state, then record it."""
        if time.monotonic() < self.wait_until:
            return None
        self.res["objects_after"] = scene_objects()
        self.res["data_after"] = wdriver.datablock_counts()
        self.res["pid_states_after"] = {pid: wdriver.process_state(int(pid)) for pid in self.res["backend_pids"]}
        self.res["backend_processes_after"] = {str(p): s for p, s in wdriver.backend_processes().items()}
        self.res["run_ticks"] = [[a - self.drv.started, b - self.drv.started]
                                 for a, b in zip(self.drv.ticks, self.drv.tick_ends) if self.t_invoke <= a <= self.t_end]
        self.res["run_window"] = [self.t_invoke - self.drv.started, self.t_end - self.drv.started]
        out_root = Path(self.cfg["work_dir"])
        self.res["work_files"] = sorted(str(p.relative_to(out_root)) for p in out_root.rglob("*") if p.is_file())
        if self.mode == "run":
            self.area.spaces.active.shading.type = "SOLID"
            self.area.spaces.active.shading.color_type = "TEXTURE"
            self.area.tag_redraw()
            self.wait_until = time.monotonic() + 1.5
            return self.shoot_result
        self.shoot("cancel_after")
        self.drv.finish()
        return None

    def shoot_result(self) -> Optional[Callable]:
        """Screenshot the reconstructed mesh in the viewport and stop."""
        if time.monotonic() < self.wait_until:
            return None
        self.shoot("result")
        self.drv.finish()
        return None


def main() -> None:
    """Start the flow once Blender's window is up."""
    flow = Flow()
    flow.drv.start(flow.setup)


main()
