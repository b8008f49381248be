"""The project's exception hierarchy.

It lives in ``hw_targets`` because that package is the leaf of the import graph:
``export``, ``sims`` and ``neuromoco`` may all import it, while nothing here
imports them. Each error also subclasses the matching builtin so callers that
only know Python's exceptions still catch it.
"""

from __future__ import annotations


class NmocoError(Exception):
    """Base of every error the project raises on purpose; the CLI prints its message."""


class ConfigError(NmocoError, ValueError):
    """A configuration value, file or flag is wrong."""


class IRError(NmocoError, ValueError):
    """An integer network description is inconsistent (names the layer)."""


class TargetLimitError(NmocoError, ValueError):
    """A network does not fit a hardware target (names the layer and the rule)."""


class ExportError(NmocoError, ValueError):
    """A file could not be written or read in the requested format."""


class InputShapeError(ExportError):
    """A netx file starts with a synapse that does not say its input shape (lava-dl writes conv-first
    files without an input layer); the caller must give the shape."""


class SimulationError(NmocoError, RuntimeError):
    """A simulation could not be run on the given input."""


class MissingDependencyError(NmocoError, ImportError):
    """An optional package is not installed (names the package and the pip extra)."""


class DataError(NmocoError, ValueError):
    """A dataset folder or event file is missing or unreadable."""
