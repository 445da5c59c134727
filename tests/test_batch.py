"""Batch on a local Ray: a malformed job fails alone, finished jobs are not redone, killed runs are retried,
SIGTERM cancels every job within seconds; nothing half-written is ever left in OUT.

The jobs are tiny Cycles scenes (8 views at 80 px, 30 iterations, 256 px texture), one CPU per job.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.cli import build_parser
from backend.runtime.errors import JobError
from backend.pipelines.batch_plan import (clean_partial, is_photo_folder, parse_set, plan_jobs, result_complete,
                                          settings_flags, subparser, unique_names)
from backend.pipelines.batch_summary import csv_text

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--cpus-per-job", "1", "--set", "iterations=30", "--set", "texture_size=256", "--json"]
CANCEL_LIMIT_S = 15.0

ray = pytest.importorskip("ray")


def batch_cmd(inputs: list[Path], out: Path, *extra: str) -> list[str]:
    """The `python -m backend batch` command line."""
    return [sys.executable, "-m", "backend", "batch", *map(str, inputs), "--out", str(out), *extra]


def run_batch(inputs: list[Path], out: Path, *extra: str, timeout: float = 400) -> tuple[int, list[dict], str]:
    """Run a batch to its end: (exit code, its JSON lines, stderr)."""
    proc = subprocess.run(batch_cmd(inputs, out, *TINY, *extra), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return proc.returncode, [json.loads(x) for x in proc.stdout.splitlines()], proc.stderr


def rows(out: Path) -> dict[str, dict]:
    """summary.json rows by job name."""
    return {r["name"]: r for r in json.loads((out / "summary.json").read_text())["rows"]}


def leftovers(out: Path) -> list[str]:
    """Staging or half-written folders in OUT (hidden siblings, or a result folder without a valid result)."""
    bad = [p.name for p in out.iterdir() if p.name.startswith(".")]
    return bad + [p.name for p in out.iterdir() if p.is_dir() and p.name != "logs" and not p.name.startswith(".")
                  and not result_complete(p)]


def gone(pid: int) -> bool:
    """True when no process `pid` exists (or it is a zombie of someone else)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def group_gone(pgid: int) -> bool:
    """True when no live process is left in process group `pgid` (a run and the helpers it started)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return False
    return True


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two rendered jobs (suzanne with its gt.obj, a sphere) and a malformed one (an image missing)."""
    from scenegen import render_job_subprocess

    base = tmp_path_factory.mktemp("batch_in")
    suzanne = render_job_subprocess(base / "suzanne", mesh="suzanne", n_views=8, resolution=80, samples=4)
    shutil.copy(suzanne / "reference.obj", suzanne / "gt.obj")
    sphere = render_job_subprocess(base / "sphere", mesh="sphere", n_views=8, resolution=80, samples=4, seed=1)
    bad = base / "bad"
    shutil.copytree(sphere, bad)
    (bad / "images" / "cam_000.png").unlink()
    return {"suzanne": suzanne, "sphere": sphere, "bad": bad}


@pytest.fixture(scope="module")
def first_batch(inputs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, list[dict]]:
    """The three inputs run once: (OUT, exit code, JSON lines)."""
    out = tmp_path_factory.mktemp("batch_out") / "out"
    code, lines, err = run_batch([inputs["suzanne"], inputs["sphere"], inputs["bad"]], out)
    assert (out / "summary.json").is_file(), err[-3000:]
    return out, code, lines


@pytest.mark.slow
def test_malformed_job_fails_alone_and_is_named_in_the_summary(first_batch: tuple[Path, int, list[dict]]) -> None:
    out, code, lines = first_batch
    assert code == 1  # some job failed
    summary = rows(out)
    assert summary["suzanne"]["status"] == summary["sphere"]["status"] == "done"
    assert summary["bad"]["status"] == "failed" and "cam_000" in summary["bad"]["error"] and summary["bad"]["hint"]
    assert summary["bad"]["attempts"] == 1, "a bad job (exit 2) is not retried"
    for name in ("suzanne", "sphere"):
        assert result_complete(out / name)
        assert summary[name]["faces"] > 100 and summary[name]["iterations"] == 30
        assert summary[name]["timings_s"]["optimize"] > 0 and summary[name]["device"] == "cpu"
    assert 0 < summary["suzanne"]["chamfer_l1_norm"] < 0.05 and summary["suzanne"]["fscore"] > 0.3
    assert "chamfer_l1_norm" not in summary["sphere"]  # no ground truth given
    assert not (out / "bad").exists() and leftovers(out) == []
    table = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["name"] for r in table] == ["suzanne", "sphere", "bad"] and float(table[0]["t_optimize"]) > 0
    fractions = [x["fraction"] for x in lines if x["type"] == "progress"]
    assert fractions == sorted(fractions) or max(fractions) == 1.0
    assert lines[-1]["type"] == "done" and lines[-1]["done"] == 2 and lines[-1]["failed"] == 1


@pytest.mark.slow
def test_second_run_redoes_nothing(first_batch: tuple[Path, int, list[dict]], inputs: dict[str, Path]) -> None:
    out, _, _ = first_batch
    stamps = {n: (out / n / "result.json").stat().st_mtime_ns for n in ("suzanne", "sphere")}
    code, lines, err = run_batch([inputs["suzanne"], inputs["sphere"], inputs["bad"]], out)
    assert code == 1, err[-2000:]
    assert {n: (out / n / "result.json").stat().st_mtime_ns for n in stamps} == stamps
    skipped = {x["name"] for x in lines if x["type"] == "job" and x.get("skipped")}
    assert skipped == {"suzanne", "sphere"}
    assert not [x for x in lines if x["type"] == "job" and x["status"] == "running" and x["name"] != "bad"]
    assert any("2 of 3 jobs already complete" in x.get("message", "") for x in lines if x["type"] == "log")
    summary = rows(out)
    assert summary["suzanne"]["skipped"] and summary["suzanne"]["chamfer_l1_norm"] > 0
    assert summary["bad"]["status"] == "failed" and lines[-1]["skipped"] == 2


@pytest.mark.slow
def test_killed_worker_and_killed_run_are_retried(inputs: dict[str, Path], tmp_path: Path) -> None:
    """SIGKILL the Ray worker of one job and the reconstruct process of the other mid-optimisation."""
    out = tmp_path / "out"
    proc = subprocess.Popen(batch_cmd([inputs["suzanne"], inputs["sphere"]], out, *TINY, "--retries", "2"), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    started: dict[str, dict] = {}
    killed: dict[str, int] = {}
    lines = []
    try:
        for line in proc.stdout:
            msg = json.loads(line)
            lines.append(msg)
            if msg["type"] == "job" and msg["status"] == "running":
                started[msg["name"]] = msg
            if msg["type"] == "progress":
                for name, where in msg["jobs"].items():
                    if name not in killed and where.get("stage") == "optimize" and name in started:
                        victim = "worker_pid" if name == "suzanne" else "pid"
                        killed[name] = started[name]["pid"]
                        os.kill(started[name][victim], signal.SIGKILL)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert set(killed) == {"suzanne", "sphere"}, lines[-5:]
    assert code == 0, proc.stderr.read()[-3000:]
    summary = rows(out)
    for name in ("suzanne", "sphere"):
        assert summary[name]["status"] == "done" and summary[name]["attempts"] == 2, summary[name]
        assert result_complete(out / name)
    assert gone(killed["suzanne"]), "the run of the killed worker was left running"
    assert all(group_gone(p) for p in killed.values()), "a killed run's helper processes were left running"
    assert leftovers(out) == []


@pytest.mark.slow
def test_sigterm_cancels_every_job_within_seconds(inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = batch_cmd([inputs["suzanne"], inputs["sphere"]], out, "--cpus-per-job", "1", "--set", "iterations=2000",
                    "--json")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    pids: dict[str, int] = {}
    try:
        for line in proc.stdout:
            msg = json.loads(line)
            if msg["type"] == "job" and msg["status"] == "running":
                pids[msg["name"]] = msg["pid"]
            if msg["type"] == "progress" and sum(w.get("stage") == "optimize" for w in msg["jobs"].values()) == 2:
                break
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        elapsed = time.monotonic() - t0
        rest = [json.loads(x) for x in proc.stdout.read().splitlines()]
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"batch cancel: exit {code} after {elapsed:.1f} s", file=sys.stderr)
    assert code == 130, proc.stderr.read()[-3000:]
    assert elapsed < CANCEL_LIMIT_S
    assert {x["name"] for x in rest if x["type"] == "job" and x["status"] == "cancelled"} == {"suzanne", "sphere"}
    assert {r["status"] for r in rows(out).values()} == {"cancelled"}
    assert all(gone(p) and group_gone(p) for p in pids.values()), "a reconstruct process outlived the cancel"
    assert leftovers(out) == [] and not (out / "suzanne").exists() and not (out / "sphere").exists()


def test_names_kinds_flags_and_cleanup(tmp_path: Path) -> None:
    assert unique_names([Path("/a/job"), Path("/b/job"), Path("/c/other")]) == ["job", "job-2", "other"]
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        (photos / f"IMG_{i}.JPG").write_bytes(b"x")
    assert is_photo_folder(photos)
    (photos / "notes.txt").write_text("x")
    assert not is_photo_folder(photos)
    (photos / "notes.txt").unlink()
    parser = build_parser()
    [job] = plan_jobs([photos], tmp_path / "out", {}, None, parser)
    assert job.command == "photos"
    if subparser(parser, "photos") is None:
        assert "no `photos` command" in job.error.message and job.error.hint
    else:
        assert job.error is None and job.argv[:2] == ["photos", str(photos)]
    recon = subparser(parser, "reconstruct")
    assert settings_flags(recon, parse_set(["iterations=300", "refine_cameras=true"])) == \
        ["--iterations", "300", "--refine-cameras"]
    for bad in (["colour=red"], ["iterations"], ["iterations=0"]):
        with pytest.raises(JobError):
            parse_set(bad)
    with pytest.raises(JobError, match="no option"):
        settings_flags(recon, {"image_scale": 2})
    out = tmp_path / "out"
    (out / "j" / "previews").mkdir(parents=True)
    (out / ".j.tmp-abc").mkdir()
    clean_partial(out / "j")
    assert list(out.iterdir()) == []
    text = csv_text([{"name": "a", "status": "done", "timings_s": {"optimize": 2.0, "load": 1.0}}])
    assert text.splitlines()[0].split(",").index("t_load") < text.splitlines()[0].split(",").index("t_optimize")


def test_missing_ray_is_a_clear_error(tmp_path: Path) -> None:
    job = tmp_path / "job"
    job.mkdir()
    code = ("import sys; sys.modules['ray'] = None; from backend.cli import main; "
            f"sys.exit(main(['batch', {str(job)!r}, '--out', {str(tmp_path / 'out')!r}, '--json']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    err = json.loads(proc.stdout.splitlines()[-1])
    assert err["type"] == "error" and "Ray" in err["message"] and 'pip install "ray>=2.40"' in err["hint"]
