"""ResultWriter: an unfinished run leaves no result folder; a committed one stays; an earlier result is kept."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from backend.runtime.result import ResultWriter, write_json

TRIANGLE = (np.eye(3), np.array([[0, 1, 2]]))


def test_abort_removes_the_folder_it_made_with_its_previews(tmp_path: Path) -> None:
    writer = ResultWriter(tmp_path / "out")
    writer.write_preview(10, *TRIANGLE)
    write_json(writer.path("result.json"), {"partial": True})
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_abort_keeps_an_earlier_result(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.json").write_text(json.dumps({"run": 1}))
    writer = ResultWriter(out)
    writer.write_preview(10, *TRIANGLE)
    writer.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == ["result.json"]
    assert json.loads((out / "result.json").read_text()) == {"run": 1}


def test_abort_after_commit_leaves_the_result(tmp_path: Path) -> None:
    writer = ResultWriter(tmp_path / "out")
    writer.write_preview(10, *TRIANGLE)
    write_json(writer.path("result.json"), {"run": 2})
    writer.commit()
    writer.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["previews", "result.json"]
