"""Progress protocol: one flushed JSON object per line, exactly the DESIGN.md shapes."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from backend.runtime.errors import Cancelled
from backend.runtime.protocol import Reporter


class FlushCounter(io.StringIO):
    """A text stream that counts flushes."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_json_lines_match_design() -> None:
    out, err = FlushCounter(), io.StringIO()
    r = Reporter(stream=out, json_mode=True, log_stream=err)
    r.stage("visual_hull")
    r.progress("optimize", 120, 2000, {"mask": np.float32(0.25), "shading": float("nan")}, elapsed_s=14.2)
    r.preview("previews/mesh_000500.ply", 500)
    r.log("a log line")
    r.done("result.json")
    r.error("bad job", "fix it", view="cam_001")
    lines = [json.loads(s) for s in out.getvalue().splitlines()]
    assert lines == [
        {"type": "stage", "name": "visual_hull"},
        {"type": "progress", "stage": "optimize", "step": 120, "total": 2000,
         "losses": {"mask": 0.25, "shading": None}, "elapsed_s": 14.2},
        {"type": "preview", "mesh": "previews/mesh_000500.ply", "step": 500},
        {"type": "done", "result": "result.json"},
        {"type": "error", "message": "bad job", "hint": "fix it", "view": "cam_001"},
    ]
    assert out.flushes >= 5
    assert err.getvalue() == "a log line\n"


def test_non_tty_defaults_to_json_and_human_mode_is_not_json() -> None:
    out = io.StringIO()
    assert Reporter(stream=out).json_mode
    human = io.StringIO()
    r = Reporter(stream=human, json_mode=False)
    r.stage("optimize")
    r.progress("optimize", 50, 100, {"mask": 0.1}, elapsed_s=1.0)
    r.done("result.json")
    text = human.getvalue()
    assert "== optimize" in text and "50/100" in text and "#" * 15 in text and "done" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_cancel_flag_and_critical_section() -> None:
    r = Reporter(stream=io.StringIO(), json_mode=True)
    r.check_cancel()
    entered = False
    with pytest.raises(Cancelled):
        with r.critical():
            r.cancel()
            r.check_cancel()
            entered = True
    assert entered


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


POST = {"decimate": 1.0, "symmetry": 2.0, "uv": 3.0, "texture": 4.0, "write": 0.5}


def test_progress_time_left_includes_later_stages() -> None:
    clock = FakeClock()
    rep = Reporter(stream=io.StringIO(), json_mode=True, clock=clock)
    rep.stage("optimize")
    clock.now += 1.0
    rep.progress("optimize", 5, 10)
    clock.now += 1.0
    rep.progress("optimize", 6, 10)
    assert "eta_s" not in rep.lines[-1], "no estimate before expect()"
    rep.expect(POST)
    clock.now += 1.0
    rep.progress("optimize", 7, 10)
    assert rep.lines[-1]["eta_s"] == 2.0 / 2 * 3 + 10.5
    rep.stage("uv")
    rep.progress("uv", 0, 100)
    assert rep.lines[-1]["eta_s"] == 7.5
    rep.stage("write")
    rep.progress("write", 1, 1)
    assert rep.lines[-1]["eta_s"] == 0.0


def test_no_time_left_until_the_pace_is_known() -> None:
    """The first step includes numba's JIT compile: it must not be extrapolated to the whole stage."""
    clock = FakeClock()
    out = io.StringIO()
    rep = Reporter(stream=out, json_mode=True, clock=clock)
    rep.expect(POST)
    rep.stage("optimize")
    clock.now += 30.0  # step 1: compile
    rep.progress("optimize", 1, 2000)
    assert "eta_s" not in rep.lines[-1]
    clock.now += 0.1  # steps 2-5 at 25 ms each, the true pace
    rep.progress("optimize", 5, 2000)
    assert rep.lines[-1]["eta_s"] == round(0.1 / 4 * 1995 + 10.5, 1)
    assert "eta_s" not in json.loads(out.getvalue().splitlines()[1])
    rep.stage("texture")  # a stage with an estimate: the estimate until its own pace is known
    rep.progress("texture", 0, 12)
    clock.now += 5.0  # the first view (compile) took longer than the whole estimate
    rep.progress("texture", 1, 12)
    assert rep.lines[-1]["eta_s"] == 0.5
    clock.now += 0.2
    rep.progress("texture", 3, 12)
    assert rep.lines[-1]["eta_s"] == round(0.2 / 2 * 9 + 0.5, 1)


def test_human_bar_shows_no_time_until_the_pace_is_known() -> None:
    clock = FakeClock()
    human = io.StringIO()
    rep = Reporter(stream=human, json_mode=False, clock=clock)
    rep.expect(POST)
    rep.stage("optimize")
    clock.now += 30.0
    rep.progress("optimize", 1, 100)
    assert "left" not in human.getvalue()
    clock.now += 1.0
    rep.progress("optimize", 2, 100)
    assert human.getvalue().count("left") == 1 and "~108s left" in human.getvalue()


def test_a_cancel_before_the_critical_section_stops_it_from_starting() -> None:
    r = Reporter(stream=io.StringIO(), json_mode=True)
    r.cancel()  # as a signal handler whose exception was swallowed leaves it: only the flag
    entered = False
    with pytest.raises(Cancelled):
        with r.critical():
            entered = True
    assert not entered


def test_cancel_after_finish_is_inert() -> None:
    """Once the result folder is in place (finish) the run is done: neither the flag nor a signal stops it."""
    import os
    import signal

    r = Reporter(stream=io.StringIO(), json_mode=True)
    previous = signal.getsignal(signal.SIGTERM)
    r.install_signal_handlers()
    try:
        with pytest.raises(Cancelled):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):  # the handler runs between bytecodes
                pass
        r.cancelled.clear()
        with r.critical():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):
                pass
            r.finish()
        assert r.cancelled.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):
            pass
        r.check_cancel()
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_stage_list_covers_every_command() -> None:
    from backend.runtime.protocol import STAGES

    for name in ("load", "sfm", "masks", "visual_hull", "optimize", "outliers", "normals", "surface", "trim",
                 "decimate", "symmetry", "uv", "texture", "write"):
        assert name in STAGES
    assert STAGES.index("masks") < STAGES.index("visual_hull") and STAGES.index("trim") < STAGES.index("decimate")
