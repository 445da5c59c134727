"""Import Photos: run the backend's structure from motion and masks (`photos --prepare-only`), then import.

One import may run at a time; it has its own session (runner, Cancel), apart from Reconstruct's, so both
can be followed in the panel. The blocking execute() path serves scripts, `blender -b` and tests; the
modal path is a thin shell around the same runner.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional

import bpy
from bpy.props import BoolProperty, FloatProperty, PointerProperty, StringProperty

from .import_photos import import_prepared, set_masks_visible
from .job_spec import GatherError
from .paths import backend_python, backend_root, preferences
from .photo_job import check_photo_folder, output_dir, photos_argv, photos_root, read_prepared
from .protocol_parser import format_seconds
from .runner import BackendRunner, BackendStartError, RunOutcome

STAGE_LABELS = {"load": "Reading photos", "sfm": "Placing cameras", "masks": "Making masks"}


class PhotoImport:
    """The one running import: its folders and the backend runner."""

    def __init__(self, folder: Path, base: Path, runner: BackendRunner) -> None:
        self.folder = folder
        self.base = base
        self.runner = runner
        self.cancel_requested = False
        self.last_print = 0.0
        self.last_stage = ""

    def status_text(self) -> str:
        """Stage, step and time left, for the panel and the status bar."""
        st = self.runner.state
        text = STAGE_LABELS.get(st.stage, st.stage or "Starting")
        if st.total:
            text += f" {st.step}/{st.total}"
        if st.eta_s is not None:
            text += f", {format_seconds(st.eta_s)} left"
        return text


_active: Optional[PhotoImport] = None


def active_import() -> Optional[PhotoImport]:
    """The running import, if any."""
    return _active


def cancel_active_import() -> bool:
    """Ask the running import to stop (thread-safe: no bpy); False when none runs."""
    run = _active
    if run is None:
        return False
    run.cancel_requested = True
    run.runner.cancel()
    return True


def stop_active_import() -> None:
    """Stop a running import and forget it (add-on unregister, Blender exit)."""
    global _active
    run, _active = _active, None
    if run is not None:
        run.runner.cancel()


def _show_masks_update(self, context) -> None:
    """Show or hide the imported cameras' masks in the camera views."""
    coll = self.collection
    cams = list(coll.all_objects) if coll is not None else list(context.scene.objects)
    set_masks_visible(cams, self.show_masks)


class PHOTOMESH_PG_photos(bpy.types.PropertyGroup):
    """The scene's photo folder and what the last Import Photos made (saved in the .blend)."""

    folder: StringProperty(name="Photos", subtype="DIR_PATH",
                           description="Folder of photographs of one object, all around it")
    out_dir: StringProperty(name="Prepared Folder",
                            description="The backend's output of the last import (OUT: job/ with images, "
                                        "masks, job.json, points.ply, sfm.json)")
    collection: PointerProperty(name="Collection", type=bpy.types.Collection)
    summary: StringProperty(name="Summary")
    problems: StringProperty(name="Problems", description="Photos left out and warnings, one per line")
    message: StringProperty(name="Message", description="The last import's error")
    show_masks: BoolProperty(name="Show Masks", default=False, update=_show_masks_update,
                             description="Overlay each imported camera's object mask on its photo "
                                         "(look through a camera to see it)")


def _redraw(context) -> None:
    """Redraw the 3D viewports (the panel's progress bar)."""
    screen = getattr(context, "screen", None)
    for area in (screen.areas if screen is not None else ()):
        if area.type == "VIEW_3D":
            area.tag_redraw()


def _hint_for(outcome: RunOutcome) -> str:
    """The outcome's hint, or a clearer one when the backend has no `photos` command."""
    if "invalid choice: 'photos'" in (outcome.stderr_tail or ""):
        return "This backend has no 'photos' command yet: update the add-on (its bundled backend)."
    return outcome.hint


class PHOTOMESH_OT_import_photos(bpy.types.Operator):
    """Find the cameras of a folder of photos (structure from motion) and the object's masks, and add the cameras
    with their photos, the sparse points and the object's box to the scene, ready for Reconstruct"""

    bl_idname = "photomesh.import_photos"
    bl_label = "Import Photos"
    bl_options = {"UNDO"}  # no redo panel: a redo would run structure from motion again, blocking the UI

    directory: StringProperty(name="Photos", subtype="DIR_PATH", options={"SKIP_SAVE"},
                              description="Folder of photographs (default: the panel's Photos folder)")
    filter_folder: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    browse: BoolProperty(name="Browse", default=False, options={"HIDDEN", "SKIP_SAVE"},
                         description="Pick the folder in a file browser first")
    work_dir: StringProperty(name="Work Folder", options={"SKIP_SAVE"},
                             description="Where the prepared folder goes (default: preferences, next to the "
                                         ".blend, or temp)")
    timeout: FloatProperty(name="Timeout", default=0.0, min=0.0, options={"SKIP_SAVE"},
                           description="Stop the backend after this many seconds (0: no limit)")
    idle_timeout: FloatProperty(name="Idle Timeout", default=1800.0, min=0.0, options={"SKIP_SAVE"},
                                description="Stop the backend when it reports nothing for this many seconds")
    go_modal: BoolProperty(default=False, options={"HIDDEN", "SKIP_SAVE"})

    _run: Optional[PhotoImport] = None
    _timer = None

    def _fail(self, context, message: str, hint: str = "") -> set:
        """Report an error with its hint (also kept for the panel) and cancel."""
        text = f"{message} {hint}".strip()
        photos = getattr(context.scene, "photomesh_photos", None)
        if photos is not None:
            photos.message = text
        self.report({"ERROR"}, text)
        return {"CANCELLED"}

    def _folder(self, context) -> str:
        """The photo folder: the operator's, else the scene's."""
        photos = context.scene.photomesh_photos
        return bpy.path.abspath(self.directory or photos.folder).strip()

    def _base_dir(self, context, folder: Path) -> Path:
        """The fresh folder of this run (see photo_job.photos_root for where)."""
        prefs = preferences()
        chosen = self.work_dir or (prefs.work_dir.strip() if prefs is not None else "")
        root = photos_root(bpy.path.abspath(chosen) if chosen else "", bpy.data.filepath, Path(tempfile.gettempdir()))
        return output_dir(folder, root)

    def _prepare(self, context) -> Optional[PhotoImport]:
        """Check the folder and start the backend; reports and returns None on a problem."""
        global _active
        if _active is not None:
            self._fail(context, f"An import of '{_active.folder.name}' is already running.",
                       "Wait for it or press Cancel first.")
            return None
        folder_text = self._folder(context)
        if not folder_text:
            self._fail(context, "No photo folder chosen.", "Choose the folder of photos in the Photos panel.")
            return None
        folder = Path(folder_text)
        try:
            check_photo_folder(folder)
        except GatherError as exc:
            self._fail(context, exc.message, exc.hint)
            return None
        context.scene.photomesh_photos.folder = str(folder)
        context.scene.photomesh_photos.message = ""
        base = self._base_dir(context, folder)
        try:
            base.mkdir(parents=True)
        except OSError as exc:
            self._fail(context, f"Cannot create {base}: {exc}",
                       "Save the .blend somewhere writable or set the Work Folder in the preferences.")
            return None
        python = backend_python()
        out = base / "out"
        runner = BackendRunner(python, base / "job", out, backend_root(), idle_timeout_s=self.idle_timeout or None,
                               argv=photos_argv(python, folder, out))
        try:
            runner.start()
        except BackendStartError as exc:
            shutil.rmtree(base, ignore_errors=True)
            self._fail(context, exc.message, exc.hint)
            return None
        _active = PhotoImport(folder, base, runner)
        return _active

    def _finish(self, context, run: PhotoImport, outcome: RunOutcome) -> set:
        """Import the prepared folder, or report why there is none (a cancelled run leaves no folder)."""
        global _active
        _active = None
        workspace = getattr(context, "workspace", None)
        if workspace is not None and not bpy.app.background:
            workspace.status_text_set(None)
        if outcome.status == "cancelled":
            shutil.rmtree(run.base, ignore_errors=True)
            self.report({"WARNING"}, "Import Photos cancelled; the scene is as before.")
            return {"CANCELLED"}
        if not outcome.ok:
            print(f"[photomesh] backend log ({run.runner.log_path}):\n{outcome.stderr_tail}")
            return self._fail(context, f"Import Photos failed: {outcome.message}", _hint_for(outcome))
        try:
            prepared = read_prepared(run.runner.out_dir)
            imported = import_prepared(context, prepared, run.folder.name)
        except GatherError as exc:
            return self._fail(context, f"Could not import the photos: {exc.message}", exc.hint)
        except (ValueError, OSError, KeyError, RuntimeError) as exc:
            return self._fail(context, f"Could not import the photos: {exc}",
                              f"The prepared folder is {run.runner.out_dir}.")
        photos = context.scene.photomesh_photos
        photos.out_dir = str(run.runner.out_dir)
        photos.collection = imported.collection
        photos.summary = imported.summary
        photos.problems = "\n".join(imported.problems)
        photos.show_masks = False
        text = (f"Imported {len(imported.cameras)} cameras into '{imported.collection.name}' ({imported.summary}); "
                "they are selected and Reconstruct is set to use their photos, masks and box.")
        if imported.problems:
            self.report({"WARNING"}, f"{len(imported.problems)} photo(s) or warning(s): "
                                     + "; ".join(imported.problems[:3]))
        self.report({"INFO"}, text)
        return {"FINISHED"}

    def _print_progress(self, run: PhotoImport, every_s: float = 10.0) -> None:
        """Console progress for background runs: each new stage, and the step every few seconds."""
        st = run.runner.state
        now = time.monotonic()
        if st.stage != run.last_stage or now - run.last_print >= every_s:
            run.last_stage, run.last_print = st.stage, now
            print(f"Photomesh Import Photos: {run.status_text()}", flush=True)

    def _wait(self, context, run: PhotoImport) -> set:
        """Blocking path: follow the backend to its end, then import."""
        try:
            outcome = run.runner.wait(on_event=lambda ev: self._print_progress(run) if bpy.app.background else None,
                                      should_cancel=lambda: run.cancel_requested, timeout_s=self.timeout or None)
        except BaseException:
            stop_active_import()
            raise
        return self._finish(context, run, outcome)

    def _start_modal(self, context) -> set:
        """Start the backend and follow it from a timer; the panel shows progress and Cancel."""
        run = self._prepare(context)
        if run is None:
            return {"CANCELLED"}
        self._run = run
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.modal_handler_add(self)
        _redraw(context)
        return {"RUNNING_MODAL"}

    def execute(self, context) -> set:
        """Blocking run (scripts, blender -b), or the modal run after the folder was picked in the browser."""
        if self.go_modal and not bpy.app.background and context.window is not None:
            return self._start_modal(context)
        run = self._prepare(context)
        if run is None:
            return {"CANCELLED"}
        return self._wait(context, run)

    def invoke(self, context, event) -> set:
        """From the button: pick the folder when none is set (or Browse asks), then run modally."""
        if bpy.app.background or context.window is None:
            return self.execute(context)
        if self.browse or not (self.directory or context.scene.photomesh_photos.folder):
            self.directory = bpy.path.abspath(context.scene.photomesh_photos.folder) or self.directory
            self.go_modal = True
            context.window_manager.fileselect_add(self)
            return {"RUNNING_MODAL"}
        return self._start_modal(context)

    def modal(self, context, event) -> set:
        """Poll the backend on each timer tick; Esc cancels."""
        run = self._run
        if event.type == "ESC" and event.value == "PRESS":
            run.cancel_requested = True
        if run.cancel_requested and not run.runner.finished:
            run.runner.cancel()
        if event.type == "TIMER" or run.runner.finished:
            run.runner.poll(0.0)
            if context.workspace is not None:
                context.workspace.status_text_set(f"Photomesh: {run.status_text()} (Esc to cancel)")
            _redraw(context)
        if run.runner.finished:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
            result = self._finish(context, run, run.runner.outcome())
            _redraw(context)
            return result
        return {"PASS_THROUGH"}


class PHOTOMESH_OT_cancel_import(bpy.types.Operator):
    """Stop the running Import Photos; the scene stays as it was"""

    bl_idname = "photomesh.cancel_import"
    bl_label = "Cancel Import"

    def execute(self, context) -> set:
        """Ask the running import to stop."""
        if not cancel_active_import():
            self.report({"WARNING"}, "No import is running.")
            return {"CANCELLED"}
        return {"FINISHED"}


CLASSES = (PHOTOMESH_PG_photos, PHOTOMESH_OT_import_photos, PHOTOMESH_OT_cancel_import)


def register_extra() -> None:
    """Attach the photo settings to scenes; make sure no backend outlives Blender."""
    bpy.types.Scene.photomesh_photos = PointerProperty(type=PHOTOMESH_PG_photos)
    atexit.register(stop_active_import)


def unregister_extra() -> None:
    """Stop a running import and remove the scene property."""
    atexit.unregister(stop_active_import)
    stop_active_import()
    del bpy.types.Scene.photomesh_photos
