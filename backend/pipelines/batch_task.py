"""What one Ray task of a batch does: run `python -m backend <command> ... --json` as a subprocess.

The subprocess contains crashes and out-of-memory kills; it is in its own session (a terminal's Ctrl-C
reaches only the batch driver) and gets SIGTERM when the Ray worker running it dies (Linux parent-death
signal), so a force-cancelled or killed worker never leaves a run behind. Its protocol lines are
forwarded to the driver's progress board (an actor); its stderr goes to OUT/logs/<name>.log.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from backend.pipelines.batch_plan import clean_partial, result_complete

EXIT_JOB, EXIT_CANCELLED = 2, 130
FORWARD_EVERY_S = 0.5  # progress lines are forwarded at most this often (stage changes always)
STOP_GRACE_S = 10.0


class JobCrashed(RuntimeError):
    """The job's subprocess died or failed for a reason other than its input: Ray retries the task."""


def backend_root() -> str:
    """The folder that holds the `backend` package in this worker (PYTHONPATH of the subprocess)."""
    import backend

    return str(Path(backend.__file__).resolve().parents[1])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM this process when its parent (the Ray worker) dies (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def job_env(cpus: float) -> dict[str, str]:
    """Environment of the subprocess: this worker's (CUDA_VISIBLE_DEVICES from Ray) with thread counts and path."""
    threads = str(max(1, int(cpus)))
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=threads, NUMBA_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
               OMP_WAIT_POLICY="PASSIVE")
    root = backend_root()
    env["PYTHONPATH"] = os.pathsep.join([root, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    return env


def wait_gone(pid: int, timeout_s: float) -> bool:
    """Wait until process `pid` no longer exists (True), SIGKILL it after timeout_s (False)."""
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return True
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return False


def kill_group(pgid: int) -> None:
    """SIGKILL what is left of a finished run's process group (its helper processes, orphaned when it was killed)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the subprocess (it cleans its staging folder), SIGKILL after a grace period."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_metrics(gt: str, mesh: Path, env: dict[str, str], log: Any) -> dict:
    """Chamfer, normal consistency and F-score of the result mesh against the ground truth (`compare --json`)."""
    proc = subprocess.run([sys.executable, "-m", "backend", "compare", gt, str(mesh), "--json"],
                          capture_output=True, text=True, env=env, preexec_fn=_die_with_parent)
    log.write(proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"metrics_error": f"compare exited {proc.returncode}: {(proc.stderr or proc.stdout)[-300:]}"}
    if result.get("type") == "error":
        return {"metrics_error": result.get("message", "")}
    keys = ("chamfer_l1", "chamfer_l1_norm", "normal_consistency", "fscore", "hausdorff_norm")
    return {k: result[k] for k in keys if k in result}


def run_job(job: dict, board: Any, cpus: float) -> dict:
    """Run one batch job to its end; returns its outcome, raises JobCrashed for a failure worth retrying."""
    name, result_dir = job["name"], Path(job["result_dir"])
    host = socket.gethostname()
    previous = _ray_get(board.begin.remote(name))
    if previous and previous.get("host") == host and previous.get("pid"):
        wait_gone(int(previous["pid"]), STOP_GRACE_S)  # an earlier attempt's subprocess, orphaned by a dead worker
        kill_group(int(previous["pid"]))
    clean_partial(result_dir)
    log_path = Path(job["log"])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = job_env(cpus)
    t0 = time.monotonic()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} on {host}: python -m backend {' '.join(job['argv'])}\n")
        log.flush()
        proc = subprocess.Popen([sys.executable, "-m", "backend", *job["argv"]], stdout=subprocess.PIPE,
                                stderr=log, text=True, env=env, start_new_session=True,
                                preexec_fn=_die_with_parent)
        board.post.remote({"type": "job", "name": name, "status": "running", "pid": proc.pid,
                           "worker_pid": os.getpid(), "host": host})
        error: dict = {}
        try:
            error = forward_lines(proc, name, board)
            code = proc.wait()
        except BaseException:  # cancelled (KeyboardInterrupt from ray.cancel) or the worker is going down
            stop(proc)
            kill_group(proc.pid)
            clean_partial(result_dir)
            raise
        kill_group(proc.pid)  # the subprocess is its session's leader: its group holds only its helpers
    seconds = round(time.monotonic() - t0, 3)
    if code == 0 and result_complete(result_dir):
        out = {"status": "done", "seconds": seconds, "host": host}
        if job.get("gt"):
            with open(log_path, "a", encoding="utf-8") as log:
                out["metrics"] = run_metrics(job["gt"], result_dir / "mesh.obj", env, log)
        return out
    clean_partial(result_dir)
    if code == EXIT_JOB:
        return {"status": "failed", "exit_code": code, "seconds": seconds, "host": host,
                "error": error.get("message") or "the job was refused (exit 2)", "hint": error.get("hint", "")}
    if code == EXIT_CANCELLED:
        return {"status": "cancelled", "exit_code": code, "seconds": seconds, "host": host}
    why = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    detail = error.get("message") or f"see {log_path}"
    raise JobCrashed(f"{job['argv'][0]} {why}: {detail}")


def forward_lines(proc: subprocess.Popen, name: str, board: Any) -> dict:
    """Send the subprocess's stage and (throttled) progress lines to the board; returns its error line, if any."""
    last = 0.0
    error: dict = {}
    for line in proc.stdout:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        kind = msg.get("type")
        if kind == "error":
            error = msg
        now = time.monotonic()
        if kind == "progress" and now - last < FORWARD_EVERY_S and msg.get("step") != msg.get("total"):
            continue
        if kind in ("stage", "progress", "error"):
            last = now
            board.post.remote({**msg, "job": name})
    return error


def _ray_get(ref: Any) -> Any:
    """ray.get, imported here so that this module loads without Ray for its helpers."""
    import ray

    return ray.get(ref)
