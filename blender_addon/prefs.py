"""Add-on preferences: the backend Python, 'Set up backend' and 'Check backend'."""
import sys
from typing import Optional

import bpy
from bpy.props import BoolProperty, StringProperty

from .backend_setup import has_nvidia_gpu, run_check, setup_plan
from .paths import ADDON_PACKAGE, backend_python, backend_root, requirements_file, venv_dir, venv_python
from .runner import BackendStartError, LineProcess, backend_environment

STATE = {"setup": "", "setup_running": False, "check": "", "check_ok": None}


class PHOTOMESH_AP_preferences(bpy.types.AddonPreferences):
    """Where the backend runs."""

    bl_idname = ADDON_PACKAGE

    python_path: StringProperty(
        name="Backend Python", subtype="FILE_PATH",
        description="Python interpreter with the backend's requirements (empty: the venv made by "
                    "'Set up backend', else Blender's own Python)")
    work_dir: StringProperty(name="Work Folder", subtype="DIR_PATH",
                             description="Where job and result folders are written (empty: the temporary folder)")
    install_nvdiffrast: BoolProperty(
        name="Install nvdiffrast", default=False,
        description="With an NVIDIA GPU, also install nvdiffrast (NVIDIA's non-commercial licence)")

    def draw(self, context) -> None:
        """Backend settings, set-up and check."""
        layout = self.layout
        layout.prop(self, "python_path")
        layout.label(text=f"In use: {backend_python()}")
        layout.prop(self, "work_dir")
        row = layout.row()
        row.operator("photomesh.setup_backend", icon="CONSOLE")
        row.operator("photomesh.check_backend", icon="CHECKMARK")
        layout.prop(self, "install_nvdiffrast")
        if STATE["setup"]:
            layout.label(text=STATE["setup"], icon="TIME" if STATE["setup_running"] else "INFO")
        if STATE["check"]:
            layout.label(text=STATE["check"], icon="CHECKMARK" if STATE["check_ok"] else "ERROR")


def _prefs() -> Optional[PHOTOMESH_AP_preferences]:
    """The preferences, when the add-on is enabled through the add-on system."""
    addon = bpy.context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None


class PHOTOMESH_OT_check_backend(bpy.types.Operator):
    """Run the backend's self-check and report Python, PyTorch, devices and rasterizers"""

    bl_idname = "photomesh.check_backend"
    bl_label = "Check Backend"

    def execute(self, context) -> set:
        """Run `python -m backend check` and report its summary."""
        root = backend_root()
        ok, text, _info = run_check(backend_python(), root, backend_environment(root))
        STATE["check"], STATE["check_ok"] = text, ok
        self.report({"INFO"} if ok else {"ERROR"}, text)
        return {"FINISHED"} if ok else {"CANCELLED"}


class PHOTOMESH_OT_setup_backend(bpy.types.Operator):
    """Create a Python environment in the add-on's user folder and install the backend's requirements"""

    bl_idname = "photomesh.setup_backend"
    bl_label = "Set Up Backend"

    _steps = []
    _index = 0
    _proc = None
    _timer = None

    def _plan(self) -> list:
        """The set-up commands for this machine."""
        prefs = _prefs()
        nvd = bool(prefs and prefs.install_nvdiffrast)
        return setup_plan(sys.executable, venv_dir(), requirements_file(), has_nvidia_gpu(), nvd)

    def _start_step(self) -> None:
        """Start the current step's process."""
        step = self._steps[self._index]
        STATE["setup"] = f"Step {self._index + 1}/{len(self._steps)}: {step.label}"
        self._proc = LineProcess(step.argv, env=backend_environment(backend_root()))
        self._proc.start()

    def _step_failed(self) -> str:
        """Message for a failed step."""
        tail = self._proc.stderr_tail().strip().splitlines() if self._proc else []
        return f"{self._steps[self._index].label} failed: {tail[-1] if tail else 'see the console'}"

    def _done(self, context, ok: bool, message: str) -> set:
        """Store the result: the venv's Python becomes the backend Python on success."""
        STATE["setup_running"] = False
        STATE["setup"] = message
        if ok:
            prefs = _prefs()
            if prefs is not None:
                prefs.python_path = str(venv_python())
        self.report({"INFO"} if ok else {"ERROR"}, message)
        return {"FINISHED"} if ok else {"CANCELLED"}

    def execute(self, context) -> set:
        """Blocking set-up."""
        if STATE["setup_running"]:
            self.report({"ERROR"}, "The backend set-up is already running.")
            return {"CANCELLED"}
        self._steps = self._plan()
        for index in range(len(self._steps)):
            self._index = index
            try:
                self._start_step()
            except BackendStartError as exc:
                return self._done(context, False, f"{exc.message} {exc.hint}")
            while not self._proc.finished:
                for line in self._proc.read_lines(0.2):
                    print(f"[photomesh setup] {line.rstrip()}")
            if self._proc.returncode != 0:
                return self._done(context, False, self._step_failed())
        return self._done(context, True, f"Backend ready: {venv_python()}")

    def invoke(self, context, event) -> set:
        """Run the steps from a modal timer, showing progress in the preferences."""
        if bpy.app.background or context.window is None:
            return self.execute(context)
        if STATE["setup_running"]:
            self.report({"ERROR"}, "The backend set-up is already running.")
            return {"CANCELLED"}
        self._steps = self._plan()
        self._index = 0
        try:
            self._start_step()
        except BackendStartError as exc:
            return self._done(context, False, f"{exc.message} {exc.hint}")
        STATE["setup_running"] = True
        self._timer = context.window_manager.event_timer_add(0.5, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event) -> set:
        """Advance through the steps as their processes end."""
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        lines = self._proc.read_lines(0.0)
        if lines:
            STATE["setup"] = (f"Step {self._index + 1}/{len(self._steps)}: {self._steps[self._index].label} - "
                              f"{lines[-1].strip()[:80]}")
        for area in context.screen.areas if context.screen else ():
            area.tag_redraw()
        if not self._proc.finished:
            return {"PASS_THROUGH"}
        if self._proc.returncode != 0 or self._index + 1 == len(self._steps):
            context.window_manager.event_timer_remove(self._timer)
            ok = self._proc.returncode == 0
            return self._done(context, ok, f"Backend ready: {venv_python()}" if ok else self._step_failed())
        self._index += 1
        try:
            self._start_step()
        except BackendStartError as exc:
            context.window_manager.event_timer_remove(self._timer)
            return self._done(context, False, f"{exc.message} {exc.hint}")
        return {"PASS_THROUGH"}


CLASSES = (PHOTOMESH_AP_preferences, PHOTOMESH_OT_check_backend, PHOTOMESH_OT_setup_backend)
