"""Renders the scene from chosen cameras into RGBA PNGs (the 'Render from Cameras' image source)."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import bpy


def _engine_id(choice: str, scene) -> str:
    """The render engine identifier for 'CYCLES', 'EEVEE' or 'SCENE' in this Blender version."""
    if choice == "SCENE":
        return scene.render.engine
    if choice == "CYCLES":
        return "CYCLES"
    available = {item.identifier for item in bpy.types.RenderSettings.bl_rna.properties["engine"].enum_items}
    for name in ("BLENDER_EEVEE_NEXT", "BLENDER_EEVEE"):
        if name in available:
            return name
    return scene.render.engine


@contextmanager
def _saved_render_state(scene) -> Iterator[None]:
    """Restore the scene's camera and every render setting touched here on exit."""
    r = scene.render
    img = r.image_settings
    saved = {
        "camera": scene.camera, "engine": r.engine, "filepath": r.filepath,
        "film_transparent": r.film_transparent, "use_file_extension": r.use_file_extension,
        "file_format": img.file_format, "color_mode": img.color_mode, "color_depth": img.color_depth,
        "view_transform": scene.view_settings.view_transform, "look": scene.view_settings.look,
        "exposure": scene.view_settings.exposure, "gamma": scene.view_settings.gamma,
    }
    cycles = getattr(scene, "cycles", None)
    cycles_saved = {"samples": cycles.samples, "device": cycles.device} if cycles is not None else {}
    try:
        yield
    finally:
        scene.camera = saved["camera"]
        r.engine = saved["engine"]
        r.filepath = saved["filepath"]
        r.film_transparent = saved["film_transparent"]
        r.use_file_extension = saved["use_file_extension"]
        img.file_format = saved["file_format"]
        img.color_mode = saved["color_mode"]
        img.color_depth = saved["color_depth"]
        scene.view_settings.view_transform = saved["view_transform"]
        scene.view_settings.look = saved["look"]
        scene.view_settings.exposure = saved["exposure"]
        scene.view_settings.gamma = saved["gamma"]
        for key, value in cycles_saved.items():
            setattr(scene.cycles, key, value)


def render_cameras(scene, cameras: Sequence, names: Sequence[str], out_dir: Path, engine: str = "CYCLES",
                   samples: int = 32, progress: Optional[Callable[[int, int], None]] = None) -> dict[str, Path]:
    """Render scene from each camera into out_dir/<name>.png (RGBA, 8 bit, Standard view); name -> path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Path] = {}
    with _saved_render_state(scene):
        r = scene.render
        r.engine = _engine_id(engine, scene)
        r.film_transparent = True
        r.use_file_extension = True
        r.image_settings.file_format = "PNG"
        r.image_settings.color_mode = "RGBA"
        r.image_settings.color_depth = "8"
        scene.view_settings.view_transform = "Standard"
        scene.view_settings.look = "None"
        scene.view_settings.exposure = 0.0
        scene.view_settings.gamma = 1.0
        if r.engine == "CYCLES":
            scene.cycles.samples = int(samples)
            scene.cycles.device = "CPU" if bpy.app.background else scene.cycles.device
        for i, (cam, name) in enumerate(zip(cameras, names)):
            if progress is not None:
                progress(i, len(cameras))
            scene.camera = cam
            path = out_dir / f"{name}.png"
            r.filepath = str(path)
            bpy.ops.render.render(write_still=True, scene=scene.name)
            if not path.is_file():
                raise RuntimeError(f"rendering camera '{cam.name}' wrote no image")
            result[name] = path
    return result
