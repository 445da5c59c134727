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
    r.cancel()
    with pytest.raises(Cancelled):
        with r.critical():
            r.check_cancel()
            entered = True
    assert entered


def test_progress_time_left_includes_later_stages() -> None:
    import io
    import time

    from backend.runtime.protocol import Reporter

    rep = Reporter(stream=io.StringIO(), json_mode=True)
    rep.stage("optimize")
    rep.progress("optimize", 5, 10)
    assert "eta_s" not in rep.lines[-1], "no estimate before expect()"
    rep.expect({"decimate": 1.0, "symmetry": 2.0, "uv": 3.0, "texture": 4.0, "write": 0.5})
    time.sleep(0.2)
    rep.progress("optimize", 5, 10)
    eta = rep.lines[-1]["eta_s"]
    assert 10.5 + 0.15 <= eta <= 10.5 + 1.0, eta
    rep.stage("uv")
    rep.progress("uv", 0, 100)
    assert rep.lines[-1]["eta_s"] == 7.5
