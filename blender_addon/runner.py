"""Runs the backend as a subprocess and reads its progress stream without blocking. No bpy."""
from __future__ import annotations

import collections
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from .protocol_parser import Event, StreamParser

_EOF = object()


class BackendStartError(Exception):
    """The backend process could not be started (bad interpreter path, permissions...)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass
class RunOutcome:
    """How a backend run ended: status is 'done', 'error', 'crashed', 'cancelled' or 'hung'."""

    status: str
    message: str
    hint: str = ""
    result_path: Optional[Path] = None
    returncode: Optional[int] = None
    stderr_tail: str = ""

    @property
    def ok(self) -> bool:
        """True when the backend finished with a result."""
        return self.status == "done"


def explain_failure(stderr_tail: str, returncode: Optional[int]) -> str:
    """A hint for the user from the backend's last stderr lines and exit code."""
    text = stderr_tail or ""
    if "No module named 'torch'" in text:
        return ("The backend Python has no PyTorch. Use 'Set up backend' in the add-on preferences, "
                "or point 'Backend Python' at an environment with torch installed.")
    if "No module named 'backend'" in text:
        return "The backend package was not found next to the add-on; reinstall the add-on zip."
    if "No module named" in text:
        missing = text.split("No module named", 1)[1].strip().splitlines()[0]
        return (f"The backend Python lacks the module {missing}. Use 'Set up backend' in the "
                "add-on preferences to install the backend's requirements.")
    if "out of memory" in text.lower() or "MemoryError" in text:
        return "The backend ran out of memory: choose a lower quality preset or fewer cameras."
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"The backend was killed by {name} (often: out of memory). Try the Draft preset."
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "See the system console for the backend's log."


class LineProcess:
    """A subprocess whose stdout lines and stderr tail are collected by background threads."""

    def __init__(self, argv: Sequence[str], cwd: Optional[Path] = None,
                 env: Optional[dict] = None, stderr_lines: int = 60, log_path: Optional[Path] = None) -> None:
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path) if log_path else None
        self.cwd = str(cwd) if cwd else None
        self.env = env
        self.proc: Optional[subprocess.Popen] = None
        self._lines: "queue.Queue[object]" = queue.Queue()
        self._stderr: collections.deque = collections.deque(maxlen=stderr_lines)
        self._threads: list[threading.Thread] = []
        self.stdout_closed = False

    def start(self) -> None:
        """Start the process; raises BackendStartError when it cannot be started."""
        kwargs: dict = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True
        elif os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        try:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                encoding="utf-8", errors="replace", bufsize=1, **kwargs)
        except FileNotFoundError as exc:
            raise BackendStartError(f"Program not found: {self.argv[0]}",
                                    "Check 'Backend Python' in the add-on preferences.") from exc
        except PermissionError as exc:
            raise BackendStartError(f"Not allowed to run {self.argv[0]}",
                                    "Choose an executable Python interpreter in the preferences.") from exc
        except OSError as exc:
            raise BackendStartError(f"Cannot start {self.argv[0]}: {exc}",
                                    "Check 'Backend Python' in the add-on preferences.") from exc
        out = threading.Thread(target=self._pump_stdout, daemon=True)
        err = threading.Thread(target=self._pump_stderr, daemon=True)
        self._threads = [out, err]
        out.start()
        err.start()

    def _pump_stdout(self) -> None:
        """Thread body: move stdout lines into the queue, then an end marker."""
        assert self.proc is not None and self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                self._lines.put(line)
        except (OSError, ValueError):
            pass
        finally:
            self._lines.put(_EOF)

    def _pump_stderr(self) -> None:
        """Thread body: keep the last stderr lines, and the whole log in log_path when given."""
        assert self.proc is not None and self.proc.stderr is not None
        log = None
        try:
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                log = open(self.log_path, "w", encoding="utf-8")
            for line in self.proc.stderr:
                self._stderr.append(line.rstrip("\n"))
                if log is not None:
                    log.write(line)
                    log.flush()
        except (OSError, ValueError):
            pass
        finally:
            if log is not None:
                log.close()

    def read_lines(self, timeout: float = 0.0) -> list[str]:
        """Stdout lines available now (waiting up to timeout for the first one)."""
        lines: list[str] = []
        try:
            item = self._lines.get(timeout=timeout) if timeout > 0 else self._lines.get_nowait()
        except queue.Empty:
            return lines
        while True:
            if item is _EOF:
                self.stdout_closed = True
            else:
                lines.append(str(item))
            try:
                item = self._lines.get_nowait()
            except queue.Empty:
                return lines

    @property
    def returncode(self) -> Optional[int]:
        """Exit code once the process has ended, else None."""
        return None if self.proc is None else self.proc.poll()

    @property
    def finished(self) -> bool:
        """True when the process has exited and all its stdout has been read."""
        return self.stdout_closed and self.returncode is not None

    def stderr_tail(self) -> str:
        """The last lines the process wrote to stderr."""
        for t in self._threads[1:]:
            if self.returncode is not None:
                t.join(timeout=1.0)
        return "\n".join(self._stderr)

    def terminate(self, grace_s: float = 3.0) -> None:
        """Stop the process (and its process group): SIGTERM, then SIGKILL after grace_s."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        try:
            if os.name == "posix":
                os.killpg(p.pid, signal.SIGTERM)
            else:
                p.terminate()
            p.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            if os.name == "posix":
                os.killpg(p.pid, signal.SIGKILL)
            else:
                p.kill()
            p.wait(timeout=grace_s)
        except ProcessLookupError:
            pass


def backend_environment(backend_root: Path, base: Optional[dict] = None) -> dict:
    """Environment for the backend: its package importable, unbuffered, no Blender Python leaks."""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONHOME", None)
    env["PYTHONPATH"] = str(backend_root)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


class BackendRunner:
    """One `python -m backend reconstruct JOB --out OUT --json` run: start, poll or wait, cancel."""

    def __init__(self, python: str, job_dir: Path, out_dir: Path, backend_root: Path,
                 idle_timeout_s: Optional[float] = None, argv: Optional[Sequence[str]] = None,
                 extra_args: Sequence[str] = ()) -> None:
        self.python = python
        self.job_dir = Path(job_dir)
        self.out_dir = Path(out_dir)
        self.backend_root = Path(backend_root)
        self.idle_timeout_s = idle_timeout_s
        self.argv = list(argv) if argv else [
            python, "-m", "backend", "reconstruct", str(self.job_dir), "--out", str(self.out_dir), "--json"]
        self.argv += [str(a) for a in extra_args]
        self.parser = StreamParser()
        self.log_path = self.out_dir.parent / "backend.log"
        self.process = LineProcess(self.argv, cwd=self.backend_root,
                                   env=backend_environment(self.backend_root), log_path=self.log_path)
        self.started_at = 0.0
        self._cancelled = False
        self._hung = False
        self._outcome: Optional[RunOutcome] = None

    @property
    def state(self):
        """The folded ProgressState of the stream so far."""
        return self.parser.state

    def start(self) -> None:
        """Start the backend; raises BackendStartError with a hint when that fails."""
        if self.python and os.path.sep in self.python and not os.path.exists(self.python):
            raise BackendStartError(f"Backend Python not found: {self.python}",
                                    "Set 'Backend Python' in the add-on preferences, or use 'Set up backend'.")
        self.started_at = time.monotonic()
        self.parser.last_line_time = self.started_at
        self.process.start()

    def poll(self, timeout: float = 0.0) -> list[Event]:
        """Read whatever the backend has written; returns the new events (never blocks longer than timeout)."""
        events = []
        for line in self.process.read_lines(timeout):
            ev = self.parser.feed_line(line)
            if ev is not None:
                events.append(ev)
        if (self.idle_timeout_s is not None and not self.finished and self.process.returncode is None
                and time.monotonic() - self.parser.last_line_time > self.idle_timeout_s):
            self._hung = True
            self.process.terminate()
        return events

    @property
    def finished(self) -> bool:
        """True once the process has ended and its whole stream was read."""
        return self.process.finished

    def cancel(self) -> None:
        """Terminate the backend; the outcome becomes 'cancelled'."""
        self._cancelled = True
        self.process.terminate()

    def outcome(self) -> RunOutcome:
        """How the run ended (call once `finished` is True)."""
        if self._outcome is not None:
            return self._outcome
        rc = self.process.returncode
        tail = self.process.stderr_tail()
        st = self.parser.state
        if self._cancelled:
            out = RunOutcome("cancelled", "Reconstruction cancelled.", returncode=rc, stderr_tail=tail)
        elif self._hung:
            out = RunOutcome("hung", f"The backend wrote nothing for {self.idle_timeout_s:.0f} s and was stopped.",
                             "It may be stuck; see the system console for its log.", returncode=rc,
                             stderr_tail=tail)
        elif st.error_message is not None:
            hint = st.error_hint or explain_failure(tail, rc)
            if "No module named" in st.error_message:
                hint = explain_failure(st.error_message, rc)
            out = RunOutcome("error", st.error_message, hint, returncode=rc, stderr_tail=tail)
        elif rc == 0 and st.result is not None:
            out = RunOutcome("done", "Reconstruction finished.", result_path=self.out_dir / st.result,
                             returncode=rc, stderr_tail=tail)
        elif rc == 0:
            out = RunOutcome("crashed", "The backend exited without reporting a result.",
                             explain_failure(tail, rc), returncode=rc, stderr_tail=tail)
        else:
            out = RunOutcome("crashed", f"The backend stopped unexpectedly (exit code {rc}).",
                             explain_failure(tail, rc), returncode=rc, stderr_tail=tail)
        self._outcome = out
        return out

    def wait(self, on_event: Optional[Callable[[Event], None]] = None,
             should_cancel: Optional[Callable[[], bool]] = None, timeout_s: Optional[float] = None,
             poll_s: float = 0.1) -> RunOutcome:
        """Block until the run ends, calling on_event for each event; timeout_s cancels it as hung."""
        if self.process.proc is None:
            self.start()
        try:
            self._wait_loop(on_event, should_cancel, timeout_s, poll_s)
        except BaseException:
            self.cancel()
            raise
        return self.outcome()

    def _wait_loop(self, on_event: Optional[Callable[[Event], None]], should_cancel: Optional[Callable[[], bool]],
                   timeout_s: Optional[float], poll_s: float) -> None:
        """The body of wait(): poll until finished."""
        while not self.finished:
            for ev in self.poll(poll_s):
                if on_event is not None:
                    on_event(ev)
            if should_cancel is not None and should_cancel():
                self.cancel()
            if timeout_s is not None and time.monotonic() - self.started_at > timeout_s and not self.finished:
                self._hung = True
                self.idle_timeout_s = timeout_s
                self.process.terminate()


def default_python() -> str:
    """The interpreter running this code (the fallback backend Python)."""
    return sys.executable
