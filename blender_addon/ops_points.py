"""Points to Mesh: the selected point cloud (vertex-only mesh or Point Cloud object) meshed by the backend."""
from pathlib import Path
from typing import Optional

import bpy
import numpy as np
from bpy.props import BoolProperty, FloatProperty, IntProperty, StringProperty

from .import_result import import_result
from .job_spec import GatherError
from .paths import backend_python, backend_root, new_job_dirs
from .point_cloud import MIN_POINTS, is_point_cloud, object_cloud
from .points_export import write_cloud
from .run_session import ActiveJob, RunOperator, active_job, clear_status, set_active_job, update_status
from .runner import BackendRunner, BackendStartError, RunOutcome

class PHOTOMESH_OT_points_to_mesh(RunOperator, bpy.types.Operator):
    """Mesh the selected point cloud (screened Poisson, trimmed where no points support it)"""

    bl_idname = "photomesh.points_to_mesh"
    bl_label = "Points to Mesh"
    bl_options = {"REGISTER", "UNDO"}

    work_dir: StringProperty(name="Work Folder", options={"SKIP_SAVE"},
                             description="Folder for the point file and result folder (default: preferences or temp)")
    timeout: FloatProperty(name="Timeout", default=0.0, min=0.0, options={"SKIP_SAVE"},
                           description="Stop the backend after this many seconds (0: no limit)")
    idle_timeout: FloatProperty(name="Idle Timeout", default=1800.0, min=0.0, options={"SKIP_SAVE"},
                                description="Stop the backend when it reports nothing for this many seconds")
    depth: IntProperty(name="Depth", default=0, min=0, max=12,
                       description="Screened Poisson octree depth (0: from the point count; 9-10 for 1M points)")
    trim: FloatProperty(name="Trim", default=2.5, min=0.0, max=100.0,
                        description="Remove surface farther than this many point spacings from the points (0: keep "
                                    "the closed surface)")
    remove_outliers: BoolProperty(name="Remove Outliers", default=True,
                                  description="Drop isolated points before meshing")
    uv: BoolProperty(name="UV Map", default=False, description="Also compute a UV map")

    @classmethod
    def poll(cls, context) -> bool:
        """Needs an active point cloud."""
        return is_point_cloud(context.active_object)

    def _fail(self, message: str, hint: str = "") -> set:
        """Report an error with its hint and cancel."""
        self.report({"ERROR"}, f"{message} {hint}".strip())
        return {"CANCELLED"}

    def _argv(self, python: str, cloud: Path, out_dir: Path, symmetry: str) -> list:
        """The backend command line."""
        argv = [python, "-m", "backend", "points-to-mesh", str(cloud), "--out", str(out_dir), "--json",
                "--symmetry", "off" if symmetry == "OFF" else "detect", "--trim", repr(float(self.trim))]
        if self.depth:
            argv += ["--depth", str(self.depth)]
        if not self.remove_outliers:
            argv.append("--no-outliers")
        if self.uv:
            argv.append("--uv")
        return argv

    def _prepare(self, context) -> Optional[ActiveJob]:
        """Write the points and start the backend; reports and returns None on a problem."""
        running = active_job()
        if running is not None:
            self._fail(f"A job ('{running.name}') is already running.", "Wait for it or press Cancel first.")
            return None
        obj = context.active_object
        if not is_point_cloud(obj):
            self._fail("The active object is not a point cloud.",
                       "Select a Point Cloud object or a mesh with vertices and no faces.")
            return None
        points, normals = object_cloud(obj)
        if len(points) < MIN_POINTS:
            self._fail(f"'{obj.name}' has only {len(points)} points; at least {MIN_POINTS} are needed.",
                       "Use a denser point cloud.")
            return None
        if not np.all(np.isfinite(points)):
            self._fail(f"'{obj.name}' has points with NaN or infinite coordinates.", "Remove them and try again.")
            return None
        name = f"{obj.name}_mesh"
        try:
            job_dir, out_dir = new_job_dirs(name, self.work_dir)
            cloud = write_cloud(job_dir / "points.npz", points, normals)
        except OSError as exc:
            self._fail(f"Cannot write the point file: {exc}", "Choose another work folder in the preferences.")
            return None
        python = backend_python()
        runner = BackendRunner(python, job_dir, out_dir, backend_root(), idle_timeout_s=self.idle_timeout or None,
                               argv=self._argv(python, cloud, out_dir, context.scene.photomesh.symmetry))
        try:
            runner.start()
        except BackendStartError as exc:
            self._fail(exc.message, exc.hint)
            return None
        job = ActiveJob(name, runner, show_previews=False)
        set_active_job(job)
        update_status(context, job)
        return job

    def _finish(self, context, job: ActiveJob, outcome: RunOutcome) -> set:
        """Import the mesh (world coordinates: it lands where the points are) or report why there is none."""
        set_active_job(None)
        clear_status(context)
        if outcome.status == "cancelled":
            self.report({"WARNING"}, "Points to Mesh cancelled; the scene is as before.")
            return {"CANCELLED"}
        if not outcome.ok:
            print(f"[photomesh] backend log:\n{outcome.stderr_tail}")
            return self._fail(f"Points to Mesh failed: {outcome.message}", outcome.hint)
        try:
            obj = import_result(context, outcome.result_path, job.name)
        except (GatherError, ValueError, OSError, KeyError) as exc:
            return self._fail(f"Could not import the mesh: {getattr(exc, 'message', str(exc))}",
                              getattr(exc, "hint", ""))
        self.report({"INFO"}, f"Meshed '{obj.name}': {len(obj.data.vertices)} vertices, "
                              f"{len(obj.data.polygons)} faces.")
        return {"FINISHED"}


CLASSES = (PHOTOMESH_OT_points_to_mesh,)
