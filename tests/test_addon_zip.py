"""The built zip installs into bpy (extension and legacy add-on), reconstructs, and disables cleanly."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r'''
import json, math, os, sys
import bpy, addon_utils
zip_path, mode, work = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "extension":
    assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                    enable_on_install=True) == {"FINISHED"}
    module = "bl_ext.user_default.photomesh"
else:
    assert bpy.ops.preferences.addon_install(filepath=zip_path) == {"FINISHED"}
    addon_utils.enable("photomesh", default_set=True, handle_error=None)
    module = "photomesh"
report = {"enabled": module in bpy.context.preferences.addons}
paths = sys.modules[module + ".paths"]
report["backend_root"] = str(paths.backend_root())
report["user_dir"] = str(paths.user_dir())
scene = bpy.context.scene
bpy.ops.mesh.primitive_uv_sphere_add(radius=0.8, segments=24, ring_count=12)
for i in range(5):
    a = 2 * math.pi * i / 5
    cam = bpy.data.objects.new(f"Cam{i}", bpy.data.cameras.new(f"Cam{i}"))
    scene.collection.objects.link(cam)
    cam.location = (3.5 * math.cos(a), 3.5 * math.sin(a), 0.5 + (i % 2))
    cam.rotation_euler = (-cam.location).to_track_quat("-Z", "Y").to_euler()
for o in scene.objects:
    o.select_set(o.type == "CAMERA")
scene.render.engine = "CYCLES"
scene.render.resolution_x = scene.render.resolution_y = 48
s = scene.photomesh
s.image_source, s.quality, s.render_samples, s.job_name = "RENDER", "DRAFT", 2, "Zipped"
report["reconstruct"] = sorted(bpy.ops.photomesh.reconstruct(work_dir=work, iterations=3, preview_every=0))
obj = bpy.data.objects.get("Zipped")
report["faces"] = len(obj.data.polygons) if obj else 0
report["uv_layers"] = len(obj.data.uv_layers) if obj else 0
addon_utils.disable(module, default_set=True, handle_error=None)
report["disabled"] = module not in bpy.context.preferences.addons
report["leftover_types"] = [n for n in dir(bpy.types) if n.startswith("PHOTOMESH")]
report["leftover_props"] = [n for n in ("photomesh",) if hasattr(bpy.types.Scene, n)] + \
    [n for n in ("photomesh_job",) if hasattr(bpy.types.WindowManager, n)]
print("REPORT " + json.dumps(report))
sys.stdout.flush()
# bpy 4.2 as a module crashes in interpreter teardown after preferences.addon_install or any
# operator left registered (also with no add-on of ours); 5.0 does not. Everything is checked above.
os._exit(0)
'''


@pytest.fixture(scope="module")
def addon_zip(tmp_path_factory) -> Path:
    """The zip made by build_addon.py."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, str(ROOT / "build_addon.py"), "--out", str(out)],
                          capture_output=True, text=True, check=True)
    return Path(proc.stdout.strip())


def test_zip_layout(addon_zip: Path) -> None:
    names = zipfile.ZipFile(addon_zip).namelist()
    assert addon_zip.name.startswith("photomesh-") and addon_zip.suffix == ".zip"
    for required in ("photomesh/__init__.py", "photomesh/blender_manifest.toml", "photomesh/runner.py",
                     "photomesh/camera_math.py", "photomesh/backend/__init__.py", "photomesh/backend/__main__.py",
                     "photomesh/backend/requirements.txt", "photomesh/backend/mesh/outer_surface.py",
                     "photomesh/backend/mesh/winding.py", "photomesh/backend/mesh/meshmath.py"):
        assert required in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    manifest = zipfile.ZipFile(addon_zip).read("photomesh/blender_manifest.toml").decode()
    assert 'id = "photomesh"' in manifest and "SPDX:GPL-3.0-or-later" in manifest
    assert 'blender_version_min = "4.2.0"' in manifest
    permissions = manifest.split("[permissions]")[1]
    assert "\nfiles = " in permissions and "\nnetwork = " in permissions


def test_zipped_compare_math_finds_the_outer_surface_in_its_bundled_backend(addon_zip: Path, tmp_path: Path) -> None:
    """Compare Meshes' "Outer surface only" from the unpacked zip alone: no repository `backend` to fall back on."""
    zipfile.ZipFile(addon_zip).extractall(tmp_path)
    code = ("import numpy as np, photomesh.compare_math as cm\n"
            "v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)\n"
            "f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])\n"
            "both = np.concatenate([v, 0.2 + 0.1 * v]), np.concatenate([f, f + 4])\n"
            "seen, fraction = cm.reference_faces(*both, outer=True)\n"
            "print(cm.outer_surface.__name__, len(seen), round(fraction, 4))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["photomesh.backend.mesh.outer_surface", "4", "0.0099"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["extension", "legacy"])
def test_zip_installs_reconstructs_and_disables(addon_zip: Path, tmp_path: Path, mode: str) -> None:
    user = tmp_path / "user"
    env = {"BLENDER_USER_RESOURCES": str(user), "BLENDER_USER_CONFIG": str(user / "config"),
           "BLENDER_USER_SCRIPTS": str(user / "scripts"), "BLENDER_USER_EXTENSIONS": str(user / "extensions"),
           "BLENDER_USER_DATAFILES": str(user / "datafiles")}
    script = tmp_path / "install.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(addon_zip), mode, str(tmp_path / "work")],
                          capture_output=True, text=True, env={**os.environ, **env}, cwd=str(tmp_path),
                          timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT "):])
    assert report["enabled"]
    installed = Path(report["backend_root"])
    assert installed.is_relative_to(user) and (installed / "backend" / "__init__.py").is_file()
    assert Path(report["user_dir"]).is_relative_to(user)
    assert not Path(report["user_dir"]).is_relative_to(installed)
    assert report["reconstruct"] == ["FINISHED"], report
    assert report["faces"] > 100 and report["uv_layers"] == 1
    assert report["disabled"] and report["leftover_types"] == [] and report["leftover_props"] == []
    assert not any(installed.rglob("job.json"))
