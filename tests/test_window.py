"""The interactive path in a real Blender window: Debian's `blender` under Xvfb, timers and modal operators live.

`bpy` as a module never fires timers or runs modal operators, so these tests start the real
Blender with a window on a virtual X display, and check from inside it (scripts in
`tests/window/`) what a user would see. Screenshots go to `artifacts/window/`.
They need `blender`, `Xvfb` and numpy in Blender's Python; as root with apt the whole set is installed in
one go (`apt-get install -y blender xvfb python3-numpy`, as CI does) and a failed install fails the tests;
they skip only where nothing can be installed (no apt-get, or not root), and say why.
`PHOTOMESH_UPDATE_SCREENSHOTS=1` also copies the run's screenshots to `docs/screenshots/` (README).
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

import numpy as np
import pytest
from window_env import require_window_tools, run as _run

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "tests" / "window"
ARTIFACTS = ROOT / "artifacts" / "window"
SCREEN = (1600, 900)

pytestmark = [pytest.mark.window]


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
        """Run a driver script in Blender with a window; returns the result it wrote.

        Debian's Blender 3.4 under Xvfb has segfaulted, rarely and not reproducibly (once in CI, 0 of 10 reruns
        under load), before the driver's next step; such a run is repeated once from a fresh work folder, its
        crash report printed, and a second crash fails the test with that report.
        """
        for attempt in (1, 2):
            result_path, proc, output = self._window_once(script, config, blend, timeout)
            if result_path.is_file():
                break
            report = self._crash_report()
            assert report and proc.returncode in (-signal.SIGSEGV, -signal.SIGABRT) and attempt == 1, \
                f"{script.name} wrote no result (exit {proc.returncode}):\n{output[-4000:]}\n{report[-3000:]}"
            print(f"Blender crashed (exit {proc.returncode}) running {script.name}; repeating once. "
                  f"Its crash report:\n{report[-3000:]}", file=sys.stderr)
            if config.get("work_dir"):
                shutil.rmtree(config["work_dir"], ignore_errors=True)
                Path(config["work_dir"]).mkdir(parents=True)
        result = json.loads(result_path.read_text())
        result["exit_code"] = proc.returncode
        result["output_tail"] = output[-4000:]
        result["attempts"] = attempt
        assert not result["errors"], "driver failed:\n" + "\n".join(result["errors"]) + "\n" + output[-3000:]
        return result

    def _window_once(self, script: Path, config: dict, blend: Optional[Path],
                     timeout: float) -> tuple[Path, subprocess.Popen, str]:
        """One windowed Blender run of a driver: where its result goes, the process, its console output."""
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
        for old in (self.home / "tmp").glob("*.crash.txt"):
            old.unlink()
        with open(log_path, "w") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                    start_new_session=True)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                pytest.fail(f"Blender did not finish within {timeout} s; see {log_path}")
        return result_path, proc, log_path.read_text(errors="replace")

    def _crash_report(self) -> str:
        """The crash report(s) Blender wrote into its temporary folder during the last run (empty if none)."""
        return "\n".join(f.read_text(errors="replace") for f in sorted((self.home / "tmp").glob("*.crash.txt")))

    def _write_config(self, config: dict) -> Path:
        """Write a driver configuration next to the session's Blender folders."""
        path = self.home / f"config_{time.monotonic_ns()}.json"
        path.write_text(json.dumps(config))
        return path


@pytest.fixture(scope="session")
def window_blender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WindowBlender]:
    """Debian's Blender and an Xvfb display for the session (installed with apt-get when possible)."""
    require_window_tools()
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


BACKEND_PYTHON = ROOT / ".venv" / "bin" / "python"
ITERATIONS = 30
PIPELINE = ["load", "visual_hull", "optimize", "decimate", "symmetry", "uv", "texture", "write"]
README_SHOTS = {"panel_running": "window_running.png", "result": "window_result.png"}


@pytest.fixture(scope="session")
def addon_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The add-on zip as users install it, built by build_addon.py."""
    out = tmp_path_factory.mktemp("addon_zip")
    proc = _run([sys.executable, str(ROOT / "build_addon.py"), "--out", str(out)], timeout=120)
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def window_scene(window_blender: WindowBlender, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A .blend with Suzanne and eight cameras, each with its Cycles-rendered photo as background image."""
    out = tmp_path_factory.mktemp("window_scene")
    window_blender.background(SCRIPTS / "make_scene.py", {"out": str(out), "views": 8, "size": 128, "samples": 8})
    return out / "scene.blend"


def _flow_config(mode: str, addon_zip: Path, work_dir: Path) -> dict:
    """Configuration of tests/window/flow.py."""
    if not BACKEND_PYTHON.is_file():
        pytest.skip(f"{BACKEND_PYTHON} not found: make the backend venv with scripts/setup_env.sh")
    work_dir.mkdir(parents=True, exist_ok=True)
    return {"mode": mode, "addon_zip": str(addon_zip), "backend_python": str(BACKEND_PYTHON),
            "work_dir": str(work_dir), "iterations": ITERATIONS, "preview_every": 5, "cancel_after_step": 2}


def _max_gap(spans: list[list[float]], start: float, end: float) -> float:
    """Longest time Blender spent between two driver timer callbacks (their own work excluded) in [start, end]."""
    inside = sorted(span for span in spans if span[1] >= start and span[0] <= end)
    assert len(inside) >= 2, f"fewer than two timer ticks between {start:.1f} s and {end:.1f} s"
    return max(nxt[0] - prev[1] for prev, nxt in zip(inside, inside[1:]))


def test_window_reconstruct_runs_modal_with_live_progress(window_blender: WindowBlender, window_scene: Path,
                                                         addon_zip: Path, tmp_path: Path) -> None:
    """Click-equivalent Reconstruct: goes modal, the panel's progress advances, timers keep firing, mesh arrives."""
    cfg = _flow_config("run", addon_zip, tmp_path / "work")
    res = window_blender.window(SCRIPTS / "flow.py", cfg, blend=window_scene, timeout=420)
    assert res["background"] is False
    assert res["invoke_return"] == ["RUNNING_MODAL"]
    start, end = res["run_window"]
    duration = end - start
    print(f"run took {duration:.1f} s, invoke {res['invoke_s']:.2f} s, {len(res['run_ticks'])} ticks, "
          f"max gap {_max_gap(res['run_ticks'], res['invoke_returned_at'], end):.2f} s", file=sys.stderr)
    opt = [d for d in res["draws"] if d["running"] and d["stage"] == "optimize"]
    drawn_steps = [d["step"] for d in opt]
    assert len(set(drawn_steps)) >= 3, f"the panel drew too few optimisation steps: {drawn_steps}"
    assert drawn_steps == sorted(drawn_steps), "progress drawn in the panel went backwards"
    assert max(d["progress"] for d in opt) > min(d["progress"] for d in opt)
    stages = list(dict.fromkeys(s["stage"] for s in res["samples"] if s["running"] and s["stage"]))
    assert "optimize" in stages, f"the optimisation stage was never shown: {stages}"
    assert set(stages) <= set(PIPELINE), f"unknown stages {set(stages) - set(PIPELINE)}; expected {PIPELINE}"
    assert stages == sorted(stages, key=PIPELINE.index), f"stages shown out of order: {stages}"
    ticks = res["run_ticks"]
    assert len(ticks) >= max(10, duration / 4.0), f"only {len(ticks)} timer ticks in a {duration:.1f} s run"
    gap = _max_gap(ticks, res["invoke_returned_at"], end)
    assert gap < max(5.0, 0.15 * duration), f"the UI froze for {gap:.1f} s during the run"
    assert res["backend_pids"], "no backend process was seen while the job ran"
    assert all(state is None for state in res["pid_states_after"].values()), res["pid_states_after"]
    before = {o["name"] for o in res["objects_before"]}
    new = [o for o in res["objects_after"] if o["name"] not in before]
    meshes = [o for o in new if o["type"] == "MESH"]
    assert meshes, f"no new mesh in the scene; new objects: {new}"
    mesh = max(meshes, key=lambda o: o["vertices"])
    assert mesh["vertices"] > 100 and mesh["faces"] > 100
    assert mesh["uv_layers"] >= 1 and mesh["images"], f"reconstruction has no UV map or texture: {mesh}"
    assert not any("preview" in o["name"].lower() for o in res["objects_after"]), "a preview object was left"
    for name in ("panel_ready", "panel_running", "result"):
        assert png_size(Path(res["screenshots"][name])) == SCREEN
    if os.environ.get("PHOTOMESH_UPDATE_SCREENSHOTS") == "1":
        for name, target in README_SHOTS.items():
            shutil.copyfile(res["screenshots"][name], ROOT / "docs" / "screenshots" / target)


def test_window_escape_cancels_and_restores_scene(window_blender: WindowBlender, window_scene: Path,
                                                 addon_zip: Path, tmp_path: Path) -> None:
    """Esc part-way through the modal run stops the backend process and leaves the scene as it was."""
    cfg = _flow_config("cancel", addon_zip, tmp_path / "work")
    res = window_blender.window(SCRIPTS / "flow.py", cfg, blend=window_scene, timeout=300)
    assert res["invoke_return"] == ["RUNNING_MODAL"]
    at_esc = res["status_at_esc"]
    assert at_esc["running"] and at_esc["stage"] == "optimize" and at_esc["step"] >= cfg["cancel_after_step"]
    alive = [pid for pid, state in res["pids_before_esc"].items() if state not in ("Z", "X")]
    assert alive, f"no live backend process when Esc was pressed: {res['pids_before_esc']}"
    print(f"stopped {res['esc_to_stop_s']:.2f} s after Esc at step {at_esc['step']}/{at_esc['total']}",
          file=sys.stderr)
    assert res["esc_to_stop_s"] < 10.0
    freeze = _max_gap(res["tick_spans"], res["esc_at"], res["run_window"][1])
    print(f"longest pause of the UI between Esc and the end of the job: {freeze:.2f} s", file=sys.stderr)
    assert freeze < 5.0, f"the UI froze for {freeze:.1f} s after Esc"
    assert all(state is None for state in res["pid_states_after"].values()), \
        f"backend process still there after Esc: {res['pid_states_after']}"
    assert res["backend_processes_after"] == {}
    assert res["objects_after"] == res["objects_before"], "the scene's objects changed after cancelling"
    assert res["data_after"] == res["data_before"], "cancelling left data-blocks behind"
    assert not any(f.endswith("result.json") for f in res["work_files"]), res["work_files"]
    for name in ("cancel_before_esc", "cancel_after"):
        assert png_size(Path(res["screenshots"][name])) == SCREEN


def test_window_addon_installs_and_panel_draws(window_blender: WindowBlender, window_scene: Path,
                                               addon_zip: Path, tmp_path: Path) -> None:
    """The zip installs and enables in this Blender, and its sidebar panel draws without errors."""
    cfg = _flow_config("panel", addon_zip, tmp_path / "work")
    res = window_blender.window(SCRIPTS / "flow.py", cfg, blend=window_scene, timeout=180)
    assert res["addon_install"] == ["FINISHED"] and res["addon_enable"] == ["FINISHED"]
    assert res["draw_count"] >= 1
    assert "Traceback" not in res["output_tail"], res["output_tail"]
    assert png_size(Path(res["screenshots"]["panel_ready"])) == SCREEN


def _points_config(mode: str, addon_zip: Path, work_dir: Path, points: int) -> dict:
    """Configuration of tests/window/points_flow.py."""
    if not BACKEND_PYTHON.is_file():
        pytest.skip(f"{BACKEND_PYTHON} not found: make the backend venv with scripts/setup_env.sh")
    work_dir.mkdir(parents=True, exist_ok=True)
    return {"mode": mode, "addon_zip": str(addon_zip), "backend_python": str(BACKEND_PYTHON),
            "work_dir": str(work_dir), "points": points}


def test_window_points_to_mesh_modal_run_and_escape(window_blender: WindowBlender, addon_zip: Path,
                                                    tmp_path: Path) -> None:
    """Points to Mesh goes modal, shows its stages and lands the mesh on the points; Esc during Poisson
    stops the backend and leaves the scene as it was."""
    res = window_blender.window(SCRIPTS / "points_flow.py", _points_config("run", addon_zip, tmp_path / "run", 20_000),
                                timeout=300)
    assert res["invoke_return"] == ["RUNNING_MODAL"]
    stages = list(dict.fromkeys(s["stage"] for s in res["samples"] if s["running"] and s["stage"]))
    assert "surface" in stages or "trim" in stages, stages
    new = [o for o in res["objects_after"] if o["name"] not in {b["name"] for b in res["objects_before"]}]
    assert [o["name"] for o in new] == ["Cloud_mesh"] and new[0]["faces"] > 1000
    assert abs(res["radius_mean"] - 1.5) < 0.03, res["radius_mean"]
    assert res["backend_pids"] and all(s is None for s in res["pid_states_after"].values())

    res = window_blender.window(SCRIPTS / "points_flow.py",
                                _points_config("cancel", addon_zip, tmp_path / "cancel", 400_000), timeout=300)
    assert res["status_at_esc"]["stage"] == "surface" and res["pids_before_esc"]
    assert res["esc_to_stop_s"] < 10.0
    assert all(s is None for s in res["pid_states_after"].values()), res["pid_states_after"]
    assert res["objects_after"] == res["objects_before"] and res["data_after"] == res["data_before"]
    assert not any(f.endswith("result.json") for f in res["work_files"]), res["work_files"]


def test_window_refined_cameras_apply_undo_redo(window_blender: WindowBlender, window_scene: Path,
                                                addon_zip: Path, tmp_path: Path) -> None:
    """Reconstruct with Refine Cameras on (real backend; one camera turned 3 degrees off its photo) stores and
    lists the refined cameras; Apply Refined Cameras moves every camera (a parented one too) to the refined
    K, R, t; Ctrl+Z puts the cameras back, Ctrl+Shift+Z re-applies."""
    cfg = _flow_config("refine", addon_zip, tmp_path / "work")
    cfg.update(iterations=60, turn_deg=3.0)
    res = window_blender.window(SCRIPTS / "refine_flow.py", cfg, blend=window_scene, timeout=420)
    assert res["reconstruct_return"] == ["FINISHED"] and res["apply_return"] == ["FINISHED"]
    result = json.loads(next((tmp_path / "work").rglob("result.json")).read_text())
    refined = {c["name"]: c for c in result["cameras"]}
    assert [s["view"] for s in res["stored"]] == list(refined) and len(refined) == 8
    assert [s["aligned"] for s in res["stored"]] == [c["aligned"] for c in refined.values()]
    assert res["focal_scale"] == pytest.approx(result["camera_focal_scale"])
    assert res["panel_lines"] and res["panel_lines"][-1] == 8
    assert res["parent_after_apply"], "Apply dropped the camera's parent"
    turn = {s["camera"]: s["rotation_deg"] for s in res["stored"]}
    others = sorted(v for k, v in turn.items() if k != res["turned"])
    assert turn[res["turned"]] > 0.5 and turn[res["turned"]] > others[-1], turn
    for view, ref in refined.items():
        for key in ("K", "R", "t"):
            assert np.allclose(res["applied"][view][key], ref[key], rtol=1e-5, atol=1e-5), (view, key)
            assert np.allclose(res["undone"][view][key], res["before"][view][key], atol=1e-6), (view, key)
            assert np.allclose(res["redone"][view][key], ref[key], rtol=1e-5, atol=1e-5), (view, key)
        scale = result["camera_focal_scale"]
        assert res["applied"][view]["lens"] == pytest.approx(scale * res["before"][view]["lens"], rel=1e-5)
        assert res["undone"][view]["lens"] == pytest.approx(res["before"][view]["lens"])
    turned_view = next(s["view"] for s in res["stored"] if s["camera"] == res["turned"])
    assert not np.allclose(res["before"][turned_view]["R"], refined[turned_view]["R"], atol=1e-3)
    assert png_size(Path(res["screenshots"]["panel"])) == SCREEN


PHOTO_STEMS = ["IMG_0001", "IMG_0002", "IMG_0003", "IMG_0004", "IMG_0005", "IMG_0006"]


def _photos_config(mode: str, addon_zip: Path, base: Path) -> dict:
    """Configuration of tests/window/photos_flow.py: a prepared folder from a Cycles render, its photos as the
    photo folder, and the stand-in for the backend's `photos` command."""
    from photos_prepared import build_prepared, write_standin

    prepared = build_prepared(base / "prepared", PHOTO_STEMS, (160, 120))
    photos = base / "My Photos"
    photos.mkdir()
    for jpg in (prepared / "job" / "images").glob("*.jpg"):
        shutil.copyfile(jpg, photos / jpg.name)
    (base / "work").mkdir()
    return {"mode": mode, "addon_zip": str(addon_zip), "standin_python": str(write_standin(base)),
            "prepared": str(prepared), "photos": str(photos), "work_dir": str(base / "work")}


def test_window_import_photos_modal_run_and_escape(window_blender: WindowBlender, addon_zip: Path,
                                                   tmp_path: Path) -> None:
    """Import Photos goes modal with live progress, lands the cameras (photos and masks as backgrounds), points
    and box and sets Reconstruct up for them; Esc while cameras are placed leaves the scene and no folder."""
    res = window_blender.window(SCRIPTS / "photos_flow.py", _photos_config("run", addon_zip, tmp_path / "run"),
                                timeout=300)
    assert res["invoke_return"] == ["RUNNING_MODAL"]
    running = [s for s in res["samples"] if s["running"]]
    steps = [s["step"] for s in running if s["stage"] == "sfm"]
    assert len(steps) >= 5 and steps == sorted(steps) and steps[-1] > steps[0], steps
    assert any("Placing cameras" in s["text"] for s in running) and res["draws_running"] > 3
    after = res["after"]
    assert after["collections"] == sorted(res["before"]["collections"] + ["My Photos"])
    assert after["selected"] == PHOTO_STEMS
    assert ["My Photos points", "MESH"] in after["objects"] and ["My Photos bounds", "MESH"] in after["objects"]
    assert after["settings"] == {"image_source": "BACKGROUND", "mask_source": "FOLDER",
                                 "mask_folder": str(Path(res["out_dir"]) / "job" / "masks"),
                                 "bbox_source": "OBJECT", "bbox_object": "My Photos bounds"}
    assert after["render"] == [160, 120] and res["summary"].startswith("6/7 photos placed")
    assert res["mask_shown"] == [True] * 6
    assert png_size(Path(res["shot_running"])) == SCREEN and png_size(Path(res["shot_masks"])) == SCREEN
    assert all(s is None for s in res["pid_states_after"].values()), res["pid_states_after"]

    res = window_blender.window(SCRIPTS / "photos_flow.py", _photos_config("cancel", addon_zip, tmp_path / "cancel"),
                                timeout=300)
    assert res["status_at_esc"]["stage"] == "sfm" and res["esc_to_stop_s"] < 10.0
    assert all(s is None for s in res["pid_states_after"].values()), res["pid_states_after"]
    assert res["after"] == res["before"] and res["data_after"] == res["data_before"]
    assert res["work_files"] == [] and res["out_dir"] == ""


def test_window_harness_repeats_a_blender_crash_once(window_blender: WindowBlender, tmp_path: Path) -> None:
    """A run in which Blender segfaults is repeated once from a fresh work folder; a second crash fails with its report."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "left_by_the_crash").write_text("x")
    res = window_blender.window(SCRIPTS / "crash_once.py", {"marker": str(tmp_path / "marker"),
                                                            "work_dir": str(work)}, timeout=120)
    assert res["attempts"] == 2 and res["exit_code"] == 0
    assert (tmp_path / "marker").is_file() and list(work.iterdir()) == []
    with pytest.raises(AssertionError, match=r"(?s)exit -11.*Blender"):
        window_blender.window(SCRIPTS / "crash_once.py", {"marker": str(tmp_path / "marker2"), "always": True},
                              timeout=120)
