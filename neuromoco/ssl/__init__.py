"""neuromoco.ssl."""
