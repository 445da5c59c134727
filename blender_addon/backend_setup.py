"""Pure logic of 'Set up backend' and 'Check backend': the install plan and the check report. No bpy."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

TORCH_CUDA_INDEX = "https://download.pytorch.org/whl/cu128"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass
class SetupStep:
    """One command of the set-up, with a label for the progress display."""

    label: str
    argv: list


def has_nvidia_gpu() -> bool:
    """True when nvidia-smi exists and lists a GPU."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def venv_python_of(venv: Path) -> Path:
    """The interpreter inside a venv folder."""
    return Path(venv) / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def torch_install_args(cuda: bool, platform: str = sys.platform) -> list:
    """pip arguments installing the right torch build: CUDA with an NVIDIA GPU, else CPU (MPS on macOS)."""
    if cuda:
        return ["torch", "--index-url", TORCH_CUDA_INDEX]
    if platform == "darwin":
        return ["torch"]
    return ["torch", "--index-url", TORCH_CPU_INDEX]


def setup_plan(base_python: str, venv: Path, requirements: Path, cuda: bool,
               nvdiffrast: bool = False, platform: str = sys.platform) -> list[SetupStep]:
    """The commands that make the backend venv and install its requirements."""
    vpy = str(venv_python_of(venv))
    pip = [vpy, "-m", "pip", "install", "--disable-pip-version-check"]
    steps = []
    if not venv_python_of(venv).is_file():
        steps.append(SetupStep("Creating the virtual environment", [base_python, "-m", "venv", str(venv)]))
    steps.append(SetupStep("Updating pip", pip + ["--upgrade", "pip"]))
    steps.append(SetupStep("Installing PyTorch (" + ("CUDA" if cuda else "CPU") + ")",
                           pip + torch_install_args(cuda, platform)))
    steps.append(SetupStep("Installing the backend's requirements", pip + ["-r", str(requirements)]))
    if cuda and nvdiffrast:
        steps.append(SetupStep("Installing nvdiffrast (optional)", pip + ["diffrp-nvdiffrast"]))
    label = "Checking the rasterizer" + (" (nvdiffrast compiles its CUDA code now)" if cuda and nvdiffrast else "")
    steps.append(SetupStep(label, [vpy, "-m", "backend", "check", "--strict"]))
    return steps


def parse_check(stdout: str) -> Optional[dict]:
    """The JSON object printed by `python -m backend check`, or None."""
    text = stdout.strip()
    start = text.find("{")
    if start < 0:
        return None
    try:
        obj = json.loads(text[start:])
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def summarize_check(info: Optional[dict], stderr: str = "", returncode: int = 0) -> tuple[bool, str]:
    """(usable, one-line summary) of a backend check."""
    if info is None:
        if "No module named 'torch'" in stderr:
            return False, "The backend Python has no PyTorch: use 'Set up backend'."
        last = [ln for ln in stderr.strip().splitlines() if ln.strip()]
        return False, f"Backend check failed (exit {returncode}): {last[-1] if last else 'no output'}"
    if not info.get("torch"):
        return False, f"Python {info.get('python', '?')} has no PyTorch: use 'Set up backend'."
    devices = [k for k, v in (info.get("devices") or {}).items() if v]
    rasterizers = [k for k, v in (info.get("rasterizers") or {}).items() if v]
    text = (f"Python {info.get('python', '?')}, torch {info['torch']}, devices: {', '.join(devices) or 'none'}, "
            f"rasterizers: {', '.join(rasterizers) or 'none'}")
    if info.get("auto_rasterizer"):
        text += f" (auto: {info['auto_rasterizer']})"
    for name, reason in (info.get("rasterizer_errors") or {}).items():
        text += f"; {name} does not render: {str(reason)[:200]}"
    missing = info.get("missing_packages") or []
    if missing:
        text += f"; missing: {', '.join(missing)}"
    ok = bool(info.get("ok", True)) and not missing
    return ok, text


def run_check(python: str, backend_root: Path, env: dict, timeout_s: float = 180.0) -> tuple[bool, str, Optional[dict]]:
    """Run `python -m backend check`; (usable, summary, info)."""
    if os.path.sep in python and not os.path.exists(python):
        return False, f"Backend Python not found: {python}", None
    try:
        proc = subprocess.run([python, "-m", "backend", "check"], cwd=str(backend_root), env=env,
                              capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError:
        return False, f"Backend Python not found: {python}", None
    except subprocess.TimeoutExpired:
        return False, f"The backend check took more than {timeout_s:.0f} s.", None
    except OSError as exc:
        return False, f"Cannot run {python}: {exc}", None
    info = parse_check(proc.stdout)
    ok, text = summarize_check(info, proc.stderr, proc.returncode)
    return ok, text, info
