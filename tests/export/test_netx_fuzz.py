"""Fuzzing the netx reader: every mutated file ends in a valid network or one clean ExportError.

The mutations and the property live in ``tests/netx_mutations.py`` (shared with
``benchmarks/fuzz_netx.py``, which runs thousands of cases, each in its own
process). Here hypothesis drives them in-process through ``st.randoms()``
(uniform choices; a failure prints the generator's seed and the edits made),
derandomized so every run checks the same cases; each wrapper test asserts how many cases ran, and the
per-case time limit (``CASE_SECONDS``) turns a hang-like slowdown into a failure.
The regression tests below pin what fuzzing found.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from export.examples import small_conv_network
from export.netx import MAX_DATASET_ELEMENTS, read_netx, write_netx
from hw_targets.errors import ExportError
from netx_mutations import (
    INTEL_FILES,
    check_case,
    mutate_bytes,
    mutate_structure,
    pick,
    write_seed_files,
)
from shared_data import shared_file

#: Cases per hypothesis test; the default suite runs their sum (>= 200).
STRUCT_OURS, STRUCT_INTEL, BYTES_ALL, STRUCT_GRAPHS = 120, 80, 120, 100
_FUZZ = settings(
    max_examples=1,  # replaced per test below
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Our writer's files and copies of Intel's files (in a temporary folder), after one warm-up simulation."""
    from sims.native import simulate

    folder = tmp_path_factory.mktemp("fuzz_seeds")
    paths = write_seed_files(folder)
    ours = [p for p in paths if not p.name.startswith("intel_")]
    intel = [p for p in paths if p.name.startswith("intel_")]
    graphs = [p for p in paths if p.name.startswith("graph_")]
    for path in ours[:2]:  # compile the simulator's kernels before any case is timed
        net = read_netx(path)
        simulate(net, np.zeros((2, *net.input_shape), dtype=np.int32), 2)
    graph_net = read_netx(graphs[0])  # and the graph runner's
    simulate(graph_net, np.zeros((2, *graph_net.input_shape), dtype=np.int32), 2)
    return {"ours": ours, "intel": intel, "graphs": graphs}


def _run(inner: Callable[..., None], examples: int, ran: list[Any]) -> None:
    given_test = settings(_FUZZ, max_examples=examples)(inner)
    given_test()
    assert len(ran) >= examples, f"only {len(ran)} cases ran"
    kinds = {outcome.kind for outcome in ran}
    assert kinds <= {"network", "refused"}


def _structural(seed_files: list[Path], scratch_root: Path, ran: list[Any]) -> Callable[..., None]:
    @given(data=st.data())
    def inner(data: st.DataObject) -> None:
        rng = data.draw(st.randoms(use_true_random=True), label="rng")
        scratch = Path(tempfile.mkdtemp(dir=scratch_root))
        path = scratch / "mutated.net"
        done = mutate_structure(rng, pick(rng, seed_files), path, scratch)
        data.draw(st.just(done), label="edits")
        ran.append(check_case(path, scratch))

    return inner


def test_structure_mutations_of_our_files(seeds: dict[str, list[Path]], tmp_path: Path) -> None:
    ran: list[Any] = []
    _run(_structural(seeds["ours"], tmp_path, ran), STRUCT_OURS, ran)


def test_structure_mutations_of_intel_files(seeds: dict[str, list[Path]], tmp_path: Path) -> None:
    for name in INTEL_FILES:
        shared_file("lava_netx", *name.split("/"))  # skips with the reason when ../shared is absent
    ran: list[Any] = []
    _run(_structural(seeds["intel"], tmp_path, ran), STRUCT_INTEL, ran)


def test_structure_mutations_of_graph_files(seeds: dict[str, list[Path]], tmp_path: Path) -> None:
    """Residual graphs in the graph layout, a third of their edits graph-specific (edges, names, header)."""
    assert len(seeds["graphs"]) >= 3
    ran: list[Any] = []
    _run(_structural(seeds["graphs"], tmp_path, ran), STRUCT_GRAPHS, ran)
    assert {outcome.kind for outcome in ran} == {"network", "refused"}  # some edits leave a valid graph


def test_byte_mutations(seeds: dict[str, list[Path]], tmp_path: Path) -> None:
    files = seeds["ours"] + seeds["intel"]
    blobs = [p.read_bytes() for p in files]
    ran: list[Any] = []

    @given(data=st.data())
    def inner(data: st.DataObject) -> None:
        rng = data.draw(st.randoms(use_true_random=True), label="rng")
        index = rng.randrange(len(blobs))
        mutated, what = mutate_bytes(rng, blobs[index], blobs)
        data.draw(st.just(f"{files[index].name}: {what}"), label="mutation")
        scratch = Path(tempfile.mkdtemp(dir=tmp_path))
        path = scratch / "mutated.net"
        path.write_bytes(mutated)
        ran.append(check_case(path, scratch))

    _run(inner, BYTES_ALL, ran)


# ----------------------------------------------------------------------------- what fuzzing found


def _good(tmp_path: Path) -> Path:
    return write_netx(small_conv_network(0, input_shape=(2, 10, 10), classes=4), tmp_path / "good.net")


def _refused(path: Path, match: str) -> str:
    with pytest.raises(ExportError, match=match) as info:
        read_netx(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_member_name_that_is_not_utf8(tmp_path: Path) -> None:
    # Found by byte flips: h5py returns such names as bytes; sorting them with str raised TypeError.
    path = _good(tmp_path)
    with h5py.File(path, "a") as f:
        f["layer/1/neuron"].create_dataset(b"\xff\xfe", data=1)
    _refused(path, r"layer 1 \(conv\): 'neuron': has a member whose name is not valid UTF-8")


def test_dataset_declaring_terabytes_is_refused_before_reading(tmp_path: Path) -> None:
    # Found by the structural fuzzer: reading it allocated 8 GiB (and more) of fill values.
    path = _good(tmp_path)
    with h5py.File(path, "a") as f:
        del f["layer/1/weight"]
        f["layer/1"].create_dataset("weight", shape=(1 << 40,), dtype="f4", chunks=(1024,), fillvalue=1.0)
    _refused(path, rf"'weight': declares {1 << 40} values .* limit of {MAX_DATASET_ELEMENTS}")


def test_data_kept_in_other_files_is_refused(tmp_path: Path) -> None:
    # External raw storage would read any file on the machine into the weights.
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(8 * 2 * 9, dtype=np.int32).tobytes())
    path = _good(tmp_path)
    with h5py.File(path, "a") as f:
        del f["layer/1/weight"]
        f["layer/1"].create_dataset("weight", shape=(8, 2, 3, 3), dtype="i4", external=[(str(secret), 0, 8 * 2 * 9 * 4)])
    _refused(path, r"'weight': keeps its data in other files")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as o:
        o.create_dataset("w", data=np.ones((8, 2, 3, 3), np.int32))
    path = _good(tmp_path)
    with h5py.File(path, "a") as f:
        del f["layer/1/weight"]
        f["layer/1"]["weight"] = h5py.ExternalLink(str(other), "/w")
    _refused(path, r"'weight': is an external link")


def test_broken_soft_link_is_one_clean_error(tmp_path: Path) -> None:
    path = _good(tmp_path)
    with h5py.File(path, "a") as f:
        del f["layer/1/weight"]
        f["layer/1"]["weight"] = h5py.SoftLink("/nowhere")
    _refused(path, r"layer 1 \(conv\): 'weight': cannot be opened")


def test_type_string_with_control_characters_stays_one_line(tmp_path: Path) -> None:
    path = _good(tmp_path)
    with h5py.File(path, "a") as f:
        del f["layer/1/type"]
        f["layer/1"].create_dataset("type", data=np.array([b"conv\nFAKE\x1b[2J"], "S20"))
    message = _refused(path, "unknown layer type")
    assert "\x1b" not in message


@pytest.mark.parametrize(
    "value,match",
    [
        (np.arange(3), "holds 3 values"),
        (np.float64(np.nan), "NaN or inf"),
        (np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]), "has type void"),
        (np.bytes_(b"\xff\xfe"), "not a UTF-8 string"),
    ],
)
def test_extra_neuron_keys_must_be_single_values(value: Any, match: str, tmp_path: Path) -> None:
    # Found by the round-trip check: arrays, NaN and compound extras came back changed or broke write_netx.
    path = _good(tmp_path)
    with h5py.File(path, "a") as f:
        f["layer/1/neuron"].create_dataset("refDelay", data=value)
    _refused(path, rf"'neuron/refDelay': .*{match}")


def test_extra_keys_round_trip(tmp_path: Path) -> None:
    path = _good(tmp_path)
    with h5py.File(path, "a") as f:
        for key, value in (("gradedSpike", False), ("refDelay", 1), ("tauRho", 0.5), ("note", "caf\u00e9")):
            f["layer/1/neuron"].create_dataset(key, data=value)
    net = read_netx(path)
    extras = dict(net.layers[0].neuron.extras)  # type: ignore[union-attr]
    assert extras == {"gradedSpike": False, "refDelay": 1, "tauRho": 0.5, "note": "caf\u00e9"}
    again = read_netx(write_netx(net, tmp_path / "again.net"))
    assert dict(again.layers[0].neuron.extras) == extras  # type: ignore[union-attr]


@pytest.mark.parametrize("value,match", [(1e300, "do not fit int32"), (np.nan, "NaN")])
def test_input_layer_transform_is_checked(value: float, match: str, tmp_path: Path) -> None:
    # Found by the round-trip check: int(1e300) passed the reader and write_netx failed with OverflowError.
    from export.ir import CubaNeuron, Dense, InputLayer, Network

    neuron = CubaNeuron(np.int32(0), np.int32(0), np.int32(10))
    net = Network((InputLayer("input0", (3,), neuron), Dense("dense1", (2,), np.ones((2, 3), np.int32), None, neuron)))
    path = write_netx(net, tmp_path / "in.net")
    with h5py.File(path, "a") as f:
        f["layer/0"].create_dataset("weight", data=value)
    _refused(path, rf"layer 0 \(input\): 'weight': .*{match}")


def test_conv_kernel_with_an_empty_axis(tmp_path: Path) -> None:
    path = _good(tmp_path)
    with h5py.File(path, "a") as f:
        del f["layer/1/weight"]
        f["layer/1"].create_dataset("weight", data=np.zeros((8, 2, 0, 3), np.int32))
    _refused(path, r"'weight': must be 4-D .* no empty axis")


def test_layer_larger_than_the_limit(tmp_path: Path) -> None:
    from export.ir import CubaNeuron, InputLayer, Network

    net = Network((InputLayer("input0", (2, 4, 4), CubaNeuron(np.int32(0), np.int32(0), np.int32(10))),))
    path = write_netx(net, tmp_path / "big.net")
    with h5py.File(path, "a") as f:
        del f["layer/0/shape"]
        f["layer/0"].create_dataset("shape", data=np.array([100000, 100000, 100]))
    _refused(path, r"'shape': \[100000, 100000, 100\] is more than the reader's limit")


def test_python_code_in_a_file_is_never_run(tmp_path: Path) -> None:
    """netx is HDF5 read through h5py: strings are compared, never evaluated, and pickles cannot occur."""
    marker = tmp_path / "PWNED"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    path = _good(tmp_path)
    with h5py.File(path, "a") as f:
        for target in ("layer/1/type", "layer/1/neuron/type"):
            del f[target]
            f.create_dataset(target, data=np.array([code.encode()], dtype=f"S{len(code)}"))
        f["layer/1/neuron"].create_dataset("note", data=code)
    _refused(path, "unknown layer type")
    assert not marker.exists()
    for module in sorted(Path(__file__).resolve().parents[2].joinpath("export").glob("netx*.py")):
        source = module.read_text()  # netx.py, the reader, its h5py boundary, the graph layout, the writer
        for forbidden in ("eval(", "exec(", "pickle", "literal_eval", "__import__", "allow_pickle=True"):
            assert forbidden not in source, f"{module.name}: {forbidden}"
    assert not os.path.exists(marker)


def test_conv_stride_beyond_the_limit(tmp_path: Path) -> None:
    # Found by byte flips in tinynet: stride (2, 14090242) is a valid 1-pixel convolution, but torch's
    # conv_transpose2d (the simulators' fan-out count) hung or crashed the process on it.
    path = _good(tmp_path)
    with h5py.File(path, "a") as f:
        del f["layer/2/stride"]
        f["layer/2"].create_dataset("stride", data=np.array([2, 14090242]))
    _refused(path, r"layer 2 \(conv\): 'stride': \[2, 14090242\] exceeds the reader's limit of 4096")
