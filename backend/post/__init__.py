"""Post-processing of a reconstructed mesh: symmetry plane, UV map, texture baking."""
