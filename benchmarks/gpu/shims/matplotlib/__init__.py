"""Stand-in for matplotlib on the GPU machine: the reference's debug figures are skipped."""

STAND_IN = True
