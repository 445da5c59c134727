"""The run session Reconstruct and Points to Mesh share: the one active job, its status and previews, Cancel,
and the blocking / modal ways of following the backend until it ends."""
import time
from typing import Optional

import bpy

from .camera_refine import RunCameras
from .import_result import PreviewObject
from .protocol_parser import Event, format_seconds
from .runner import BackendRunner


class ActiveJob:
    """The one backend run (Reconstruct or Points to Mesh) that may be going at a time."""

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
    """Make `job` the one running job, or none."""
    global _active
    _active = job


def status_line(job: ActiveJob) -> str:
    """One line for the status bar."""
    st = job.runner.state
    step = f" {st.step}/{st.total}" if st.total else ""
    eta = f", {format_seconds(st.eta_s)} left" if st.eta_s is not None else ""
    return f"Photomesh: {st.stage or 'starting'}{step}{eta} (Esc to cancel)"


def update_status(context, job: ActiveJob) -> None:
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


def clear_status(context) -> None:
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


def redraw(context) -> None:
    """Redraw the 3D viewports (panel and previews)."""
    screen = getattr(context, "screen", None)
    if screen is None:
        return
    for area in screen.areas:
        if area.type == "VIEW_3D":
            area.tag_redraw()


def on_event(context, job: ActiveJob, ev: Event) -> None:
    """React to one stream event: status, and the preview mesh."""
    if ev.type == "preview" and job.show_previews and isinstance(ev.data.get("mesh"), str):
        try:
            job.preview.update(context, job.runner.out_dir / ev.data["mesh"])
        except (OSError, ValueError) as exc:
            job.preview_error = str(exc)
    update_status(context, job)
    if bpy.app.background:
        print_progress(job)


def print_progress(job: ActiveJob, every_s: float = 10.0) -> None:
    """Console progress for background runs: each new stage, and the step every few seconds."""
    st = job.runner.state
    now = time.monotonic()
    if st.stage != job.last_stage or now - job.last_print >= every_s:
        job.last_stage, job.last_print = st.stage, now
        losses = f" [{st.losses_text()}]" if st.losses else ""
        print(status_line(job).replace(" (Esc to cancel)", "") + losses, flush=True)


def stop_active_job() -> None:
    """Cancel a running job and remove its preview (used on unregister)."""
    global _active
    job = _active
    _active = None
    if job is None:
        return
    job.runner.cancel()
    job.preview.remove()


def cancel_active_job() -> bool:
    """Ask the running job to stop; False when none runs."""
    job = _active
    if job is None:
        return False
    job.cancel_requested = True
    job.runner.cancel()
    return True


class RunOperator:
    """Mix-in for an operator that runs the backend: it gives `_prepare(context) -> Optional[ActiveJob]` (made the
    active job) and `_finish(context, job, outcome) -> set`, and a `timeout` property; this runs it blocking or modal."""

    _job = None
    _timer = None

    def execute(self, context) -> set:
        """Blocking path (scripts, blender -b): run to the end, then import."""
        job = self._prepare(context)
        if job is None:
            return {"CANCELLED"}
        try:
            outcome = job.runner.wait(on_event=lambda ev: on_event(context, job, ev),
                                      should_cancel=lambda: job.cancel_requested,
                                      timeout_s=self.timeout or None)
        except BaseException:
            stop_active_job()
            clear_status(context)
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
                on_event(context, job, ev)
            if context.workspace is not None:
                context.workspace.status_text_set(status_line(job))
            redraw(context)
        if job.runner.finished:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
            result = self._finish(context, job, job.runner.outcome())
            redraw(context)
            return result
        return {"PASS_THROUGH"}
