"""Stand-in for `meshzoo` on the GPU machine: importable; the reference's default start never calls it."""

STAND_IN = True


def octa_sphere(n: int):
    """Raises: only the reference's 'sphere16' initial mesh needs it (the benchmark uses 'vh32')."""
    raise RuntimeError("meshzoo stand-in: octa_sphere is not available; use the visual-hull start")
