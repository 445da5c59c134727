"""Cancel works in every stage, and the end of the run is a sharp boundary (DESIGN.md, "Progress protocol").

Every stage: one run per stage of a small job (12 views of a sphere, few iterations, a 4096 px texture so
the post-processing stages take a while, a face budget below the optimised mesh so decimation runs),
SIGTERM as soon as the stage begins. Each run must exit with the cancel code within 2 s of the signal and
leave no result folder and no staging folder. The seconds per stage are printed (BENCHMARKS.md, "Cancel").

The boundary is driven, not raced: the backend's test hook ($BACKEND_TEST_HOLD_AT, backend/protocol.py)
stops the run at a named point and waits for the signal. Just before the result folder is moved into
place a cancel leaves nothing (exit 130); once it is in place (inside the move's critical section, or
after it) the run is done: exit 0, the `done` line and a complete result folder.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from test_cli import sphere_job  # noqa: F401 - the module-scoped job fixture
from test_points import sphere_points

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["load", "visual_hull", "optimize", "topology", "decimate", "symmetry", "uv", "texture", "write"]
CANCEL_LIMIT_S = 2.0
EXIT_CANCELLED = 130
HOLD_ENV = "BACKEND_TEST_HOLD_AT"

pytestmark = [pytest.mark.slow]


def backend(args: list[str], hold_at: str, stdout: object, stderr: object) -> subprocess.Popen:
    """Start `python -m backend ARGS --json`, held at `hold_at` (the test hook) until a signal comes."""
    return subprocess.Popen([sys.executable, "-m", "backend", *args, "--json"], cwd=ROOT, stdout=stdout,
                            stderr=stderr, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), HOLD_ENV: hold_at})


def reconstruct_args(job: Path, out: Path, texture_size: int, topology: str = "auto") -> list[str]:
    """A short reconstruction of the sphere job into out (the topology stage runs with topology "on")."""
    return ["reconstruct", str(job), "--out", str(out), "--iterations", "6", "--texture-size", str(texture_size),
            "--max-faces", "600", "--topology", topology]


def cancel_in_stage(job: Path, out: Path, stage: str) -> tuple[float, int, str, list[str]]:
    """Start a run, SIGTERM it as soon as `stage` begins: (seconds to exit, exit code, stderr, stages seen).

    The run is held just before its result folder is moved into place, so it cannot finish before the
    signal arrives, however late that is.
    """
    proc = backend(reconstruct_args(job, out, 4096, "on" if stage == "topology" else "auto"), "commit:before",
                   subprocess.PIPE, subprocess.PIPE)
    seen: list[str] = []
    try:
        for line in proc.stdout:
            msg = json.loads(line)
            if msg["type"] == "stage":
                seen.append(msg["name"])
                if msg["name"] == stage:
                    break
            assert msg["type"] != "done", f"the run finished before stage {stage!r} began"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        elapsed = time.monotonic() - t0
        rest = proc.stdout.read()
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seen += [json.loads(x)["name"] for x in rest.splitlines() if json.loads(x)["type"] == "stage"]
    return elapsed, code, err, seen


def leftovers(parent: Path) -> list[str]:
    """Staging or old-result folders a run left beside its result folder."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".out."))


@pytest.mark.parametrize("stage", STAGES)
def test_sigterm_in_each_stage_exits_within_2_s_without_results(sphere_job: Path, tmp_path: Path,  # noqa: F811
                                                                stage: str) -> None:
    out = tmp_path / "out"
    elapsed, code, err, seen = cancel_in_stage(sphere_job, out, stage)
    print(f"cancel in {stage}: exit {code} after {elapsed:.2f} s (stages seen {seen})", file=sys.stderr)
    assert stage in seen
    assert code == EXIT_CANCELLED, err[-2000:]
    assert "cancelled" in err
    assert elapsed <= CANCEL_LIMIT_S, f"exit {elapsed:.2f} s after SIGTERM in stage {stage}"
    assert not out.exists(), sorted(p.name for p in out.iterdir())
    assert not leftovers(tmp_path), "a staging folder was left behind"


def test_sigterm_in_the_middle_of_the_topology_stage_exits_within_2_s(sphere_job: Path,  # noqa: F811
                                                                       tmp_path: Path) -> None:
    """Past its start, the topology stage too (grid steps, redistancing) gives way within 2 s."""
    out = tmp_path / "out"
    proc = backend(reconstruct_args(sphere_job, out, 64, "on"), "commit:before", subprocess.PIPE, subprocess.PIPE)
    try:
        for line in proc.stdout:
            msg = json.loads(line)
            if msg["type"] == "progress" and msg["stage"] == "topology" and msg["step"] >= 25:
                break
            assert msg["type"] != "done", "the run finished before the topology stage reached step 25"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        elapsed = time.monotonic() - t0
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"cancel in the topology stage at step 25: exit {code} after {elapsed:.2f} s", file=sys.stderr)
    assert code == EXIT_CANCELLED, err[-2000:]
    assert elapsed <= CANCEL_LIMIT_S
    assert not out.exists() and not leftovers(tmp_path)


@pytest.fixture(scope="module")
def cloud_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small point cloud of a sphere with normals (NPZ)."""
    pts, nrm = sphere_points(3_000, seed=21)
    path = tmp_path_factory.mktemp("cloud") / "sphere.npz"
    np.savez(path, points=pts, normals=nrm)
    return path


def run_held(args: list[str], point: str, tmp_path: Path) -> tuple[int, list[dict], str]:
    """Run the backend held at `point`, SIGTERM it there: (exit code, protocol lines, stderr)."""
    stdout_path = tmp_path / "stdout.jsonl"
    with open(stdout_path, "w") as stdout:
        proc = backend(args, point, stdout, subprocess.PIPE)
        err: list[str] = []
        try:
            for line in proc.stderr:
                err.append(line)
                if line.strip() == f"test hook: holding at {point}":
                    proc.send_signal(signal.SIGTERM)
                    break
            err.append(proc.stderr.read())
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = "".join(err)
    assert f"holding at {point}" in text, f"the run never reached {point}: {text[-2000:]}"
    return code, [json.loads(x) for x in stdout_path.read_text().splitlines()], text


BOUNDARY = [("reconstruct", "commit:before", EXIT_CANCELLED), ("reconstruct", "commit:renamed", 0),
            ("reconstruct", "commit:after", 0), ("points-to-mesh", "commit:before", EXIT_CANCELLED),
            ("points-to-mesh", "commit:renamed", 0)]


@pytest.mark.parametrize("command,point,expected", BOUNDARY)
def test_cancel_at_the_rename_boundary(sphere_job: Path, cloud_file: Path, tmp_path: Path,  # noqa: F811
                                       command: str, point: str, expected: int) -> None:
    out = tmp_path / "out"
    args = reconstruct_args(sphere_job, out, 64) if command == "reconstruct" else \
        ["points-to-mesh", str(cloud_file), "--out", str(out), "--depth", "6", "--symmetry", "off"]
    code, lines, err = run_held(args, point, tmp_path)
    assert code == expected, err[-2000:]
    assert [x["name"] for x in lines if x["type"] == "stage"][-1] == "write"
    assert not leftovers(tmp_path), "a staging or old-result folder was left behind"
    if expected == EXIT_CANCELLED:
        assert not out.exists(), "a cancel before the rename left a result folder"
        assert not any(x["type"] in ("done", "error") for x in lines)
        assert "cancelled" in err
        return
    assert lines[-1] == {"type": "done", "result": "result.json"}
    assert "cancel arrived after the result folder was in place" in err
    result = json.loads((out / "result.json").read_text())
    assert (out / result["mesh"]).stat().st_size > 0 and (out / result["material"]).is_file()
    if command == "reconstruct":
        assert (out / result["texture"]).stat().st_size > 0
    assert result["faces"] > 0 and "write" in result["timings_s"]


def test_a_closed_progress_pipe_cancels_the_run(sphere_job: Path, tmp_path: Path) -> None:  # noqa: F811
    """When the reader of the JSON lines goes away (Blender crashed or was killed), the run stops, leaving nothing."""
    out = tmp_path / "out"
    args = ["reconstruct", str(sphere_job), "--out", str(out), "--iterations", "3000", "--texture-size", "256"]
    proc = subprocess.Popen([sys.executable, "-m", "backend", *args, "--json"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        for line in proc.stdout:
            msg = json.loads(line)
            if msg["type"] == "progress" and msg["stage"] == "optimize" and msg["step"] >= 2:
                break
        t0 = time.monotonic()
        proc.stdout.close()
        code = proc.wait(timeout=60)
        elapsed = time.monotonic() - t0
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"pipe closed at step 2 of 3000: exit {code} after {elapsed:.2f} s", file=sys.stderr)
    assert code == EXIT_CANCELLED, err[-2000:]
    assert elapsed <= 10.0
    assert not out.exists() and not leftovers(tmp_path)
