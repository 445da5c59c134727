"""The Reconstruct and Cancel operators: gather, run the backend (modal or blocking, see run_session), import."""
import atexit
import shutil
from typing import Optional

import bpy
from bpy.props import FloatProperty, IntProperty, StringProperty

from .camera_refine import RunCameras
from .camera_store import non_aligned
from .gather import gather_job, selected_cameras, view_camera_map
from .import_result import REFINED_PROPERTY, import_result
from .job_spec import GatherError
from .paths import backend_python, backend_root, new_job_dirs
from .run_session import (ActiveJob, RunOperator, active_job, cancel_active_job, clear_status, set_active_job,
                          stop_active_job, update_status)
from .runner import BackendRunner, BackendStartError, RunOutcome


class PHOTOMESH_OT_reconstruct(RunOperator, bpy.types.Operator):
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
                            description="Optimisation steps (0: stop when the mesh stops changing, as the quality "
                                        "preset's level allows)")
    preview_every: IntProperty(name="Preview Every", default=50, min=0, options={"SKIP_SAVE"},
                               description="Steps between preview meshes (0: none)")

    def _fail(self, message: str, hint: str = "") -> set:
        """Report an error with its hint and cancel."""
        self.report({"ERROR"}, f"{message} {hint}".strip())
        return {"CANCELLED"}

    def _prepare(self, context) -> Optional[ActiveJob]:
        """Gather the job and start the backend; reports and returns None on a problem."""
        running = active_job()
        if running is not None:
            self._fail(f"A reconstruction ('{running.name}') is already running.",
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
        set_active_job(job)
        update_status(context, job)
        return job

    def _finish(self, context, job: ActiveJob, outcome: RunOutcome) -> set:
        """Remove the preview, then import the result or report why there is none."""
        job.preview.remove()
        set_active_job(None)
        clear_status(context)
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


class PHOTOMESH_OT_cancel(bpy.types.Operator):
    """Stop the running reconstruction and remove its preview"""

    bl_idname = "photomesh.cancel"
    bl_label = "Cancel Reconstruction"

    def execute(self, context) -> set:
        """Ask the running job to stop."""
        if not cancel_active_job():
            self.report({"WARNING"}, "No reconstruction is running.")
            return {"CANCELLED"}
        return {"FINISHED"}


CLASSES = (PHOTOMESH_OT_reconstruct, PHOTOMESH_OT_cancel)


def register_extra() -> None:
    """Make sure no backend outlives Blender."""
    atexit.register(stop_active_job)


def unregister_extra() -> None:
    """Stop a running job so no process outlives the add-on."""
    atexit.unregister(stop_active_job)
    stop_active_job()
