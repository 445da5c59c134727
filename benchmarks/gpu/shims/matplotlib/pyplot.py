"""Stand-in pyplot: figures draw nothing; imsave writes the image with Pillow."""
from __future__ import annotations

import numpy as np


class _Nothing:
    """Accepts any call, attribute or index and does nothing."""

    def __call__(self, *args, **kwargs) -> "_Nothing":
        return self

    def __getattr__(self, name: str) -> "_Nothing":
        return self

    def __getitem__(self, key) -> "_Nothing":
        return self

    def flatten(self) -> "_Nothing":
        return self


def subplots(*args, **kwargs) -> tuple[_Nothing, _Nothing]:
    """(figure, axes) that draw nothing."""
    return _Nothing(), _Nothing()


def imsave(path, image, **kwargs) -> None:
    """Write a float [0, 1] or uint8 image as PNG."""
    from PIL import Image
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    Image.fromarray(a).save(str(path))


def __getattr__(name: str) -> _Nothing:
    """show, savefig, close, figure, ...: do nothing."""
    return _Nothing()
