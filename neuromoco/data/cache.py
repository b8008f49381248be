"""The data cache: where generated datasets, splits and framed tensors are kept.

The folder is ``$NMOCO_CACHE`` if set, else ``~/.cache/neuromoco``. Every file
is written to a temporary name and renamed into place, so DataLoader workers
that fill the cache at the same time never see half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hw_targets.errors import DataError

CACHE_ENV = "NMOCO_CACHE"


def cache_root() -> Path:
    """The cache folder (not created here)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "neuromoco"


def cache_dir(*parts: str) -> Path:
    """A sub-folder of the cache, created if needed.

    Raises:
        DataError: The folder cannot be created (names it and the variable to change).
    """
    path = cache_root().joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create cache folder {path} ({exc.strerror}); set {CACHE_ENV} to a writable folder") from None
    return path


def digest(*items: Any) -> str:
    """A short stable hash of JSON-serialisable items (cache keys)."""
    text = json.dumps(items, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _atomic(path: Path, write: Any, suffix: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_npy(path: Path, array: NDArray[Any]) -> None:
    """Write one array as ``.npy``, atomically."""
    _atomic(path, lambda handle: np.save(handle, array, allow_pickle=False), ".npy")


def save_npz(path: Path, **arrays: NDArray[Any]) -> None:
    """Write arrays as one uncompressed ``.npz`` (fast to load), atomically."""
    _atomic(path, lambda handle: np.savez(handle, **arrays), ".npz")


def save_json(path: Path, obj: Any) -> None:
    """Write JSON (indented, sorted keys), atomically."""
    _atomic(path, lambda handle: handle.write(json.dumps(obj, indent=1, sort_keys=True).encode()), ".json")
