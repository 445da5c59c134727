"""The Reconstruct and Cancel operators: gather, run the backend (modal or blocking), import."""
import atexit
import shutil
import time
from pathlib import Path
from typing import Optional

import bpy
from bpy.props import FloatProperty, IntProperty, StringProperty

from .camera_refine import RunCameras
from .gather import gather_job, selected_cameras, view_camera_map
from .import_result import REFINED_PROPERTY, PreviewObject, import_result
from .job_spec import GatherError
from .ops_cameras import non_aligned
from .paths import backend_python, backend_root, new_job_dirs
from .protocol_parser import Event, format_seconds
from .runner import BackendRunner, BackendStartError, RunOutcome


class ActiveJob:
    """The one reconstruction that may run at a time."""

    def __init__(self, name: str, runner: BackendRunner, show_previews: bool,
                 cameras: Optional[RunCameras] = None) -> None:
        self.name = name
        self.cameras = cameras
        self.runner = runner
        self.preview = PreviewObject(f"{name}_preview")
        self.show_previews = show_previews
        self.cancel_requested = False
        self.preview_error = ""
        self.last_print = 0.0
        self.last_stage = ""


_active: Optional[ActiveJob] = None


def active_job() -> Optional[ActiveJob]:
    """The running job, if any."""
    return _active


def set_active_job(job: Optional[ActiveJob]) -> None:
    """Make `job` the one running job, or none (Points to Mesh shares the panel's progress and Cancel)."""
    global _active
    _active = job


def _status_line(job: ActiveJob) -> str:
    """One line for the status bar."""
    st = job.runner.state
    step = f" {st.step}/{st.total}" if st.total else ""
    eta = f", {format_seconds(st.eta_s)} left" if st.eta_s is not None else ""
    return f"Photomesh: {st.stage or 'starting'}{step}{eta} (Esc to cancel)"


def _update_status(context, job: ActiveJob) -> None:
    """Copy the runner's progress into the window manager's status properties."""
    wm = context.window_manager
    status = getattr(wm, "photomesh_job", None)
    if status is None:
        return
    st = job.runner.state
    status.running = True
    status.stage = st.stage
    status.step = st.step
    status.total = st.total
    status.progress = 100.0 * st.fraction
    status.losses = st.losses_text()
    status.eta = format_seconds(st.eta_s) if st.eta_s is not None else ""


def _clear_status(context) -> None:
    """Reset the status properties and the status bar."""
    status = getattr(context.window_manager, "photomesh_job", None)
    if status is not None:
        status.running = False
        status.progress = 0.0
        status.stage = status.losses = status.eta = ""
        status.step = status.total = 0
    workspace = getattr(context, "workspace", None)
    if workspace is not None and not bpy.app.background:
        workspace.status_text_set(None)


def _redraw(context) -> None:
    """Redraw the 3D viewports (panel and previews)."""
    screen = getattr(context, "screen", None)
    if screen is None:
        return
    for area in screen.areas:
        if area.type == "VIEW_3D":
            area.tag_redraw()


def _on_event(context, job: ActiveJob, ev: Event) -> None:
    """React to one stream event: status, and the preview mesh."""
    if ev.type == "preview" and job.show_previews and isinstance(ev.data.get("mesh"), str):
        try:
            job.preview.update(context, job.runner.out_dir / ev.data["mesh"])
        except (OSError, ValueError) as exc:
            job.preview_error = str(exc)
    _update_status(context, job)
    if bpy.app.background:
        _print_progress(job)


def _print_progress(job: ActiveJob, every_s: float = 10.0) -> None:
    """Console progress for background runs: each new stage, and the step every few seconds."""
    st = job.runner.state
    now = time.monotonic()
    if st.stage != job.last_stage or now - job.last_print >= every_s:
        job.last_stage, job.last_print = st.stage, now
        losses = f" [{st.losses_text()}]" if st.losses else ""
        print(_status_line(job).replace(" (Esc to cancel)", "") + losses, flush=True)


def stop_active_job() -> None:
    """Cancel a running job and remove its preview (used on unregister)."""
    global _active
    job = _active
    _active = None
    if job is None:
        return
    job.runner.cancel()
    job.preview.remove()


class PHOTOMESH_OT_reconstruct(bpy.types.Operator):
    """Reconstruct a mesh from the selected cameras and their images"""

    bl_idname = "photomesh.reconstruct"
    bl_label = "Reconstruct"
    bl_options = {"REGISTER", "UNDO"}

    work_dir: StringProperty(name="Work Folder", options={"SKIP_SAVE"},
                             description="Folder for the job and result folders (default: preferences or temp)")
    timeout: FloatProperty(name="Timeout", default=0.0, min=0.0, options={"SKIP_SAVE"},
                           description="Stop the backend after this many seconds (0: no limit)")
    idle_timeout: FloatProperty(name="Idle Timeout", default=1800.0, min=0.0, options={"SKIP_SAVE"},
                                description="Stop the backend when it reports nothing for this many seconds")
    iterations: IntProperty(name="Iterations", default=0, min=0, options={"SKIP_SAVE"},
                            description="Optimisation steps (0: as the quality preset says)")
    preview_every: IntProperty(name="Preview Every", default=50, min=0, options={"SKIP_SAVE"},
                               description="Steps between preview meshes (0: none)")

    _job = None
    _timer = None

    def _fail(self, message: str, hint: str = "") -> set:
        """Report an error with its hint and cancel."""
        self.report({"ERROR"}, f"{message} {hint}".strip())
        return {"CANCELLED"}

    def _prepare(self, context) -> Optional[ActiveJob]:
        """Gather the job and start the backend; reports and returns None on a problem."""
        global _active
        if _active is not None:
            self._fail(f"A reconstruction ('{_active.name}') is already running.",
                       "Wait for it or press Cancel first.")
            return None
        settings = context.scene.photomesh
        name = settings.job_name.strip() or "Photomesh"
        try:
            job_dir, out_dir = new_job_dirs(name, self.work_dir)
        except OSError as exc:
            self._fail(f"Cannot create the job folder: {exc}", "Choose another work folder in the preferences.")
            return None
        status = getattr(context.window_manager, "photomesh_job", None)
        view_cameras = view_camera_map(selected_cameras(context))
        try:
            spec = gather_job(context, settings, job_dir,
                              progress=(lambda msg: setattr(status, "message", msg)) if status is not None else None,
                              iterations=self.iterations)
        except GatherError as exc:
            shutil.rmtree(job_dir.parent, ignore_errors=True)
            self._fail(exc.message, exc.hint)
            return None
        except (RuntimeError, OSError) as exc:
            shutil.rmtree(job_dir.parent, ignore_errors=True)
            self._fail(f"Could not prepare the job: {exc}")
            return None
        extra = ["--preview-every", str(self.preview_every)] if settings.show_previews and self.preview_every else []
        runner = BackendRunner(backend_python(), job_dir, out_dir, backend_root(),
                               idle_timeout_s=self.idle_timeout or None, extra_args=extra)
        try:
            runner.start()
        except BackendStartError as exc:
            self._fail(exc.message, exc.hint)
            return None
        job = ActiveJob(name, runner, settings.show_previews, RunCameras(tuple(spec["views"]), view_cameras))
        _active = job
        _update_status(context, job)
        return job

    def _finish(self, context, job: ActiveJob, outcome: RunOutcome) -> set:
        """Remove the preview, then import the result or report why there is none."""
        global _active
        job.preview.remove()
        _active = None
        _clear_status(context)
        if outcome.status == "cancelled":
            self.report({"WARNING"}, "Reconstruction cancelled; the scene is as before.")
            return {"CANCELLED"}
        if not outcome.ok:
            print(f"[photomesh] backend log:\n{outcome.stderr_tail}")
            return self._fail(f"Reconstruction failed: {outcome.message}", outcome.hint)
        try:
            obj = import_result(context, outcome.result_path, job.name, job.cameras)
        except (GatherError, ValueError, OSError, KeyError) as exc:
            message = getattr(exc, "message", str(exc))
            return self._fail(f"Could not import the result: {message}", getattr(exc, "hint", ""))
        warning = non_aligned(context.scene) if obj.get(REFINED_PROPERTY) else None
        if warning:
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, f"Reconstructed '{obj.name}': {len(obj.data.vertices)} vertices, "
                              f"{len(obj.data.polygons)} faces.")
        return {"FINISHED"}

    def execute(self, context) -> set:
        """Blocking path (scripts, blender -b): run to the end, then import."""
        job = self._prepare(context)
        if job is None:
            return {"CANCELLED"}
        try:
            outcome = job.runner.wait(on_event=lambda ev: _on_event(context, job, ev),
                                      should_cancel=lambda: job.cancel_requested,
                                      timeout_s=self.timeout or None)
        except BaseException:
            stop_active_job()
            _clear_status(context)
            raise
        return self._finish(context, job, outcome)

    def invoke(self, context, event) -> set:
        """Interactive path: start the backend and follow it from a modal timer."""
        if bpy.app.background or context.window is None:
            return self.execute(context)
        job = self._prepare(context)
        if job is None:
            return {"CANCELLED"}
        self._job = job
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event) -> set:
        """Poll the backend on each timer tick; Esc cancels."""
        job = self._job
        if event.type == "ESC" and event.value == "PRESS":
            job.cancel_requested = True
        if job.cancel_requested and not job.runner.finished:
            job.runner.cancel()
        if event.type == "TIMER" or job.runner.finished:
            for ev in job.runner.poll(0.0):
                _on_event(context, job, ev)
            if context.workspace is not None:
                context.workspace.status_text_set(_status_line(job))
            _redraw(context)
        if job.runner.finished:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
            result = self._finish(context, job, job.runner.outcome())
            _redraw(context)
            return result
        return {"PASS_THROUGH"}


class PHOTOMESH_OT_cancel(bpy.types.Operator):
    """Stop the running reconstruction and remove its preview"""

    bl_idname = "photomesh.cancel"
    bl_label = "Cancel Reconstruction"

    def execute(self, context) -> set:
        """Ask the running job to stop."""
        job = _active
        if job is None:
            self.report({"WARNING"}, "No reconstruction is running.")
            return {"CANCELLED"}
        job.cancel_requested = True
        job.runner.cancel()
        return {"FINISHED"}


CLASSES = (PHOTOMESH_OT_reconstruct, PHOTOMESH_OT_cancel)


def register_extra() -> None:
    """Make sure no backend outlives Blender."""
    atexit.register(stop_active_job)


def unregister_extra() -> None:
    """Stop a running job so no process outlives the add-on."""
    atexit.unregister(stop_active_job)
    stop_active_job()
