"""Mesh maths and evaluation: sampling, metrics, alignment, winding numbers, interior faces, fairing (numpy-first)."""
