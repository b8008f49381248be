"""neuromoco.quant."""
