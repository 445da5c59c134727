"""Neural deferred shading optimisation: shader, losses, the reconstruction pipeline."""
