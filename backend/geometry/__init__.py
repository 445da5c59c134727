"""Pure mesh functions: visual hull, guarded remeshing, mesh operations."""
