"""The rasterizer benchmark script runs end to end and writes its figures."""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_raster  # noqa: E402


def test_bench_raster_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "raster.json"
    result = bench_raster.main(["--faces", "300", "--res", "64", "48", "--repeats", "2", "--json", str(out)])
    data = json.loads(out.read_text())
    assert data == result
    assert data["faces"] >= 300 and data["width"] == 64 and data["height"] == 48
    assert 0.05 < data["coverage"] < 0.95
    assert set(data["median_ms"]) == {"rasterize", "interpolate", "antialias", "backward", "total", "cpu_time"}
    assert all(v > 0 for v in data["median_ms"].values())


def test_icosphere_is_closed() -> None:
    verts, faces = bench_raster.icosphere(1000)
    edges = {}
    for f in faces:
        for a, b in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0])):
            edges[(min(a, b), max(a, b))] = edges.get((min(a, b), max(a, b)), 0) + 1
    assert len(faces) >= 1000 and set(edges.values()) == {2}
    assert len(verts) - len(edges) + len(faces) == 2
