"""Drive Refine Cameras in a real Blender window: Reconstruct with the checkbox on, the Refined Cameras
sub-panel, Apply Refined Cameras, then Undo and Redo as a user's Ctrl+Z / Ctrl+Shift+Z do.

Configuration (JSON after `--`): `addon_zip`, `backend_python` (the real backend's Python), `work_dir`,
`iterations`, `turn_deg`, `artifacts`, `result`. The scene (the window test's .blend: cameras with their
photos, selected) gets one camera parented to a turned, scaled empty, and another camera turned by
`turn_deg` away from the pose its photo was rendered from, for the refinement to find.
Operators run with the window's context and undo=True, so the UNDO flag pushes undo steps as a click does.
The result records, per stored camera, K, R, t as a job would gather them, before Apply, after it,
after Undo and after Redo; what the sub-panel drew; and a screenshot of it.
"""
from __future__ import annotations

import importlib
import math
import sys
import time
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bpy  # noqa: E402
from mathutils import Matrix  # noqa: E402

import wdriver  # noqa: E402

ADDON = "photomesh"
SUBPANEL = "PHOTOMESH_PT_refined_cameras"
TAB = "Photomesh"


def _module(name: str):
    """A module of the installed add-on."""
    return importlib.import_module(f"{ADDON}.{name}")


def camera_state() -> dict:
    """Per stored camera: K (fitted to the job's image size), R, t as gathered, and the lens."""
    gather, camera_math, job_spec = _module("gather"), _module("camera_math"), _module("job_spec")
    scene = bpy.context.scene
    bpy.context.view_layer.update()
    out = {}
    for item in scene.photomesh_cameras.items:
        cam = scene.objects.get(item.camera)
        p = gather.camera_params(cam, scene)
        K = job_spec.fit_intrinsics(camera_math.intrinsics(p), camera_math.image_size(p),
                                    (item.width, item.height), cam.name)
        R, t = gather.camera_pose(cam)
        out[item.view] = {"camera": cam.name, "K": K.tolist(), "R": R.tolist(), "t": t.tolist(),
                          "lens": cam.data.lens}
    return out


class RefineFlow:
    """The timer-driven steps of the Refine Cameras run."""

    def __init__(self) -> None:
        self.drv = wdriver.Driver(wdriver.read_config())
        self.cfg = self.drv.config
        self.res = self.drv.result
        self.res.update(panel_lines=[], screenshots={})
        self.win = wdriver.main_window()
        self.area = wdriver.view3d_area(self.win)
        self.tab_tries = 0
        self.wait_until = 0.0

    def ctx(self) -> dict:
        """The 3D viewport's sidebar context, as a button click has."""
        return wdriver.context_override(self.win, self.area, wdriver.region_of(self.area, "UI"))

    def on_subpanel_draw(self, panel, context) -> None:
        """Draw hook on the Refined Cameras sub-panel: how many cameras it listed."""
        self.res["panel_lines"].append(len(context.scene.photomesh_cameras.items))

    def setup(self) -> Optional[Callable]:
        """Install and enable the add-on, parent one camera to an empty, turn Refine Cameras on."""
        ctx = wdriver.context_override(self.win, self.area)
        wdriver.call_with_context(bpy.ops.preferences.addon_install, ctx, filepath=self.cfg["addon_zip"],
                                  overwrite=True)
        self.res["addon_enable"] = sorted(wdriver.call_with_context(bpy.ops.preferences.addon_enable, ctx,
                                                                    module=ADDON))
        prefs = bpy.context.preferences.addons[ADDON].preferences
        prefs.python_path, prefs.work_dir = self.cfg["backend_python"], self.cfg["work_dir"]
        settings = bpy.context.scene.photomesh
        settings.refine_cameras, settings.job_name, settings.symmetry = True, "Refined", "OFF"
        cams = sorted((o for o in bpy.context.selected_objects if o.type == "CAMERA"), key=lambda o: o.name)
        rig = bpy.data.objects.new("Rig", None)
        bpy.context.scene.collection.objects.link(rig)
        rig.location, rig.rotation_euler, rig.scale = (0.2, -0.1, 0.3), (0.1, 0.2, 0.6), (1.3, 1.3, 1.3)
        bpy.context.view_layer.update()
        world = cams[0].matrix_world.copy()
        cams[0].parent = rig
        cams[0].matrix_world = world
        self.res["parented"] = cams[0].name
        turned = cams[len(cams) // 2]
        turned.matrix_world = turned.matrix_world @ Matrix.Rotation(math.radians(self.cfg["turn_deg"]), 4, "Y")
        self.res["turned"] = turned.name
        getattr(bpy.types, SUBPANEL).append(self.on_subpanel_draw)
        return self.drv.steady(self.reconstruct)

    def reconstruct(self) -> Optional[Callable]:
        """Reconstruct (blocking path) with the real backend; the refined cameras get stored."""
        ret = wdriver.call_with_context(bpy.ops.photomesh.reconstruct, self.ctx(), "EXEC_DEFAULT", True,
                                        iterations=int(self.cfg["iterations"]), preview_every=0)
        self.res["reconstruct_return"] = sorted(ret)
        self.res["stored"] = [{"view": i.view, "camera": i.camera, "aligned": i.aligned, "rotation_deg": i.rotation_deg,
                               "translation": i.translation} for i in bpy.context.scene.photomesh_cameras.items]
        self.res["focal_scale"] = bpy.context.scene.photomesh_cameras.focal_scale
        self.res["before"] = camera_state()
        self.drv.log(f"reconstruct returned {sorted(ret)}, {len(self.res['stored'])} refined cameras stored")
        self.area.spaces.active.show_region_ui = True
        self.area.tag_redraw()
        return self.open_tab

    def open_tab(self) -> Optional[Callable]:
        """Bring the Photomesh tab to the front (4.x API, else a mouse wheel over the tab strip)."""
        if self.res["panel_lines"]:
            self.wait_until = time.monotonic() + 1.0
            return self.shoot_panel
        wdriver.show_sidebar_tab(self.win, wdriver.region_of(self.area, "UI"), TAB)
        self.tab_tries += 1
        if self.tab_tries > 12:
            raise RuntimeError("the Refined Cameras sub-panel was never drawn")
        return None

    def shoot_panel(self) -> Optional[Callable]:
        """Screenshot the sub-panel listing the corrections, then apply."""
        if time.monotonic() < self.wait_until:
            return None
        path = Path(self.cfg["artifacts"]) / "refined_cameras_panel.png"
        if wdriver.screenshot(path):
            self.res["screenshots"]["panel"] = str(path)
        return self.apply

    def apply(self) -> Optional[Callable]:
        """Apply Refined Cameras as its button does; then undo."""
        ret = wdriver.call_with_context(bpy.ops.photomesh.apply_refined_cameras, self.ctx(), "EXEC_DEFAULT",
                                        True)
        self.res["apply_return"] = sorted(ret)
        self.res["applied"] = camera_state()
        self.res["parent_after_apply"] = bpy.data.objects[self.res["parented"]].parent is not None
        return self.undo

    def undo(self) -> Optional[Callable]:
        """Ctrl+Z."""
        self.res["undo_return"] = sorted(wdriver.call_with_context(bpy.ops.ed.undo, self.ctx()))
        self.res["undone"] = camera_state()
        return self.redo

    def redo(self) -> Optional[Callable]:
        """Ctrl+Shift+Z, then finish."""
        self.res["redo_return"] = sorted(wdriver.call_with_context(bpy.ops.ed.redo, self.ctx()))
        self.res["redone"] = camera_state()
        self.drv.finish()
        return None


def main() -> None:
    """Start the flow once Blender's window is up."""
    flow = RefineFlow()
    flow.drv.start(flow.setup)


main()
