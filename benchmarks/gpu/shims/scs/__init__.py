"""Stand-in for the `scs` solver on the GPU machine: importable (gpytoolbox imports it), unusable."""

STAND_IN = True


class SCS:
    """Raises: the benchmark pipelines never solve with SCS."""

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError("scs stand-in: the real scs package is not installed on this machine")
