"""Writing an output file so that nothing is ever left half-written.

Used by every writer of the project's files (netx, simulation results): the
content goes to a temporary file beside the target, which gets the permissions
a new file would get under the umask and is renamed over the target only once
complete; on any failure the temporary file is removed and the target is
untouched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def default_mode() -> int:
    """The permissions a new file gets under the current umask (mkstemp's are 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_output(path: str | os.PathLike[str], error: type[Exception], suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary path to write; on success it replaces ``path``.

    Args:
        path: the file to (re)write.
        error: the project error raised, naming the file, when the folder is missing or
            the file cannot be written (``ExportError``, ``SimulationError``).
        suffix: the temporary file's suffix (some writers choose their format by it).

    Raises:
        error: the folder does not exist, or writing or renaming failed.
    """
    out = Path(path)
    if not out.parent.is_dir():
        raise error(f"{out}: folder {out.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}-", suffix=suffix, dir=out.parent)
    except OSError as exc:
        raise error(f"{out}: cannot write into {out.parent} ({exc.strerror})") from None
    os.close(fd)
    try:
        os.chmod(tmp, default_mode())
        yield tmp
        os.replace(tmp, out)
    except OSError as exc:
        raise error(f"{out}: cannot write ({exc})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
