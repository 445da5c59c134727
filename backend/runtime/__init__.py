"""Process plumbing: errors, the progress protocol, killable workers, the atomic result writer; imports nothing else of backend."""
