"""Argument helpers shared by every ``nmoco`` subcommand: argparse types and the output probe.

Kept apart from :mod:`neuromoco.cli` so that the subcommands defined next to
the code they drive (``neuromoco.train.command``, ``neuromoco.data.command``)
and the pipeline functions use them without importing the command line back.
Imports only the standard library and the project's error types, so that
``nmoco --help`` stays instant.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hw_targets.errors import ConfigError

#: Exit code of every bad-input error, argparse usage errors included.
EXIT_BAD_INPUT = 2


@dataclass(frozen=True)
class PluggedCommand:
    """A subcommand defined next to the code it drives: a module with ``add_parser(sub)`` and ``run(args)``.

    Attributes:
        module: The module's dotted name; imported only when its subcommand is the one given.
        help: The one-line help ``nmoco --help`` lists, here so that listing imports nothing.
    """

    module: str
    help: str


#: The plugged subcommands, in the order ``nmoco --help`` lists them (after the built-in ones).
PLUGGED: dict[str, PluggedCommand] = {
    "data": PluggedCommand(
        "neuromoco.data.command", "describe a dataset (samples, classes, events) and optionally draw samples"),
    "train": PluggedCommand(
        "neuromoco.train.command", "pre-train (NeuroMoCo), fine-tune or linear-probe a spiking backbone"),
}


def check_writable(out: Path, flag: str) -> None:
    """Refuse, before any work, an output whose folder cannot take a new file.

    The probe creates and removes a temporary file, so it sees what permission
    bits alone do not (read-only or immutable folders, /proc, a full disk).

    Args:
        out: The file that will be written.
        flag: What set ``out`` (``--out``), named in the message.

    Raises:
        ConfigError: naming the flag, the path and the reason.
    """
    if not out.parent.is_dir():
        raise ConfigError(f"{flag} {out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise ConfigError(f"{flag} {out}: is a folder; give a file name")
    try:
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as exc:
        raise ConfigError(f"{flag} {out}: cannot write into {out.parent} ({exc.strerror or exc})") from None


def _int_at_least(text: str, minimum: int, expected: str) -> int:
    """``text`` as an int >= ``minimum``, else an argparse usage error saying ``expected``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse ``type`` for counts: an int > 0, else a one-line usage error."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse ``type`` for counts that may be zero (``--lava-samples 0`` skips Lava)."""
    return _int_at_least(text, 0, "an integer >= 0")


def fraction(text: str) -> float:
    """argparse ``type`` for shares such as ``--label-fraction``: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {value}")
    return value
