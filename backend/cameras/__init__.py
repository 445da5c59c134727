"""Cameras: OpenCV projection and normalisation (projection.py), pose maths and camera errors (pose.py)."""
