"""The interactive path in a real Blender window: Debian's `blender` under Xvfb, timers and modal operators live.

`bpy` as a module never fires timers or runs modal operators, so these tests start the real
Blender with a window on a virtual X display, and check from inside it (scripts in
`tests/window/`) what a user would see. Screenshots go to `artifacts/window/`.
They need `blender`, `Xvfb` and numpy in Blender's Python; as root with apt they are installed
(`apt-get install -y blender xvfb python3-numpy`, as CI does), otherwise the tests skip and say why.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "tests" / "window"
ARTIFACTS = ROOT / "artifacts" / "window"
SCREEN = (1600, 900)
APT_PACKAGES = ("blender", "xvfb", "python3-numpy")

pytestmark = [pytest.mark.window]


def _run(argv: list[str], timeout: float, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Run a command, capturing its output as text."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


def _blender_has_numpy(blender: str) -> bool:
    """True when Blender's embedded Python can import numpy (the add-on needs it)."""
    proc = _run([blender, "-b", "--factory-startup", "--python-exit-code", "3",
                 "--python-expr", "import numpy"], timeout=120)
    return proc.returncode == 0


def _missing() -> list[str]:
    """The Debian packages whose programs (or, for numpy, Blender's import) are missing."""
    missing = []
    blender = shutil.which("blender")
    if blender is None:
        missing.append("blender")
    if shutil.which("Xvfb") is None:
        missing.append("xvfb")
    if blender is not None and not _blender_has_numpy(blender):
        missing.append("python3-numpy")
    return missing


def _apt_install(packages: list[str]) -> Optional[str]:
    """Install Debian packages as CI does; None on success, else why it could not be done."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "not running as root, so apt-get cannot install them"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    argv = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    try:
        proc = _run(argv, timeout=1200, env=env)
        if proc.returncode != 0:
            _run(["apt-get", "update"], timeout=600, env=env)
            proc = _run(argv, timeout=1200, env=env)
    except subprocess.TimeoutExpired:
        return "apt-get timed out"
    if proc.returncode != 0:
        return f"apt-get install failed: {(proc.stderr or proc.stdout).strip()[-400:]}"
    return None


def _start_xvfb() -> tuple[subprocess.Popen, str]:
    """Start Xvfb on a free display (it picks the number and reports it through a pipe)."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
         "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    os.close(write_fd)
    digits = b""
    deadline = time.monotonic() + 30
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        while time.monotonic() < deadline and not digits.endswith(b"\n"):
            chunk = pipe.read(1)
            if not chunk:
                break
            digits += chunk
    if not digits.strip().isdigit():
        proc.kill()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"Xvfb did not start: {err.strip()[-400:]}")
    return proc, f":{digits.strip().decode()}"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file, from its IHDR chunk."""
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


class WindowBlender:
    """Starts real Blender with a window on the test's Xvfb display and collects a driver's JSON result."""

    def __init__(self, blender: str, display: str, home: Path) -> None:
        self.blender = blender
        self.display = display
        self.home = home
        self.env = dict(os.environ, DISPLAY=display, TMPDIR=str(home / "tmp"),
                        BLENDER_USER_CONFIG=str(home / "config"),
                        BLENDER_USER_SCRIPTS=str(home / "scripts"),
                        BLENDER_USER_DATAFILES=str(home / "datafiles"))
        for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            self.env.pop(key, None)
        for sub in ("tmp", "config", "scripts", "datafiles"):
            (home / sub).mkdir(parents=True, exist_ok=True)

    def version(self) -> str:
        """The first line of `blender --version`."""
        return _run([self.blender, "--version"], timeout=60, env=self.env).stdout.splitlines()[0]

    def background(self, script: Path, config: dict, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run a script in `blender -b` (no window) with a JSON configuration."""
        cfg = self._write_config(config)
        proc = _run([self.blender, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "3",
                     "--python", str(script), "--", str(cfg)], timeout=timeout, env=self.env)
        assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    def window(self, script: Path, config: dict, blend: Optional[Path] = None, timeout: float = 300) -> dict:
        """Run a driver script in Blender with a window; returns the result it wrote."""
        result_path = self.home / f"result_{script.stem}_{time.monotonic_ns()}.json"
        cfg = self._write_config(dict(config, result=str(result_path), artifacts=str(ARTIFACTS),
                                      timeout_s=timeout - 30))
        argv = [self.blender, "--factory-startup", "-noaudio", "--enable-event-simulate",
                "-p", "0", "0", str(SCREEN[0]), str(SCREEN[1])]
        if blend is not None:
            argv.append(str(blend))
        argv += ["--python", str(script), "--", str(cfg)]
        log_path = ARTIFACTS / f"{script.stem}_{config.get('mode', 'run')}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                    start_new_session=True)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                pytest.fail(f"Blender did not finish within {timeout} s; see {log_path}")
        output = log_path.read_text(errors="replace")
        assert result_path.is_file(), f"{script.name} wrote no result (exit {proc.returncode}):\n{output[-4000:]}"
        result = json.loads(result_path.read_text())
        result["exit_code"] = proc.returncode
        result["output_tail"] = output[-4000:]
        assert not result["errors"], "driver failed:\n" + "\n".join(result["errors"]) + "\n" + output[-3000:]
        return result

    def _write_config(self, config: dict) -> Path:
        """Write a driver configuration next to the session's Blender folders."""
        path = self.home / f"config_{time.monotonic_ns()}.json"
        path.write_text(json.dumps(config))
        return path


@pytest.fixture(scope="session")
def window_blender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WindowBlender]:
    """Debian's Blender and an Xvfb display for the session (installed with apt-get when possible)."""
    missing = _missing()
    if missing:
        why = _apt_install(missing)
        if why is not None:
            pytest.skip(f"window tests need {', '.join(missing)} (Debian: apt-get install -y "
                        f"{' '.join(APT_PACKAGES)}); {why}")
        still = _missing()
        if still:
            pytest.skip(f"window tests need {', '.join(still)}, still missing after apt-get install")
    xvfb, display = _start_xvfb()
    try:
        yield WindowBlender(shutil.which("blender"), display, tmp_path_factory.mktemp("window_blender"))
    finally:
        xvfb.terminate()
        try:
            xvfb.wait(timeout=10)
        except subprocess.TimeoutExpired:
            xvfb.kill()


def test_window_smoke(window_blender: WindowBlender) -> None:
    """Blender opens a real window on the virtual display; its timers fire and it can screenshot itself."""
    res = window_blender.window(SCRIPTS / "smoke.py", {"mode": "smoke"}, timeout=180)
    assert res["background"] is False
    assert res["window_size"] == list(SCREEN)
    assert res["numpy"], "Blender's Python has no numpy"
    assert res["ticks_in_2s"] >= 10, f"a 0.1 s timer fired only {res['ticks_in_2s']} times in 2 s"
    shot = Path(res["screenshot"])
    assert png_size(shot) == SCREEN
    print(f"{window_blender.version()}, GL: {res['gl_renderer']}, Python {res['python']}, numpy {res['numpy']}",
          file=sys.stderr)
