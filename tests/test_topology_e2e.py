"""End to end on a Cycles-rendered torus (16 views at 128x128): started from a genus-0 mesh that encloses it
(`initial_mesh`, its convex hull), the topology stage opens the hole and the result has genus 1."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from backend.mesh.metrics import genus, load_mesh
from backend.mesh.metrics import genus as mesh_genus

ROOT = Path(__file__).resolve().parents[1]


def enclosing_start(reference: Path, out: Path) -> Path:
    """The reference's convex hull grown 3 % about its centre: a genus-0 start mesh around the object."""
    v, f = load_mesh(reference)
    hull = trimesh.Trimesh(v, f).convex_hull
    centre = hull.vertices.mean(axis=0)
    hull.vertices = centre + 1.03 * (hull.vertices - centre)
    hull.export(out)
    return out


@pytest.mark.slow
def test_torus_from_a_genus_0_start_comes_back_with_genus_1(tmp_path: Path) -> None:
    from scenegen import render_job_subprocess

    job = render_job_subprocess(tmp_path / "job", mesh="torus", n_views=16, resolution=128, samples=4)
    start = enclosing_start(job / "reference.obj", tmp_path / "start.obj")
    assert mesh_genus(*load_mesh(start)) == 0
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "backend", "reconstruct", str(job), "--out", str(out),
                           "--iterations", "300", "--texture-size", "128", "--initial-mesh", str(start),
                           "--topology", "on", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    stages = [x["name"] for x in lines if x["type"] == "stage"]
    assert stages[stages.index("topology") - 1:stages.index("topology") + 2] == ["optimize", "topology", "optimize"]
    result = json.loads((out / "result.json").read_text())
    topo = result["topology"]
    print(f"topology {topo}, timings {result['timings_s']}")
    assert topo["ran"] and topo["genus_before"] == 0 and topo["genus_after"] == 1 and topo["accepted"]
    v, f = load_mesh(out / result["mesh"])
    assert genus(v, f) == 1  # welded by position: the OBJ's vertices are split at the UV seams
    ref_v, _ = load_mesh(job / "reference.obj")
    assert np.abs(v.max(axis=0) - ref_v.max(axis=0)).max() < 0.1 * np.ptp(ref_v, axis=0).max()
