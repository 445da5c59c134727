"""Debian's Blender, Xvfb and Blender's numpy for the real-window tests: found, installed in one go, or a failure.

The window tests skip only where they cannot run at all (no apt-get, or not root so apt-get cannot
install). On a machine where they could run (root with apt-get, as CI), a missing or broken package
set is a test failure, never a quiet skip.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from typing import Optional

import pytest

APT_PACKAGES = ("blender", "xvfb", "python3-numpy")
INSTALL_HINT = f"apt-get install -y {' '.join(APT_PACKAGES)}"


def run(argv: list[str], timeout: float, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Run a command, capturing its output as text."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


def blender_has_numpy(blender: str) -> bool:
    """True when Blender's embedded Python can import numpy (the add-on needs it)."""
    proc = run([blender, "-b", "--factory-startup", "--python-exit-code", "3",
                "--python-expr", "import numpy"], timeout=120)
    return proc.returncode == 0


def missing_tools() -> list[str]:
    """What the window tests lack: the blender and Xvfb programs, xvfb-run, numpy inside Blender."""
    missing = []
    blender = shutil.which("blender")
    if blender is None:
        missing.append("blender")
    if shutil.which("Xvfb") is None or shutil.which("xvfb-run") is None:
        missing.append("xvfb")
    if blender is not None and not blender_has_numpy(blender):
        missing.append("numpy in Blender's Python (python3-numpy)")
    return missing


def cannot_install_reason() -> Optional[str]:
    """Why apt-get cannot install packages on this machine (None when it can)."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "not running as root, so apt-get cannot install them"
    return None


def apt_install(packages: tuple[str, ...] = APT_PACKAGES) -> Optional[str]:
    """Install the whole package set in one apt-get call (update and retry once); None on success."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    argv = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    try:
        proc = run(argv, timeout=1800, env=env)
        if proc.returncode != 0:
            run(["apt-get", "update"], timeout=600, env=env)
            proc = run(argv, timeout=1800, env=env)
    except subprocess.TimeoutExpired:
        return "apt-get timed out"
    if proc.returncode != 0:
        return f"apt-get install failed: {(proc.stderr or proc.stdout).strip()[-400:]}"
    return None


@functools.lru_cache(maxsize=1)
def _prepare() -> tuple[str, str]:
    """('ok' | 'skip' | 'fail', reason), computed once per test session."""
    missing = missing_tools()
    if not missing:
        return "ok", ""
    reason = cannot_install_reason()
    if reason is not None:
        return "skip", f"window tests need {', '.join(missing)} ({INSTALL_HINT}); {reason}"
    why = apt_install()
    if why is not None:
        return "fail", f"window tests need {', '.join(missing)}; {INSTALL_HINT} failed: {why}"
    still = missing_tools()
    if still:
        return "fail", f"window tests need {', '.join(still)}, still missing after {INSTALL_HINT}"
    return "ok", ""


def require_window_tools() -> None:
    """Make sure blender, Xvfb and Blender's numpy are there; skip only where they cannot be installed."""
    status, reason = _prepare()
    if status == "skip":
        pytest.skip(reason)
    if status == "fail":
        pytest.fail(reason, pytrace=False)
