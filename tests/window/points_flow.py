"""Drive Points to Mesh in a real Blender window: modal run to the end, or Esc while Poisson runs.

Configuration (JSON after `--`): `mode` ("run" or "cancel"), `addon_zip`, `backend_python`, `work_dir`,
`points` (how many sphere points the cloud object gets), `artifacts`, `result`. The script makes a
vertex-only mesh object "Cloud" (a sphere of radius 1.5 around (2, -1, 0.5) with a `normal` point
attribute), invokes `photomesh.points_to_mesh` with INVOKE_DEFAULT from the 3D viewport as its
button does, samples the status the panel draws from, presses Esc in mode "cancel" once the
surface stage shows, and records the scene's objects and data-blocks before and after.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

import wdriver  # noqa: E402

ADDON = "photomesh"
CENTRE = (2.0, -1.0, 0.5)


def scene_objects() -> list[dict]:
    """Name, type and (meshes) vertex and face counts of every object in the scene."""
    out = [{"name": o.name, "type": o.type, **({"vertices": len(o.data.vertices), "faces": len(o.data.polygons)}
                                               if o.type == "MESH" else {})} for o in bpy.context.scene.objects]
    return sorted(out, key=lambda o: o["name"])


class PointsFlow:
    """The timer-driven steps of one Points to Mesh run."""

    def __init__(self) -> None:
        self.drv = wdriver.Driver(wdriver.read_config())
        self.cfg = self.drv.config
        self.res = self.drv.result
        self.res.update(mode=self.cfg["mode"], samples=[], backend_pids={})
        self.win = wdriver.main_window()
        self.area = wdriver.view3d_area(self.win)
        self.t_esc = 0.0
        self.wait_until = 0.0

    def setup(self) -> Optional[Callable]:
        """Install and enable the add-on from its zip and add the point-cloud object."""
        ctx = wdriver.context_override(self.win, self.area)
        wdriver.call_with_context(bpy.ops.preferences.addon_install, ctx, filepath=self.cfg["addon_zip"],
                                  overwrite=True)
        self.res["addon_enable"] = sorted(wdriver.call_with_context(bpy.ops.preferences.addon_enable, ctx,
                                                                    module=ADDON))
        prefs = bpy.context.preferences.addons[ADDON].preferences
        prefs.python_path, prefs.work_dir = self.cfg["backend_python"], self.cfg["work_dir"]
        bpy.context.scene.photomesh.symmetry = "OFF"
        d = np.random.default_rng(0).normal(size=(int(self.cfg["points"]), 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        me = bpy.data.meshes.new("Cloud")
        me.vertices.add(len(d))
        me.vertices.foreach_set("co", (1.5 * d).astype(np.float32).ravel())
        attr = me.attributes.new("N", "FLOAT_VECTOR", "POINT")  # 3.4 refuses the name "normal"
        attr.data.foreach_set("vector", d.astype(np.float32).ravel())
        obj = bpy.data.objects.new("Cloud", me)
        obj.location = CENTRE
        bpy.context.scene.collection.objects.link(obj)
        for o in bpy.context.scene.objects:
            o.select_set(o == obj)
        bpy.context.view_layer.objects.active = obj
        self.res["objects_before"] = scene_objects()
        self.res["data_before"] = wdriver.datablock_counts()
        return self.drv.steady(self.invoke)

    def invoke(self) -> Optional[Callable]:
        """Invoke Points to Mesh as its button does."""
        ctx = wdriver.context_override(self.win, self.area, wdriver.region_of(self.area, "UI"))
        ret = wdriver.call_with_context(bpy.ops.photomesh.points_to_mesh, ctx, "INVOKE_DEFAULT")
        self.res["invoke_return"] = sorted(ret)
        self.drv.log(f"invoke returned {sorted(ret)}")
        if "RUNNING_MODAL" not in ret:
            raise RuntimeError(f"Points to Mesh did not go modal: {sorted(ret)}")
        return self.watch

    def watch(self) -> Optional[Callable]:
        """Sample the status; press Esc in the surface stage (mode cancel); notice the end."""
        from photomesh.run_session import active_job

        s = wdriver.status_sample()
        s["t"] = time.monotonic() - self.drv.started
        self.res["samples"].append(s)
        for pid, state in wdriver.backend_processes().items():
            self.res["backend_pids"][str(pid)] = state
        if not s["running"] and active_job() is None:
            if self.t_esc:
                self.res["esc_to_stop_s"] = time.monotonic() - self.t_esc
            self.wait_until = time.monotonic() + 1.0
            return self.settle
        if self.cfg["mode"] == "cancel" and not self.t_esc and s["stage"] == "surface":
            self.res["status_at_esc"] = s
            self.res["pids_before_esc"] = {str(p): st for p, st in wdriver.backend_processes().items()}
            self.t_esc = wdriver.press_esc(self.win, self.area)
            self.drv.log(f"Esc pressed at {s}")
        return None

    def settle(self) -> Optional[Callable]:
        """Record the final scene and stop."""
        if time.monotonic() < self.wait_until:
            return None
        self.res["objects_after"] = scene_objects()
        self.res["data_after"] = wdriver.datablock_counts()
        self.res["pid_states_after"] = {pid: wdriver.process_state(int(pid)) for pid in self.res["backend_pids"]}
        mesh = bpy.data.objects.get("Cloud_mesh")
        if mesh is not None:
            v = np.array([mesh.matrix_world @ x.co for x in mesh.data.vertices])
            self.res["radius_mean"] = float(np.linalg.norm(v - np.array(CENTRE), axis=1).mean())
        out_root = Path(self.cfg["work_dir"])
        self.res["work_files"] = sorted(str(p.relative_to(out_root)) for p in out_root.rglob("*") if p.is_file())
        self.drv.finish()
        return None


def main() -> None:
    """Start the flow once Blender's window is up."""
    flow = PointsFlow()
    flow.drv.start(flow.setup)


main()
