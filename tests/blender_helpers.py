"""Helpers for the tests that run the add-on in bpy (imported only by those, so bpy is there)."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import ModuleType

import bpy  # noqa: I001 - bpy first: it makes addon_utils importable
import addon_utils
import pytest

ADDON = "blender_addon"


@pytest.fixture(scope="module", autouse=True)
def addon() -> Iterator[None]:
    """The add-on enabled for the tests of each module that imports this fixture."""
    addon_utils.enable(ADDON, default_set=True, handle_error=None)
    yield
    addon_utils.disable(ADDON, default_set=True, handle_error=None)


def registered_scene(classes: Iterable[type], extra_attr: str, ops: ModuleType) -> Iterator[bpy.types.Scene]:
    """Fixture body: a factory-fresh, empty scene with `classes` and `ops`'s Scene properties registered."""
    bpy.ops.wm.read_factory_settings()
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    mine = [c for c in classes if not getattr(c, "is_registered", False)]
    for cls in mine:
        bpy.utils.register_class(cls)
    extra = not hasattr(bpy.types.Scene, extra_attr)
    if extra:
        ops.register_extra()
    yield bpy.context.scene
    if extra:
        ops.unregister_extra()
    for cls in reversed(mine):
        bpy.utils.unregister_class(cls)


def add_mesh(name: str, v: Iterable, f: Iterable) -> bpy.types.Object:
    """A mesh object from vertex and face lists or arrays, linked to the scene."""
    me = bpy.data.meshes.new(name)
    me.from_pydata([tuple(map(float, p)) for p in v], [], [list(map(int, x)) for x in f])
    obj = bpy.data.objects.new(name, me)
    bpy.context.scene.collection.objects.link(obj)
    return obj
