"""Real datasets from a local folder: find the files, check them, split them, read samples.

Nothing is downloaded: the machines have no internet. When the files are not
where expected, one :class:`DataError` names the folder searched, the layout
expected (original release or tonic's re-export) and where the dataset is
published. Files that are truncated or have a broken header are skipped, each
with a warning naming it, and counted in :attr:`DatasetIndex.skipped`.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from numpy.typing import NDArray
import tonic.datasets

from hw_targets.errors import DataError
from neuromoco.data.cache import cache_dir, digest, save_npy
from neuromoco.data.events import check_file, clip_to_sensor, read_events, read_gesture_labels
from neuromoco.data.splits import cached_split

#: Held-out fraction per class where the dataset publishes no split (9:1, as Spikformer).
UNSPLIT_TEST_FRACTION = 0.1
#: DVS128 Gesture's published split: users 1-23 train, 24-29 test (when trials_to_*.txt are absent).
GESTURE_LAST_TRAIN_USER = 23
#: N-Caltech101's ATIS crop (spikingjelly ``n_caltech101.get_H_W``: 180 x 240); (W, H, P).
NCALTECH101_SENSOR = (240, 180, 2)

_DVS_CIFAR10_CLASSES = tuple(sorted(tonic.datasets.CIFAR10DVS.classes, key=tonic.datasets.CIFAR10DVS.classes.get))


@dataclass(frozen=True)
class Layout:
    """How a dataset sits on disk, for error messages.

    Attributes:
        title: Human name.
        expected: The folder layouts accepted under ``--data-root``.
        published: Where the dataset can be downloaded (on a machine with internet).
    """

    title: str
    expected: str
    published: str


LAYOUTS: dict[str, Layout] = {
    "nmnist": Layout(
        "N-MNIST",
        "Train/<digit>/<index>.bin and Test/<digit>/<index>.bin (the unzipped Train.zip/Test.zip), "
        "directly under it or under NMNIST/",
        "Mendeley Data 468j46mzdv (https://www.garrickorchard.com/datasets/n-mnist)",
    ),
    "ncaltech101": Layout(
        "N-Caltech101",
        "<class>/image_<NNNN>.bin folders (the unzipped Caltech101.zip), directly under it, "
        "under Caltech101/ or under NCALTECH101/Caltech101/",
        "Mendeley Data cy6cvx3ryv (https://www.garrickorchard.com/datasets/n-caltech101)",
    ),
    "dvs_cifar10": Layout(
        "DVS-CIFAR10",
        "one folder per class (" + ", ".join(_DVS_CIFAR10_CLASSES) + ") of AEDAT 2.0 .aedat recordings "
        "(the unzipped per-class archives) or tonic's .aedat4 re-export, directly under it or under CIFAR10DVS/",
        "figshare, Li et al. 2017 (https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671)",
    ),
    "dvs_gesture": Layout(
        "DVS128 Gesture",
        "DvsGesture/ with userNN_<lighting>.aedat (AEDAT 3.1) + userNN_<lighting>_labels.csv and "
        "trials_to_train.txt/trials_to_test.txt (the unpacked DvsGesture.tar.gz), or tonic's "
        "ibmGestureTrain/ and ibmGestureTest/ folders of .npy files",
        "IBM Research (https://research.ibm.com/interactive/dvsgesture/)",
    ),
}


@dataclass(frozen=True)
class SampleRef:
    """Where one sample's events are.

    Attributes:
        path: The event file.
        label: Class index.
        sample_id: Stable id (path relative to the dataset folder, ``#k`` for the k-th gesture).
        window_us: ``[start, end)`` microseconds within a DVS128 Gesture recording, else None.
        window_index: ``k`` of that window in the recording's labels file.
    """

    path: Path
    label: int
    sample_id: str
    window_us: tuple[int, int] | None = None
    window_index: int = 0


@dataclass(frozen=True)
class DatasetIndex:
    """A real dataset's files, checked and split.

    Attributes:
        name: Canonical dataset name.
        folder: The dataset folder found under the data root.
        class_names: One name per label.
        sensor_size: ``(W, H, P)``.
        train: Samples of the train split.
        test: Samples of the test split.
        skipped: Files left out as corrupt or truncated.
    """

    name: str
    folder: Path
    class_names: tuple[str, ...]
    sensor_size: tuple[int, int, int]
    train: tuple[SampleRef, ...]
    test: tuple[SampleRef, ...]
    skipped: int


def missing(name: str, where: str) -> DataError:
    """The one error for a data root that does not hold ``name``.

    Args:
        name: Canonical dataset name.
        where: What was wrong, naming the folder (``"no Train/ and Test/ folders in /data"``).
    """
    layout = LAYOUTS[name]
    return DataError(
        f"{layout.title} ({name}): {where}; expected {layout.expected}. "
        f"Nothing is downloaded on this machine; get it from {layout.published}"
    )


def _first_dir(root: Path, subdirs: Sequence[str], accept: Callable[[Path], bool]) -> Path | None:
    for sub in subdirs:
        candidate = root / sub if sub else root
        if candidate.is_dir() and accept(candidate):
            return candidate
    return None


def _checked(paths: Sequence[Path]) -> tuple[list[Path], int]:
    """Keep files that pass :func:`check_file`; warn once per skipped file."""
    good: list[Path] = []
    skipped = 0
    for path in paths:
        try:
            check_file(path)
        except DataError as exc:
            skipped += 1
            warnings.warn(f"skipping corrupt event file: {exc}", stacklevel=3)
        else:
            good.append(path)
    return good, skipped


def _labelled_files(folder: Path, class_dirs: Sequence[str], patterns: Sequence[str]) -> tuple[list[Path], list[int]]:
    paths: list[Path] = []
    labels: list[int] = []
    for label, cls in enumerate(class_dirs):
        sub = folder / cls
        found = sorted({p for pattern in patterns for p in sub.glob(pattern) if p.is_file()}) if sub.is_dir() else []
        paths.extend(found)
        labels.extend([label] * len(found))
    return paths, labels


def _refs(folder: Path, paths: Sequence[Path], labels: Sequence[int]) -> list[SampleRef]:
    return [SampleRef(p, int(lbl), p.relative_to(folder).as_posix()) for p, lbl in zip(paths, labels)]


def _seeded_split(name: str, folder: Path, refs: list[SampleRef], seed: int) -> tuple[list[SampleRef], list[SampleRef]]:
    labels = np.array([r.label for r in refs], dtype=np.int64)
    key = f"seed{seed}-{digest(str(folder.resolve()))}"
    train, test = cached_split(name, key, [r.sample_id for r in refs], labels, UNSPLIT_TEST_FRACTION, seed)
    return [refs[i] for i in train], [refs[i] for i in test]


def _nmnist(root: Path, seed: int) -> DatasetIndex:
    has_splits = lambda p: (p / "Train").is_dir() and (p / "Test").is_dir()  # noqa: E731
    folder = _first_dir(root, ("", "NMNIST", "N-MNIST", "nmnist"), has_splits)
    if folder is None:
        raise missing("nmnist", f"no Train/ and Test/ folders in {root}")
    digits = [str(d) for d in range(10)]
    splits: dict[str, list[SampleRef]] = {}
    skipped = 0
    for split, sub in (("train", "Train"), ("test", "Test")):
        paths, labels = _labelled_files(folder / sub, digits, ("*.bin",))
        good, bad = _checked(paths)
        skipped += bad
        keep = set(good)
        splits[split] = _refs(folder, *zip(*[(p, lbl) for p, lbl in zip(paths, labels) if p in keep])) if good else []
    if not splits["train"] and not splits["test"]:
        raise DataError(f"{folder}: no readable N-MNIST event file ({skipped} skipped as corrupt)")
    return DatasetIndex("nmnist", folder, tuple(tonic.datasets.NMNIST.classes), tuple(tonic.datasets.NMNIST.sensor_size),
                        tuple(splits["train"]), tuple(splits["test"]), skipped)


def _class_dirs(folder: Path, pattern: str) -> list[str]:
    return sorted(d.name for d in folder.iterdir() if d.is_dir() and any(d.glob(pattern)))


def _ncaltech101(root: Path, seed: int) -> DatasetIndex:
    folder = _first_dir(
        root,
        # The root itself last: any folder of folders with .bin files would pass as class folders.
        ("Caltech101", "NCALTECH101/Caltech101", "N-Caltech101/Caltech101", "ncaltech101/Caltech101", "ncaltech101", ""),
        lambda p: bool(_class_dirs(p, "*.bin")),
    )
    if folder is None:
        raise missing("ncaltech101", f"no class folders of .bin files in {root}")
    # tonic's NCALTECH101 has no class list: the class folders are the classes (sorted, fixed order).
    classes = _class_dirs(folder, "*.bin")
    return _unsplit("ncaltech101", folder, classes, ("*.bin",), NCALTECH101_SENSOR, seed)


def _dvs_cifar10(root: Path, seed: int) -> DatasetIndex:
    def has_classes(p: Path) -> bool:
        return any((p / c).is_dir() and (any((p / c).glob("*.aedat")) or any((p / c).glob("*.aedat4")))
                   for c in _DVS_CIFAR10_CLASSES)

    folder = _first_dir(root, ("", "CIFAR10DVS", "CIFAR10-DVS", "cifar10dvs", "DVS-CIFAR10"), has_classes)
    if folder is None:
        raise missing("dvs_cifar10", f"no class folders of .aedat/.aedat4 files in {root}")
    absent = [c for c in _DVS_CIFAR10_CLASSES if not (folder / c).is_dir()]
    if absent:
        warnings.warn(f"{folder}: DVS-CIFAR10 class folders missing: {', '.join(absent)}", stacklevel=3)
    sensor = tuple(tonic.datasets.CIFAR10DVS.sensor_size)
    return _unsplit("dvs_cifar10", folder, list(_DVS_CIFAR10_CLASSES), ("*.aedat", "*.aedat4"), sensor, seed)


def _unsplit(name: str, folder: Path, classes: list[str], patterns: tuple[str, ...], sensor: tuple[int, int, int],
             seed: int) -> DatasetIndex:
    paths, labels = _labelled_files(folder, classes, patterns)
    good, skipped = _checked(paths)
    if not good:
        raise DataError(f"{folder}: no readable {LAYOUTS[name].title} event file ({skipped} skipped as corrupt)")
    keep = set(good)
    refs = _refs(folder, *zip(*[(p, lbl) for p, lbl in zip(paths, labels) if p in keep]))
    train, test = _seeded_split(name, folder, refs, seed)
    return DatasetIndex(name, folder, tuple(classes), sensor, tuple(train), tuple(test), skipped)


_GESTURE_USER = re.compile(r"user(\d+)_")


def _gesture_split_lists(folder: Path) -> dict[str, set[str]] | None:
    lists = {}
    for split in ("train", "test"):
        path = folder / f"trials_to_{split}.txt"
        if not path.is_file():
            return None
        lists[split] = {Path(line.strip()).stem for line in path.read_text().splitlines() if line.strip()}
    return lists


def _dvs_gesture(root: Path, seed: int) -> DatasetIndex:
    classes = tuple(tonic.datasets.DVSGesture.classes)
    sensor = tuple(tonic.datasets.DVSGesture.sensor_size)
    original = _first_dir(
        root, ("", "DvsGesture", "DVSGesture", "dvs_gesture", "dvsgesture"), lambda p: any(p.glob("*_labels.csv"))
    )
    if original is not None:
        return _gesture_original(original, classes, sensor)
    reexport = _first_dir(root, ("", "DVSGesture", "dvsgesture"), lambda p: (p / "ibmGestureTrain").is_dir())
    if reexport is None:
        raise missing("dvs_gesture", f"no *_labels.csv recordings and no ibmGestureTrain/ folder in {root}")
    splits: dict[str, list[SampleRef]] = {}
    skipped = 0
    for split, sub in (("train", "ibmGestureTrain"), ("test", "ibmGestureTest")):
        paths = sorted((reexport / sub).glob("*/*.npy"))
        good, bad = _checked(paths)
        skipped += bad
        splits[split] = [SampleRef(p, int(p.stem), p.relative_to(reexport).as_posix()) for p in good if p.stem.isdigit()]
    if not splits["train"] and not splits["test"]:
        raise DataError(f"{reexport}: no readable DVS128 Gesture .npy file ({skipped} skipped as corrupt)")
    return DatasetIndex("dvs_gesture", reexport, classes, sensor, tuple(splits["train"]), tuple(splits["test"]), skipped)


def _gesture_original(folder: Path, classes: tuple[str, ...], sensor: tuple[int, int, int]) -> DatasetIndex:
    lists = _gesture_split_lists(folder)
    splits: dict[str, list[SampleRef]] = {"train": [], "test": []}
    skipped = 0
    for csv in sorted(folder.glob("*_labels.csv")):
        trial = csv.name[: -len("_labels.csv")]
        recording = folder / f"{trial}.aedat"
        if not recording.is_file():
            skipped += 1
            warnings.warn(f"skipping gesture trial {trial}: {csv} has no recording {recording.name} beside it", stacklevel=3)
            continue
        try:
            table = read_gesture_labels(csv)
            check_file(recording)
        except DataError as exc:
            skipped += 1
            warnings.warn(f"skipping corrupt event file: {exc}", stacklevel=3)
            continue
        if lists is not None:
            split = "train" if trial in lists["train"] else "test" if trial in lists["test"] else None
        else:
            user = _GESTURE_USER.match(trial)
            split = None if user is None else "train" if int(user.group(1)) <= GESTURE_LAST_TRAIN_USER else "test"
        if split is None:
            warnings.warn(f"{recording}: in neither trials_to_train.txt nor trials_to_test.txt; left out", stacklevel=3)
            continue
        for k, (cls, start, end) in enumerate(table.tolist()):
            splits[split].append(SampleRef(recording, cls - 1, f"{recording.name}#{k}", (start, end), k))
    if not splits["train"] and not splits["test"]:
        raise DataError(f"{folder}: no readable DVS128 Gesture recording ({skipped} skipped as corrupt)")
    return DatasetIndex("dvs_gesture", folder, classes, sensor, tuple(splits["train"]), tuple(splits["test"]), skipped)


_INDEXERS: dict[str, Callable[[Path, int], DatasetIndex]] = {
    "nmnist": _nmnist,
    "ncaltech101": _ncaltech101,
    "dvs_cifar10": _dvs_cifar10,
    "dvs_gesture": _dvs_gesture,
}


@lru_cache(maxsize=16)
def _index_cached(name: str, root: str, seed: int) -> DatasetIndex:
    return _INDEXERS[name](Path(root), seed)


def index_dataset(name: str, data_root: str | None, seed: int) -> DatasetIndex:
    """Find, check and split a real dataset (memoised per process).

    Args:
        name: Canonical name of a real dataset.
        data_root: The ``--data-root`` folder.
        seed: Split seed (datasets without a published split).

    Returns:
        The index.

    Raises:
        DataError: No root, a root that does not exist or does not hold the dataset
            (names the folder and the layout), or no readable file.
    """
    if data_root is None:
        raise missing(name, "no --data-root was given")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise missing(name, f"the data root {root} does not exist")
    return _index_cached(name, str(root.resolve()), seed)


class EventSource:
    """Events and labels of one split, by index (the interface framing reads).

    Attributes:
        sensor_size: ``(W, H, P)``.
    """

    sensor_size: tuple[int, int, int]

    def __len__(self) -> int:
        raise NotImplementedError

    def label(self, index: int) -> int:
        """Class of sample ``index``."""
        raise NotImplementedError

    def sample_id(self, index: int) -> str:
        """Stable id of sample ``index`` (cache file names)."""
        raise NotImplementedError

    def events(self, index: int) -> NDArray[Any]:
        """Events of sample ``index``, the project's convention, sorted by time."""
        raise NotImplementedError


class FileSource(EventSource):
    """Samples read from event files (one file, or one window of a gesture recording, each)."""

    def __init__(self, refs: Sequence[SampleRef], sensor_size: tuple[int, int, int]) -> None:
        """Wrap checked sample references.

        Args:
            refs: The samples, in split order.
            sensor_size: ``(W, H, P)``; events outside are dropped with a warning.
        """
        self.refs = tuple(refs)
        self.sensor_size = sensor_size

    def __len__(self) -> int:
        return len(self.refs)

    def label(self, index: int) -> int:
        return self.refs[index].label

    def sample_id(self, index: int) -> str:
        return self.refs[index].sample_id

    def events(self, index: int) -> NDArray[Any]:
        ref = self.refs[index]
        events = read_events(ref.path) if ref.window_us is None else _gesture_window(ref)
        return clip_to_sensor(events, self.sensor_size[0], self.sensor_size[1], ref.path)


def _gesture_window(ref: SampleRef) -> NDArray[Any]:
    """One gesture of a recording, from the cache; the first request cuts all of the recording's gestures.

    Reading a 50-70 MB recording for each of its ~12 gestures would make the first
    epoch 12 times slower, hence the cut-up copy (as tonic's re-export does).
    """
    stat = ref.path.stat()
    folder = cache_dir("dvs_gesture", digest(str(ref.path.resolve()), stat.st_size, stat.st_mtime_ns))
    target = folder / f"{ref.window_index}.npy"
    if target.is_file():
        cached: NDArray[Any] = np.load(target, allow_pickle=False)
        return cached
    events = read_events(ref.path)
    table = read_gesture_labels(ref.path.with_name(ref.path.stem + "_labels.csv"))
    wanted = None
    for k, (_, start, end) in enumerate(table.tolist()):
        lo, hi = np.searchsorted(events["t"], [start, end])
        save_npy(folder / f"{k}.npy", events[lo:hi])
        if k == ref.window_index:
            wanted = events[lo:hi]
    if wanted is None:
        raise DataError(f"{ref.path}: gesture #{ref.window_index} is no longer in its labels file")
    return wanted


class ArraySource(EventSource):
    """Samples held in memory as one event array with offsets (the built-in ``ndigits``)."""

    def __init__(
        self,
        events: NDArray[Any],
        offsets: NDArray[Any],
        labels: NDArray[Any],
        indices: NDArray[Any],
        sensor_size: tuple[int, int, int],
        prefix: str,
    ) -> None:
        """Select samples of an event set.

        Args:
            events: All samples' events, concatenated.
            offsets: ``(N + 1,)``; sample ``i`` is ``events[offsets[i]:offsets[i + 1]]``.
            labels: ``(N,)``.
            indices: Which samples (and in which order) this source holds.
            sensor_size: ``(W, H, P)``.
            prefix: Id prefix (dataset name and seed).
        """
        self._events = events
        self._offsets = offsets
        self._labels = labels
        self.indices = np.asarray(indices, dtype=np.int64)
        self.sensor_size = sensor_size
        self.prefix = prefix

    def __len__(self) -> int:
        return len(self.indices)

    def label(self, index: int) -> int:
        return int(self._labels[self.indices[index]])

    def sample_id(self, index: int) -> str:
        return f"{self.prefix}/{int(self.indices[index])}"

    def events(self, index: int) -> NDArray[Any]:
        i = int(self.indices[index])
        return self._events[self._offsets[i] : self._offsets[i + 1]]
