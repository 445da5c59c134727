"""Point clouds to meshes: readers, normal estimation and orientation, screened Poisson surface and its steps."""
