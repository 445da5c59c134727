"""Where the add-on finds the backend and writes its files (never inside the add-on folder)."""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import bpy

ADDON_PACKAGE = __package__ or "photomesh"
ADDON_DIR = Path(__file__).resolve().parent


def backend_root() -> Path:
    """The folder to run `python -m backend` in: the add-on folder (zip) or the repository root."""
    for root in (ADDON_DIR, ADDON_DIR.parent):
        if (root / "backend" / "__init__.py").is_file():
            return root
    return ADDON_DIR


def requirements_file() -> Path:
    """The backend's requirements.txt."""
    return backend_root() / "backend" / "requirements.txt"


def user_dir() -> Path:
    """The add-on's user folder: the extension's user path (4.2+) or a scripts-folder fallback."""
    path: Optional[str] = None
    if ADDON_PACKAGE.startswith("bl_ext.") and hasattr(bpy.utils, "extension_path_user"):
        try:
            path = bpy.utils.extension_path_user(ADDON_PACKAGE, create=True)
        except (ValueError, OSError):
            path = None
    if not path:
        try:
            path = bpy.utils.user_resource("SCRIPTS", path="photomesh_data", create=True)
        except (TypeError, OSError, ValueError):
            path = None
    if not path:
        path = os.path.join(tempfile.gettempdir(), "photomesh_data")
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p


def venv_dir() -> Path:
    """The backend virtual environment made by 'Set up backend'."""
    return user_dir() / "backend_venv"


def venv_python(venv: Optional[Path] = None) -> Path:
    """The Python interpreter inside a venv."""
    v = venv or venv_dir()
    return v / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def preferences():
    """The add-on's preferences, or None when it was registered without the add-on system."""
    addon = bpy.context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None


def backend_python() -> str:
    """The backend Python: the preference, else the set-up venv, else the current interpreter."""
    prefs = preferences()
    if prefs is not None and prefs.python_path.strip():
        return bpy.path.abspath(prefs.python_path.strip())
    vp = venv_python()
    if vp.is_file():
        return str(vp)
    return sys.executable


def work_root(override: str = "") -> Path:
    """The folder that receives job/result folders: operator override, preference, or temp."""
    if override:
        return Path(bpy.path.abspath(override))
    prefs = preferences()
    if prefs is not None and prefs.work_dir.strip():
        return Path(bpy.path.abspath(prefs.work_dir.strip()))
    return Path(tempfile.gettempdir()) / "photomesh"


def new_job_dirs(job_name: str, override: str = "") -> tuple[Path, Path]:
    """Fresh (job, out) folders for a run; refuses to write inside the add-on folder."""
    root = work_root(override).resolve()
    if root == ADDON_DIR or ADDON_DIR in root.parents:
        root = Path(tempfile.gettempdir()) / "photomesh"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in job_name) or "job"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = root / f"{safe}_{stamp}"
    i = 1
    while base.exists():
        base = root / f"{safe}_{stamp}_{i}"
        i += 1
    job, out = base / "job", base / "out"
    (job / "images").mkdir(parents=True)
    return job, out
