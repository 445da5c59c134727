"""Drive Import Photos in a real Blender window: the modal run to the end, or Esc while cameras are being placed.

Configuration (JSON after `--`): `mode` ("run" or "cancel"), `addon_zip`, `standin_python` (the stand-in for the
backend Python, tests/photos_prepared.py), `prepared` (the OUT it copies), `photos` (the photo folder),
`work_dir`, `artifacts`, `result`. The script installs the add-on, sets the Photos folder, invokes
`photomesh.import_photos` with INVOKE_DEFAULT from the sidebar as its button does, samples the import's
status the panel draws from, presses Esc in mode "cancel" during the `sfm` stage, and records the scene
before and after; in mode "run" it also turns Show Masks on and looks through the first camera.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bpy  # noqa: E402

import wdriver  # noqa: E402

ADDON = "photomesh"


def scene_state() -> dict:
    """Objects (name, type), collections, selection and Reconstruct's input settings."""
    s = bpy.context.scene.photomesh
    return {"objects": sorted([o.name, o.type] for o in bpy.context.scene.objects),
            "collections": sorted(c.name for c in bpy.data.collections),
            "selected": sorted(o.name for o in bpy.context.selected_objects),
            "settings": {"image_source": s.image_source, "mask_source": s.mask_source, "mask_folder": s.mask_folder,
                         "bbox_source": s.bbox_source,
                         "bbox_object": s.bbox_object.name if s.bbox_object else None},
            "render": [bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_y]}


class PhotosFlow:
    """The timer-driven steps of one Import Photos run."""

    def __init__(self) -> None:
        self.drv = wdriver.Driver(wdriver.read_config())
        self.cfg = self.drv.config
        self.res = self.drv.result
        self.res.update(mode=self.cfg["mode"], samples=[], backend_pids={})
        self.win = wdriver.main_window()
        self.area = wdriver.view3d_area(self.win)
        self.t_esc = 0.0
        self.wait_until = 0.0
        self.shot_running = False

    def setup(self) -> Optional[Callable]:
        """Install and enable the add-on from its zip; point it at the stand-in backend and the photo folder."""
        ctx = wdriver.context_override(self.win, self.area)
        wdriver.call_with_context(bpy.ops.preferences.addon_install, ctx, filepath=self.cfg["addon_zip"],
                                  overwrite=True)
        self.res["addon_enable"] = sorted(wdriver.call_with_context(bpy.ops.preferences.addon_enable, ctx,
                                                                    module=ADDON))
        prefs = bpy.context.preferences.addons[ADDON].preferences
        prefs.python_path, prefs.work_dir = self.cfg["standin_python"], self.cfg["work_dir"]
        os.environ["STANDIN_SOURCE"], os.environ["STANDIN_MODE"] = self.cfg["prepared"], "slow"
        bpy.context.scene.photomesh_photos.folder = self.cfg["photos"]
        cube = bpy.data.objects.get("Cube")
        if cube is not None:
            bpy.data.objects.remove(cube)
        self.res["before"] = scene_state()
        self.res["data_before"] = wdriver.datablock_counts()
        self.res["draws"], self.res["draws_running"] = 0, 0
        bpy.types.PHOTOMESH_PT_photos.append(self.on_panel_draw)
        self.area.spaces.active.show_region_ui = True
        self.area.tag_redraw()
        return self.drv.steady(self.open_tab)

    def on_panel_draw(self, panel, context) -> None:
        """Count the Photos panel's draws, and those showing a running import."""
        from photomesh.ops_photos import active_import

        self.res["draws"] += 1
        self.res["draws_running"] += int(active_import() is not None)

    def open_tab(self) -> Optional[Callable]:
        """Bring the Photomesh tab to the front (the 4.x API, else mouse wheel steps over the tab strip)."""
        if self.res["draws"]:
            return self.invoke
        self.tabs_tried = getattr(self, "tabs_tried", 0) + 1
        if self.tabs_tried > 12:
            raise RuntimeError("the Photos panel was never drawn: tab not found in the sidebar")
        wdriver.show_sidebar_tab(self.win, wdriver.region_of(self.area, "UI"), "Photomesh")
        return None

    def invoke(self) -> Optional[Callable]:
        """Invoke Import Photos as its button does."""
        ctx = wdriver.context_override(self.win, self.area, wdriver.region_of(self.area, "UI"))
        ret = wdriver.call_with_context(bpy.ops.photomesh.import_photos, ctx, "INVOKE_DEFAULT")
        self.res["invoke_return"] = sorted(ret)
        self.drv.log(f"invoke returned {sorted(ret)}")
        if "RUNNING_MODAL" not in ret:
            raise RuntimeError(f"Import Photos did not go modal: {sorted(ret)}")
        return self.watch

    def watch(self) -> Optional[Callable]:
        """Sample the import's status; screenshot the panel mid-run; press Esc in mode cancel; notice the end."""
        from photomesh.ops_photos import active_import

        run = active_import()
        st = run.runner.state if run is not None else None
        s = {"t": time.monotonic() - self.drv.started, "running": run is not None,
             "stage": st.stage if st else "", "step": st.step if st else 0, "total": st.total if st else 0,
             "text": run.status_text() if run is not None else ""}
        self.res["samples"].append(s)
        for pid, state in wdriver.backend_processes().items():
            self.res["backend_pids"][str(pid)] = state
        if run is None:
            if self.t_esc:
                self.res["esc_to_stop_s"] = time.monotonic() - self.t_esc
            self.wait_until = time.monotonic() + 1.0
            return self.settle
        if s["stage"] == "sfm" and s["step"] >= 40 and not self.shot_running:
            self.shot_running = True
            self.res["shot_running"] = str(Path(self.cfg["artifacts"]) / f"photos_running_{self.cfg['mode']}.png")
            wdriver.screenshot(Path(self.res["shot_running"]))
        if self.cfg["mode"] == "cancel" and not self.t_esc and s["stage"] == "sfm" and s["step"] >= 50:
            self.res["status_at_esc"] = s
            self.t_esc = wdriver.press_esc(self.win, self.area)
            self.drv.log(f"Esc pressed at {s}")
        return None

    def settle(self) -> Optional[Callable]:
        """Record the scene; in mode run, show the masks and look through the first camera."""
        if time.monotonic() < self.wait_until:
            return None
        self.res["after"] = scene_state()
        self.res["data_after"] = wdriver.datablock_counts()
        self.res["pid_states_after"] = {pid: wdriver.process_state(int(pid)) for pid in self.res["backend_pids"]}
        photos = bpy.context.scene.photomesh_photos
        self.res["out_dir"], self.res["summary"], self.res["message"] = photos.out_dir, photos.summary, photos.message
        root = Path(self.cfg["work_dir"])
        self.res["work_files"] = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        if self.cfg["mode"] == "run" and photos.collection is not None:
            photos.show_masks = True
            cams = [o for o in photos.collection.objects if o.type == "CAMERA"]
            self.res["mask_shown"] = [bool(c.data.background_images[1].show_background_image) for c in cams]
            bpy.context.scene.camera = cams[0]
            self.area.spaces.active.region_3d.view_perspective = "CAMERA"
            self.wait_until = time.monotonic() + 1.5
            return self.shoot_masks
        self.drv.finish()
        return None

    def shoot_masks(self) -> Optional[Callable]:
        """Screenshot the camera view with its mask over the photo, then stop."""
        if time.monotonic() < self.wait_until:
            return None
        self.res["shot_masks"] = str(Path(self.cfg["artifacts"]) / "photos_masks.png")
        wdriver.screenshot(Path(self.res["shot_masks"]))
        self.drv.finish()
        return None


def main() -> None:
    """Start the flow once Blender's window is up."""
    flow = PhotosFlow()
    flow.drv.start(flow.setup)


main()
