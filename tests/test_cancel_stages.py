"""Cancel works in every stage: SIGTERM once a stage has begun (seen on the protocol) ends the run within 2 s.

One run per stage of a small job (12 views of a sphere, few iterations, a 4096 px texture so the
post-processing stages take a while, a face budget below the optimised mesh so decimation runs).
Each run must exit with the cancel code within 2 s of the signal and leave no result files and no
staging folder. The seconds per stage are printed (BENCHMARKS.md, "Cancel").
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_cli import sphere_job  # noqa: F401 - the module-scoped job fixture

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["load", "visual_hull", "optimize", "decimate", "symmetry", "uv", "texture", "write"]
CANCEL_LIMIT_S = 2.0
EXIT_CANCELLED = 130

pytestmark = [pytest.mark.slow]


def cancel_in_stage(job: Path, out: Path, stage: str) -> tuple[float, int, str, list[str]]:
    """Start a run, SIGTERM it as soon as `stage` begins: (seconds to exit, exit code, stderr, stages seen)."""
    proc = subprocess.Popen([sys.executable, "-m", "backend", "reconstruct", str(job), "--out", str(out),
                             "--iterations", "6", "--texture-size", "4096", "--max-faces", "600", "--json"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
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
    assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")], "a staging folder was left behind"
