"""BackendRunner and StreamParser driven by real subprocesses of small scripts that print streams."""
from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

from blender_addon.protocol_parser import StreamParser, format_seconds, parse_line
from blender_addon.runner import BackendRunner, BackendStartError, explain_failure


def _script(tmp_path: Path, body: str) -> list[str]:
    """argv running a Python script with the given body."""
    path = tmp_path / "fake_backend.py"
    path.write_text("import json, sys, time\n" + textwrap.dedent(body))
    return [sys.executable, "-u", str(path)]


def _runner(tmp_path: Path, body: str, **kw) -> BackendRunner:
    """A runner whose process is the script instead of the real backend."""
    out = tmp_path / "out"
    return BackendRunner(sys.executable, tmp_path / "job", out, tmp_path, argv=_script(tmp_path, body), **kw)


GOOD = """
def emit(o): print(json.dumps(o), flush=True)
emit({"type": "stage", "name": "visual_hull"})
emit({"type": "stage", "name": "optimize"})
for s in (10, 20):
    emit({"type": "progress", "stage": "optimize", "step": s, "total": 40,
          "losses": {"mask": 0.5 / s, "shading": 0.1}, "elapsed_s": s / 10})
emit({"type": "preview", "mesh": "previews/mesh_000020.ply", "step": 20})
print("some stray text", flush=True)
print("{not json", flush=True)
print('{"type": "unknown"}', flush=True)
print("[1, 2]", flush=True)
sys.stderr.write("log line\\n")
emit({"type": "done", "result": "result.json"})
"""


def test_parse_line_rejects_garbage() -> None:
    assert parse_line("hello") is None
    assert parse_line("{bad json") is None
    assert parse_line('{"type": "nope"}') is None
    assert parse_line("[]") is None
    ev = parse_line('  {"type": "stage", "name": "load"}  ')
    assert ev is not None and ev.type == "stage"


def test_parser_state_and_eta() -> None:
    p = StreamParser()
    p.feed_text('{"type": "stage", "name": "optimize"}\n'
                '{"type": "progress", "stage": "optimize", "step": 50, "total": 200, '
                '"losses": {"mask": 0.25}, "elapsed_s": 10}\nnoise\n')
    st = p.state
    assert st.stage == "optimize" and st.step == 50 and st.total == 200
    assert abs(st.fraction - 0.25) < 1e-9
    assert st.eta_s is None, "no time left before the backend knows the pace"
    assert st.losses_text() == "mask 0.25"
    assert st.garbage_lines == 1
    p.feed_line('{"type": "progress", "step": "x", "total": null}')
    assert p.state.step == 50 and p.state.total == 200
    assert format_seconds(65) == "1m 05s" and format_seconds(None) == "?"


def test_backend_time_left_covers_the_whole_run() -> None:
    p = StreamParser()
    p.feed_text('{"type": "progress", "stage": "optimize", "step": 50, "total": 200, "elapsed_s": 10, '
                '"eta_s": 42.5}\n')
    assert p.state.eta_s == 42.5
    p.feed_text('{"type": "stage", "name": "uv"}\n{"type": "progress", "stage": "uv", "step": 10, "total": 100, '
                '"elapsed_s": 20, "eta_s": 7}\n')
    assert p.state.eta_s == 7.0 and abs(p.state.fraction - 0.1) < 1e-9
    p.feed_text('{"type": "stage", "name": "texture"}\n{"type": "progress", "stage": "texture", "step": 1, '
                '"total": 12, "elapsed_s": 25}\n')
    assert p.state.eta_s is None, "a line without eta_s: the time left is unknown again"


def test_good_stream_with_garbage(tmp_path: Path) -> None:
    r = _runner(tmp_path, GOOD)
    seen: list[str] = []
    out = r.wait(on_event=lambda ev: seen.append(ev.type), timeout_s=30)
    assert out.status == "done", out
    assert out.result_path == tmp_path / "out" / "result.json"
    assert seen == ["stage", "stage", "progress", "progress", "preview", "done"]
    assert r.state.stages_seen == ["visual_hull", "optimize"]
    assert r.state.preview_mesh == "previews/mesh_000020.ply" and r.state.preview_step == 20
    assert r.state.garbage_lines == 4
    assert "log line" in out.stderr_tail
    assert (tmp_path / "backend.log").read_text(encoding="utf-8") == "log line\n"


def test_error_event_and_nonzero_exit(tmp_path: Path) -> None:
    r = _runner(tmp_path, """
print(json.dumps({"type": "stage", "name": "load"}), flush=True)
print(json.dumps({"type": "error", "message": "view cam_003: mask is empty", "hint": "check the alpha"}), flush=True)
sys.exit(2)
""")
    out = r.wait(timeout_s=30)
    assert out.status == "error" and not out.ok
    assert out.message == "view cam_003: mask is empty"
    assert out.hint == "check the alpha"
    assert out.returncode == 2


def test_crash_without_done(tmp_path: Path) -> None:
    r = _runner(tmp_path, """
print(json.dumps({"type": "stage", "name": "optimize"}), flush=True)
raise RuntimeError("boom in the middle")
""")
    out = r.wait(timeout_s=30)
    assert out.status == "crashed"
    assert out.returncode == 1
    assert "boom in the middle" in out.hint
    assert "exit code 1" in out.message


def test_clean_exit_without_done(tmp_path: Path) -> None:
    r = _runner(tmp_path, 'print(json.dumps({"type": "stage", "name": "load"}))\n')
    out = r.wait(timeout_s=30)
    assert out.status == "crashed" and out.returncode == 0
    assert "without reporting a result" in out.message


def test_missing_torch_hint(tmp_path: Path) -> None:
    r = _runner(tmp_path, "import torch_that_is_not_there as torch\n")
    out = r.wait(timeout_s=30)
    assert out.status == "crashed"
    assert "torch_that_is_not_there" in out.hint
    assert "Set up backend" in explain_failure("ModuleNotFoundError: No module named 'torch'", 1)


def test_hung_process_is_stopped(tmp_path: Path) -> None:
    r = _runner(tmp_path, """
print(json.dumps({"type": "stage", "name": "optimize"}), flush=True)
time.sleep(600)
""", idle_timeout_s=1.0)
    t0 = time.monotonic()
    out = r.wait(timeout_s=60)
    assert out.status == "hung"
    assert time.monotonic() - t0 < 20
    assert r.process.returncode is not None


def test_sigterm_ignoring_process_is_killed(tmp_path: Path) -> None:
    r = _runner(tmp_path, """
import signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(json.dumps({"type": "stage", "name": "optimize"}), flush=True)
while True:
    time.sleep(0.1)
""")
    r.start()
    deadline = time.monotonic() + 20
    while r.state.stage != "optimize" and time.monotonic() < deadline:
        r.poll(0.1)
    t0 = time.monotonic()
    r.process.terminate(grace_s=1.0)
    assert r.process.returncode is not None
    assert time.monotonic() - t0 < 10


def test_cancel_from_poll_loop(tmp_path: Path) -> None:
    r = _runner(tmp_path, """
for i in range(100000):
    print(json.dumps({"type": "progress", "stage": "optimize", "step": i, "total": 100000}), flush=True)
    time.sleep(0.01)
""")
    r.start()
    deadline = time.monotonic() + 20
    while r.state.step < 5 and time.monotonic() < deadline:
        r.poll(0.05)
    assert r.state.step >= 5
    r.cancel()
    while not r.finished:
        r.poll(0.05)
    out = r.outcome()
    assert out.status == "cancelled"
    assert out.returncode is not None and out.returncode != 0


def test_cancel_via_wait_callback(tmp_path: Path) -> None:
    r = _runner(tmp_path, """
while True:
    print(json.dumps({"type": "progress", "stage": "optimize", "step": 1, "total": 2}), flush=True)
    time.sleep(0.05)
""")
    calls = {"n": 0}

    def should_cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    out = r.wait(should_cancel=should_cancel, timeout_s=30)
    assert out.status == "cancelled"


def test_missing_python_path(tmp_path: Path) -> None:
    r = BackendRunner(str(tmp_path / "no" / "python"), tmp_path, tmp_path / "out", tmp_path)
    try:
        r.start()
    except BackendStartError as exc:
        assert "not found" in exc.message
        assert "preferences" in exc.hint
    else:
        raise AssertionError("start() should fail for a missing interpreter")


def test_backend_environment_imports_backend_root(tmp_path: Path) -> None:
    pkg = tmp_path / "backend"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(
        "import json, os, sys\n"
        "print(json.dumps({'type': 'done', 'result': 'result.json', 'argv': sys.argv[1:], 'cwd': os.getcwd()}))\n")
    r = BackendRunner(sys.executable, tmp_path / "job", tmp_path / "out", tmp_path)
    out = r.wait(timeout_s=30)
    assert out.status == "done", out
    data = r.parser.events[-1].data
    assert data["argv"] == ["reconstruct", str(tmp_path / "job"), "--out", str(tmp_path / "out"), "--json"]
    assert Path(data["cwd"]).resolve() == tmp_path.resolve()
    assert json.loads(json.dumps(data))["type"] == "done"


def test_exception_in_callback_stops_the_process(tmp_path: Path) -> None:
    r = _runner(tmp_path, """
while True:
    print(json.dumps({"type": "stage", "name": "optimize"}), flush=True)
    time.sleep(0.05)
""")

    def boom(ev) -> None:
        raise KeyboardInterrupt

    try:
        r.wait(on_event=boom, timeout_s=30)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the interrupt should propagate")
    assert r.process.returncode is not None
