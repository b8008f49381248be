"""Sigma-delta netx files the reader must refuse (or warn about): one line naming file, layer, field."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

from export.examples import small_sdnn_network
from export.ir import Dense, Network, SigmaDeltaNeuron
from export.netx import read_netx, write_netx
from hw_targets.errors import ExportError, IRError


@pytest.fixture()
def sdnn_file(tmp_path: Path) -> Path:
    return write_netx(small_sdnn_network(0), tmp_path / "sdnn.net")


def _set(key: str, value: object) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        if key in f:
            del f[key]
        f.create_dataset(key, data=value)
    return edit


def _delete(key: str) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        del f[key]
    return edit


def _cuba_neuron_at(index: int) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        group = f[f"layer/{index}/neuron"]
        for key in list(group):
            del group[key]
        group.create_dataset("type", data=np.array([b"CUBA"], dtype="S10"))
        for key, value in (("iDecay", 0), ("vDecay", 4096), ("vThMant", 10)):
            group.create_dataset(key, data=value)
    return edit


CASES: dict[str, tuple[Callable[[h5py.File], None], str]] = {
    "threshold missing": (_delete("layer/1/neuron/vThMant"), r"layer 1 \(conv\): 'vThMant'"),
    "threshold per channel": (_set("layer/1/neuron/vThMant", np.arange(8)),
                              r"layer 1 \(conv\): 'neuron/vThMant': must be a scalar for SDNN neurons"),
    "threshold negative": (_set("layer/2/neuron/vThMant", -3), r"layer 2 \(conv\).*'v_th_mant'.*outside"),
    "messageBits": (_set("layer/4/neuron/messageBits", 16), r"layer 4 \(dense\): 'neuron/messageBits'"),
    "bias on the Sigma readout": (_set("layer/5/bias", np.ones(10, np.float32)),
                                  r"layer 'dense5' \(#5, dense\): field 'bias' on a sigma_output layer"),
    "sigma_output on the input layer": (_set("layer/0/neuron/sigma_output", True),
                                        r"layer 'input0' \(#0, input\): field 'sigma_output' on an input layer"),
    "two spike_exp values": (_set("layer/2/neuron/spikeExp", 4), r"'spike_exp'/'state_exp'.*one spike_exp per network"),
    "spike_exp out of range": (_set("layer/2/neuron/spikeExp", 9), r"layer 2 \(conv\).*'spike_exp' must be an integer in \[0, 7\]"),
    "CUBA layer among SDNN ones": (_cuba_neuron_at(4), r"a CUBA neuron in a sigma-delta network"),
    "dense without a neuron": (_delete("layer/4/neuron"), r"netx's default CUBA integrator \(no neuron\) in a sigma-delta"),
    "type not a string": (_set("layer/1/neuron/type", 5), r"layer 1 \(conv\): 'neuron/type'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_sdnn_files_name_layer_and_field(case: str, sdnn_file: Path) -> None:
    edit, pattern = CASES[case]
    with h5py.File(sdnn_file, "a") as f:
        edit(f)
    with pytest.raises(ExportError, match=pattern) as info:
        read_netx(sdnn_file)
    assert str(sdnn_file) in str(info.value) and "\n" not in str(info.value)


def test_foreign_activation_is_kept_with_a_warning(sdnn_file: Path, tmp_path: Path) -> None:
    """netx ignores 'activation' (Lava's SigmaDelta applies ReLU): kept for the round trip, warned."""
    with h5py.File(sdnn_file, "a") as f:
        del f["layer/1/neuron/activation"]
        f["layer/1/neuron"].create_dataset("activation", data="tanh")
        f["layer/1/neuron"].create_dataset("gradedSpike", data=True)
    with pytest.warns(UserWarning, match="'neuron/activation' is 'tanh'; netx ignores it"):
        net = read_netx(sdnn_file)
    again = write_netx(net, tmp_path / "again.net")
    with h5py.File(again) as f:
        assert f["layer/1/neuron/activation"][()] == b"tanh"
        assert bool(f["layer/1/neuron/gradedSpike"][()])


def test_sigma_output_counts_by_presence(sdnn_file: Path) -> None:
    """netx checks ``'sigma_output' in neuron``: a stored False still builds a Sigma."""
    with h5py.File(sdnn_file, "a") as f:
        f["layer/5/neuron/sigma_output"][()] = False
    neuron = read_netx(sdnn_file).layers[-1].neuron
    assert isinstance(neuron, SigmaDeltaNeuron) and neuron.sigma_output


def test_spike_exp_is_written_when_not_netx_default(tmp_path: Path) -> None:
    net = small_sdnn_network(0)
    layers = tuple(
        type(l)(**{**{f: getattr(l, f) for f in l.__dataclass_fields__ if f != "kind"},
                   "neuron": SigmaDeltaNeuron(l.neuron.v_th_mant, spike_exp=4, sigma_output=l.neuron.sigma_output)})
        if getattr(l, "neuron", None) is not None else l for l in net.layers)
    four = Network(layers, net.input_shape)
    again = read_netx(write_netx(four, tmp_path / "four.net"))
    assert again.spike_exp == 4


def test_state_exp_other_than_six_is_refused_by_the_writer(tmp_path: Path) -> None:
    dense = Dense("d", (2,), np.ones((2, 3), np.int32), neuron=SigmaDeltaNeuron(np.int32(1), state_exp=5))
    with pytest.raises(ExportError, match=r"layer 'd' \(#0, dense\): field 'state_exp' is 5; netx builds"):
        write_netx(Network((dense,), (3,)), tmp_path / "x.net")
    assert not (tmp_path / "x.net").exists()


def test_threshold_that_leaves_int32_is_refused() -> None:
    with pytest.raises(IRError, match="'v_th_mant' 131072 shifted by spike_exp \\+ state_exp = 14 leaves int32"):
        SigmaDeltaNeuron(np.int32(1 << 17), spike_exp=7, state_exp=7)
