"""Importing Lava 0.10 / lava-dl 0.6 cleanly on Python 3.10 and 3.11, with one simulator fix.

Lava 0.10 declares Python < 3.11. On 3.11 ``import lava`` fails in
``lava/magma/compiler/var_model.py``: its ``CoreEncoder``, ``ChipEncoder`` and
``AxonEncoder`` dataclasses use ``ByteEncoder()`` instances as field defaults,
and since Python 3.11 dataclasses refuse any default whose class is unhashable
(a plain ``@dataclass`` sets ``__hash__ = None``). We fix that at import time,
without touching site-packages, and only when the running Lava needs it.

Lava 0.10's Python conv models (``lava.proc.conv.models.AbstractPyConvModel``)
keep the ``groups`` Var as ``int8``: a conv with 128 or more groups (a depthwise
conv over 128+ channels, such as ``sew_resnet18_loihi``'s 224-channel average
pool) is run with ``groups`` wrapped (512 -> 0, 128 -> -128), and the scipy conv
it uses then loops over no group and sends all-zero currents, silently.
:func:`widen_conv_groups` declares that Var ``int32`` in the Python models only
(the ``Conv`` process, its arguments and what a Loihi 2 compiler is given are
unchanged); every conv with fewer than 128 groups runs exactly as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.abc
import importlib.machinery
import io
import logging
import sys
import warnings
from types import ModuleType
from typing import Any, Iterator, Sequence

from hw_targets.errors import MissingDependencyError

_TARGET_MODULE = "lava.magma.compiler.var_model"


class _HashableByteEncoderLoader(importlib.abc.Loader):
    """Runs ``var_model`` with a ``dataclass`` that gives ``ByteEncoder`` a hash."""

    def __init__(self, wrapped: importlib.abc.Loader) -> None:
        self._wrapped = wrapped

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._wrapped.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        original = dataclasses.dataclass

        def patched(cls: Any = None, /, **kwargs: Any) -> Any:
            def wrap(c: type) -> type:
                made: type = original(c, **kwargs)
                # The one class Lava uses as a default value: make it hashable
                # (by identity) so 3.11's mutable-default check accepts it.
                if made.__name__ == "ByteEncoder" and made.__hash__ is None:
                    made.__hash__ = object.__hash__
                return made

            return wrap if cls is None else wrap(cls)

        dataclasses.dataclass = patched
        try:
            self._wrapped.exec_module(module)
        finally:
            dataclasses.dataclass = original


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _HashableByteEncoderLoader(spec.loader)
        return spec


def _install_hook() -> None:
    if sys.version_info < (3, 11) or _TARGET_MODULE in sys.modules:
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence lava-dl's import-time prints and warnings (slayer, cv2 probing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield


@contextlib.contextmanager
def _tolerant_start_method() -> Iterator[None]:
    """Let Lava's import-time ``multiprocessing.set_start_method('fork')`` succeed.

    Lava calls it unconditionally, which raises "context has already been set"
    once anything in the process has fixed the start method (a DataLoader, a
    ``get_start_method()`` call). Asking again for the method already in force
    is a no-op here; a different one is set with ``force=True``, because Lava's
    runtime needs ``fork``.
    """
    import multiprocessing

    original = multiprocessing.set_start_method

    def tolerant(method: str | None, force: bool = False) -> None:
        current = multiprocessing.get_start_method(allow_none=True)
        if current is None or force:
            original(method, force=force)
        elif current != method:
            original(method, force=True)

    multiprocessing.set_start_method = tolerant
    try:
        yield
    finally:
        multiprocessing.set_start_method = original


def import_netx() -> ModuleType:
    """Import ``lava.lib.dl.netx`` (and Lava itself), fixed for Python 3.11 and quiet.

    Raises:
        MissingDependencyError: if lava-nc or lava-dl is not installed.
    """
    _install_hook()
    try:
        with _quiet(), _tolerant_start_method():
            import lava.lib.dl.netx as netx  # noqa: PLC0415
        logging.getLogger("lava").setLevel(logging.ERROR)
        widen_conv_groups()
    except ImportError as exc:
        raise MissingDependencyError(
            f"Lava is not importable ({exc}); install it with `make .venv` "
            "(lava-nc 0.10.0 and lava-dl 0.6.0, see tools/install_lava.sh)"
        ) from None
    return netx  # type: ignore[no-any-return]


def widen_conv_groups() -> None:
    """Declare the Python conv models' ``groups`` Var ``int32`` instead of Lava 0.10's ``int8`` (see above).

    Idempotent; a Lava whose models already keep ``groups`` wider than 8 bits is left alone.
    """
    import numpy as np  # noqa: PLC0415
    from lava.magma.core.model.py.type import LavaPyType  # noqa: PLC0415
    from lava.proc.conv import models  # noqa: PLC0415

    declared = models.AbstractPyConvModel.groups
    if np.dtype(declared.d_type).itemsize < 4:
        models.AbstractPyConvModel.groups = LavaPyType(np.ndarray, np.int32, precision=32)


def lava_available() -> bool:
    """True when Lava and lava-dl import (with the 3.11 fix)."""
    try:
        import_netx()
    except MissingDependencyError:
        return False
    return True
