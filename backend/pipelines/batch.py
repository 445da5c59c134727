"""`python -m backend batch`: many reconstructions as Ray tasks, on this machine or on a Ray cluster.

Ray schedules (resources per job, retries of dead workers, cancel); each task runs one
`python -m backend reconstruct|photos ... --json` subprocess into OUT/<name>/ (see batch_task.py).
The driver here plans, skips finished jobs, shows the overall progress, keeps OUT/summary.json and
summary.csv up to date as jobs finish, and on SIGINT/SIGTERM force-cancels every task.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.runtime.errors import Cancelled, JobError
from backend.pipelines.batch_plan import BatchJob, clean_partial, plan_jobs, result_complete
from backend.pipelines.batch_progress import BatchProgress
from backend.pipelines.batch_summary import job_row, previous_rows, write_summary
from backend.pipelines.batch_task import (JobCrashed, backend_root, job_env, kill_group, run_job, run_metrics,
                                          wait_gone)

EXIT_OK, EXIT_FAILED, EXIT_JOB, EXIT_CANCELLED = 0, 1, 2, 130
RAY_INSTALL = 'pip install "ray>=2.40"'
POLL_S = 0.5
CANCEL_WAIT_S = 8.0
LOCAL_OBJECT_STORE_BYTES = 128 * 1024 * 1024  # results are small dicts: keep Ray's shared memory small


@dataclass
class BatchOptions:
    """What `batch` was asked to do (the CLI's arguments)."""

    inputs: list[Path]
    out: Path
    address: str | None = None
    gpus_per_job: float | None = None  # None: 1 when the cluster has GPUs, else 0
    cpus_per_job: float = 2.0
    retries: int = 2
    settings: dict | None = None
    gt_dir: Path | None = None
    json_mode: bool | None = None


class ProgressBoard:
    """A Ray actor where tasks post their lines and the driver takes them; counts attempts per job."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.attempts: dict[str, int] = {}
        self.last_run: dict[str, dict] = {}

    def begin(self, name: str) -> dict | None:
        """A task starts `name` again: count the attempt, return where the previous attempt's subprocess ran."""
        self.attempts[name] = self.attempts.get(name, 0) + 1
        return self.last_run.get(name)

    def post(self, event: dict) -> None:
        """Queue a line for the driver (a job's start, stage, progress or error)."""
        if event.get("type") == "job" and event.get("status") == "running":
            self.last_run[event["name"]] = {"host": event.get("host"), "pid": event.get("pid")}
            event = {**event, "attempt": self.attempts.get(event["name"], 1)}
        self.events.append(event)

    def take(self) -> tuple[list[dict], dict[str, int]]:
        """Every line queued since the last call, and the attempt counts."""
        events, self.events = self.events, []
        return events, dict(self.attempts)


def protocol_stdout() -> Any:
    """A stream on the original stdout for protocol lines; anything else printed to stdout (Ray's own
    messages about dead workers, from Python or native code) goes to stderr from now on."""
    sys.stdout.flush()
    stream = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def import_ray() -> Any:
    """The ray module, or a JobError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise JobError("batch needs Ray, which is not installed in this Python environment",
                       f"Install it with: {RAY_INSTALL}  (into the same environment as the backend)") from None
    return ray


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """For a HOST:PORT address, a JobError at once when nothing listens there (Ray would wait a long time)."""
    host, sep, port = address.rpartition(":")
    if "://" in address or not sep or not port.isdigit():
        return  # "auto", ray://... : left to Ray
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise JobError(f"no Ray cluster answers at {address} ({exc})",
                       "Start one with `ray start --head` on the head node (it prints HOST:6379), and check "
                       "that this machine can reach that port.") from None


def start_ray(ray: Any, opts: BatchOptions) -> None:
    """Connect to the cluster at opts.address, or start a quiet embedded Ray on this machine."""
    if opts.address:
        check_reachable(opts.address)
        try:
            ray.init(address=opts.address, runtime_env={"py_modules": [backend_root() + "/backend"]},
                     log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError) as exc:
            raise JobError(f"cannot connect to the Ray cluster at {opts.address}: {str(exc).splitlines()[0]}",
                           "Start it with `ray start --head` on the head node (it prints the address, HOST:6379); "
                           "with token authentication set RAY_AUTH_MODE=token (and the token) here too.") from None
        return
    cpus = max(os.cpu_count() or 1, int(opts.cpus_per_job + 0.999))
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
             object_store_memory=LOCAL_OBJECT_STORE_BYTES, configure_logging=True,
             runtime_env={"env_vars": {"PYTHONPATH": backend_root()}})


def job_resources(ray: Any, opts: BatchOptions) -> tuple[float, float]:
    """(CPUs, GPUs) per job; a JobError when no node of the cluster could ever run one job."""
    gpus = opts.gpus_per_job
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if not any(r.get("CPU", 0) >= opts.cpus_per_job and r.get("GPU", 0) >= gpus for r in nodes):
        have = ", ".join(f"{r.get('CPU', 0):g} CPU/{r.get('GPU', 0):g} GPU" for r in nodes) or "no live nodes"
        raise JobError(f"no node can run a job with {opts.cpus_per_job:g} CPUs and {gpus:g} GPUs (nodes: {have})",
                       "Lower --cpus-per-job / --gpus-per-job, or add such a node to the cluster.")
    return opts.cpus_per_job, gpus


class Batch:
    """One batch run: plan, skip finished jobs, submit the rest, follow them, summarise."""

    def __init__(self, opts: BatchOptions, parser: Any) -> None:
        self.opts = opts
        self.out = Path(opts.out).resolve()
        self.jobs: list[BatchJob] = plan_jobs(opts.inputs, self.out, opts.settings or {}, opts.gt_dir, parser)
        self.progress = BatchProgress([j.name for j in self.jobs], json_mode=opts.json_mode,
                                      stream=protocol_stdout())
        self.rows: dict[str, dict] = {}
        self.cancel = threading.Event()
        self.t0 = time.monotonic()
        self.local_pids: dict[str, int] = {}
        self.attempts: dict[str, int] = {}
        self.cpus, self.gpus = opts.cpus_per_job, opts.gpus_per_job
        self.submitted = False  # before the tasks exist a signal stops the batch at once

    def log_path(self, job: BatchJob) -> Path:
        """OUT/logs/<name>.log: the stderr of every attempt of the job."""
        return self.out / "logs" / f"{job.name}.log"

    def set_row(self, job: BatchJob, status: str, **extra: object) -> None:
        """Record the job's row and announce its state."""
        if status in ("done", "failed", "cancelled"):
            extra.setdefault("attempts", self.attempts.get(job.name))
        self.rows[job.name] = job_row(job.name, job.input, job.result_dir, self.log_path(job), status, **extra)
        announce = {k: extra.get(k) for k in ("skipped", "error", "hint", "attempts")}
        self.progress.set_status(job.name, status, **announce)

    def summarise(self, finished: bool) -> None:
        """Write OUT/summary.json and .csv as things stand."""
        info = {"version": 1, "out": str(self.out), "address": self.opts.address or "local",
                "cpus_per_job": self.cpus, "gpus_per_job": self.gpus, "settings": self.opts.settings or {},
                "finished": finished, "elapsed_s": round(time.monotonic() - self.t0, 1)}
        write_summary(self.out, [self.rows[j.name] for j in self.jobs], info)

    def skip_or_refuse(self) -> list[BatchJob]:
        """Rows for finished jobs (not redone) and jobs refused before running; returns those left to run."""
        before = previous_rows(self.out)
        todo = []
        for job in self.jobs:
            if job.error is not None:
                self.set_row(job, "failed", error=job.error.message, hint=job.error.hint, attempts=0)
            elif result_complete(job.result_dir):
                old = before.get(job.name, {})
                metrics = {k: old[k] for k in ("chamfer_l1_norm", "normal_consistency", "fscore") if k in old}
                if job.gt is not None and not metrics:
                    with open(self.log_path(job), "a", encoding="utf-8") as log:
                        metrics = run_metrics(str(job.gt), job.result_dir / "mesh.obj", job_env(self.cpus), log)
                self.set_row(job, "done", skipped=True, attempts=0, metrics=metrics,
                             seconds=old.get("seconds"), host=old.get("host"))
            else:
                self.rows[job.name] = job_row(job.name, job.input, job.result_dir, self.log_path(job), "pending")
                todo.append(job)
        return todo

    def run(self) -> int:
        """Run the batch to its end (or until cancelled); returns the exit code."""
        ray = import_ray()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "logs").mkdir(exist_ok=True)
        self.install_signal_handlers()
        todo = self.skip_or_refuse()
        self.summarise(finished=not todo)
        skipped = sum(bool(r.get("skipped")) for r in self.rows.values())
        if skipped:
            self.progress.write({"type": "log", "message": f"{skipped} of {len(self.jobs)} jobs already complete: "
                                                           "not redone"})
        if not todo:
            return self.finish("nothing to do")
        try:
            try:
                start_ray(ray, self.opts)
            except SystemExit as exc:  # ray.init's own SIGTERM handler exits with the signal number
                if exc.code != signal.SIGTERM:
                    raise
                raise Cancelled("SIGTERM while Ray started") from None
            self.install_signal_handlers()  # again: Ray's native failure handler took SIGTERM over
            if self.cancel.is_set():
                raise Cancelled("cancelled while Ray started")
            self.cpus, self.gpus = job_resources(ray, self.opts)
            refs = self.submit(ray, todo)
        except Cancelled:  # nothing was submitted
            for job in todo:
                self.set_row(job, "cancelled")
            self.summarise(finished=False)
            ray.shutdown()
            self.progress.write({"type": "log", "message": "cancelled"})
            return EXIT_CANCELLED
        try:
            return self.follow(ray, refs)
        finally:
            ray.shutdown()

    def submit(self, ray: Any, todo: list[BatchJob]) -> dict[Any, BatchJob]:
        """One Ray task per job, with its resources and retries."""
        self.board = ray.remote(num_cpus=0)(ProgressBoard).remote()
        task = ray.remote(run_job)
        refs = {}
        for job in todo:
            spec = {"name": job.name, "argv": job.argv, "result_dir": str(job.result_dir),
                    "log": str(self.log_path(job)), "gt": str(job.gt) if job.gt else None}
            ref = task.options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.opts.retries,
                               retry_exceptions=[JobCrashed], name=f"batch:{job.name}").remote(spec, self.board,
                                                                                               self.cpus)
            refs[ref] = job
        self.submitted = True
        return refs

    def follow(self, ray: Any, refs: dict[Any, BatchJob]) -> int:
        """Wait for the tasks, forwarding progress and writing the summary as each one ends."""
        pending = dict(refs)
        while pending and not self.cancel.is_set():
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=POLL_S)
            self.drain(ray)
            for ref in ready:
                self.settle(ray, ref, pending.pop(ref))
            if ready:
                self.summarise(finished=not pending)
            self.progress.tick()
        if pending:
            self.cancel_all(ray, pending)
            return EXIT_CANCELLED
        return self.finish()

    def drain(self, ray: Any) -> None:
        """Take the lines tasks posted: job starts (with their pids) and each job's latest stage/progress."""
        try:
            events, self.attempts = ray.get(self.board.take.remote(), timeout=10)
        except Exception:  # noqa: BLE001 - a slow board only delays the bar
            return
        started = False
        for ev in events:
            if ev.get("type") == "job":
                started = True
                if ev.get("host") == socket.gethostname() and ev.get("pid"):
                    self.local_pids[ev["name"]] = int(ev["pid"])
                if ev["name"] in self.rows:
                    self.rows[ev["name"]].update(status="running", host=ev.get("host"))
                self.progress.set_status(ev["name"], "running", attempt=ev.get("attempt"), pid=ev.get("pid"),
                                         worker_pid=ev.get("worker_pid"), host=ev.get("host"))
            elif ev.get("job") and ev.get("type") in ("stage", "progress"):
                self.progress.line(ev["job"], ev)
        if started:
            self.summarise(finished=False)

    def settle(self, ray: Any, ref: Any, job: BatchJob) -> None:
        """Record a finished task's outcome: done, failed (with the error and hint) or cancelled."""
        from ray.exceptions import RayTaskError, TaskCancelledError

        try:
            outcome = ray.get(ref)
        except TaskCancelledError:
            self.set_row(job, "cancelled")
            return
        except RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else exc
            message = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
            tries = self.attempts.get(job.name, 1)
            self.set_row(job, "failed", error=message,
                         hint=f"It failed on {tries} attempt{'s' if tries > 1 else ''}; its log: {self.log_path(job)}")
            return
        except Exception as exc:  # noqa: BLE001 - worker crashes, out-of-memory kills: the job failed
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.set_row(job, "failed", error=f"{type(exc).__name__}: {message}",
                         hint=f"The Ray worker died on every attempt; its log: {self.log_path(job)}")
            return
        extra = {k: outcome.get(k) for k in ("error", "hint", "seconds", "host", "exit_code")}
        self.set_row(job, outcome["status"], metrics=outcome.get("metrics"), **extra)

    def cancel_all(self, ray: Any, pending: dict[Any, BatchJob]) -> None:
        """Force-cancel every unfinished task, wait for their subprocesses, leave nothing partial."""
        self.progress.write({"type": "log", "message": "cancelling every job"})
        for ref in pending:
            ray.cancel(ref, force=True)
        ray.wait(list(pending), num_returns=len(pending), timeout=CANCEL_WAIT_S)
        self.drain(ray)
        for name, pid in self.local_pids.items():
            if name in {j.name for j in pending.values()}:
                wait_gone(pid, CANCEL_WAIT_S)
                kill_group(pid)
        for job in pending.values():
            if result_complete(job.result_dir):  # it finished in the last instant
                self.set_row(job, "done", seconds=None)
            else:
                clean_partial(job.result_dir)
                self.set_row(job, "cancelled")
        self.summarise(finished=False)
        self.progress.write({"type": "log", "message": "cancelled"})

    def finish(self, note: str = "") -> int:
        """Final summary and done line; exit 0 when every job is done, 1 when some failed."""
        self.summarise(finished=True)
        self.progress.tick(force=True)
        done = sum(r["status"] == "done" for r in self.rows.values())
        failed = [n for n, r in self.rows.items() if r["status"] == "failed"]
        skipped = sum(bool(r.get("skipped")) for r in self.rows.values())
        message = note or f"{done} done ({skipped} already complete), {len(failed)} failed"
        self.progress.write({"type": "done", "result": "summary.json", "done": done, "failed": len(failed),
                             "skipped": skipped, "message": message})
        return EXIT_FAILED if failed else EXIT_OK

    def install_signal_handlers(self) -> None:
        """SIGINT and SIGTERM ask the batch to cancel (the main loop then cancels every task)."""

        def handler(signum: int, frame: object) -> None:
            self.cancel.set()
            if not self.submitted:  # still planning or starting Ray: stop right here
                raise Cancelled(signal.Signals(signum).name)

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def run_batch(opts: BatchOptions, parser: Any) -> int:
    """Plan and run a batch; returns the exit code (0 all done, 1 some failed, 130 cancelled)."""
    batch = Batch(opts, parser)
    try:
        return batch.run()
    except JobError as exc:  # stdout now belongs to the batch's stream: report there
        obj = exc.to_dict()
        batch.progress.write(obj)
        return EXIT_JOB
