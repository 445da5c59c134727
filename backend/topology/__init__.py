"""The topology stage: a signed distance grid whose zero level set may change genus (MeshSDF-style)."""
