"""Undo after Clean Up CAD Mesh restores the input exactly: real Blender (Debian's 3.4) with a window under Xvfb."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from window_env import require_window_tools

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.window]

SCRIPT = r'''
import json, sys
import bpy, bmesh
sys.path.insert(0, {root!r})
from blender_addon import ops_cleanup

def arrays(mesh):
    return ([tuple(round(c, 9) for c in v.co) for v in mesh.vertices], [tuple(p.vertices) for p in mesh.polygons])

for cls in ops_cleanup.CLASSES:
    bpy.utils.register_class(cls)
ops_cleanup.register_extra()
win = bpy.context.window_manager.windows[0]
bpy.ops.mesh.primitive_monkey_add()
obj = bpy.context.active_object
bm = bmesh.new()
bm.from_mesh(obj.data)
bmesh.ops.split_edges(bm, edges=list(bm.edges)[::3])
bmesh.ops.reverse_faces(bm, faces=list(bm.faces)[::5])
bm.to_mesh(obj.data)
name = obj.name
with bpy.context.temp_override(window=win, area=win.screen.areas[0]):
    bpy.ops.ed.undo_push(message="dirty input")
    before = arrays(bpy.data.objects[name].data)
    bpy.ops.photomesh.cleanup_cad_mesh("EXEC_DEFAULT", True, remesh=True, voxel_size=0.02)
    cleaned = arrays(bpy.data.objects[name].data)
    bpy.ops.ed.undo()
    after = arrays(bpy.data.objects[name].data)
result = {{"changed": cleaned != before, "restored": after == before,
           "meshes": len(bpy.data.meshes), "objects": len(bpy.data.objects)}}
with open({out!r}, "w") as fh:
    json.dump(result, fh)
bpy.ops.wm.quit_blender()
'''


def test_undo_restores_the_input_exactly(tmp_path) -> None:
    require_window_tools()
    blender, xvfb = shutil.which("blender"), shutil.which("xvfb-run")
    out = tmp_path / "undo.json"
    script = tmp_path / "undo.py"
    script.write_text(SCRIPT.format(root=str(ROOT), out=str(out)))
    proc = subprocess.run([xvfb, "-a", blender, "--factory-startup", "--python-exit-code", "1", "--python",
                           str(script)], capture_output=True, text=True, timeout=300)
    assert out.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["changed"], "the clean-up changed nothing: the test proves nothing"
    assert result["restored"], "undo did not restore the input exactly"
