"""Photos to cameras: photo checks and structure from motion (pycolmap) for `python -m backend photos`."""
