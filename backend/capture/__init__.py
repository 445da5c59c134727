"""Photo captures: structure from motion, the object's frame and its masks."""
