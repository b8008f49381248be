"""Hardware target descriptions (data only; imports nothing of the project)."""

from hw_targets.base import Target, get_target, target_names

__all__ = ["Target", "get_target", "target_names"]
