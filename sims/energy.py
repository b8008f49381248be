"""Energy per inference from simulated operation counts and a per-operation table.

The inputs are plain arrays (a simulation's ``layer_spike_counts`` and
``synops``), so this module loads neither torch nor the training code.

Per layer ``l`` and inference (mean over the B samples), with ``N_l`` the
layer's neurons and ``T`` the simulated steps (reference section 15.2-15.3)::

    E_l = synop_pj * SynOps_l                      delivered synaptic events into l
        + neuron_update_pj * N_l * T               every neuron updates every step
        + active_neuron_extra_pj * Spikes_l        spiking updates cost more (Davies 81 vs 52 pJ)
        + spike_pj * Spikes_l                      each emitted spike

Spikes count only at layers with neurons (input with a neuron, dense, conv):
a flatten layer repeats its input's spikes and a neuron-less input layer holds
the external input, whose delivery is charged as the next layer's SynOps.
Active neuron updates are approximated by spikes. Static (leakage) power is
not included: it needs the wall time per step, which a simulation does not have.

When the table has ``mac_pj`` (``cmos45nm``), the report also gives the
equivalent non-spiking network run once per time step::

    E_ANN = mac_pj * T * sum_l MACs_l,   MACs_l = Cout*H*W*Cin/g*kH*kW (conv), N_out*N_in (dense)

Sigma-delta networks (``Network.family == "SDNN"``) send graded messages; the
report adds, per layer (definitions cited from NeuroBench, Yik et al., Nature
Communications 2025, arXiv:2304.04640; reference section 16):

- **messages**: nonzero outputs (the ``spike_counts`` of a graded simulation);
- **payload bits**: the sum over messages of the signed two's-complement width
  each value needs (:func:`sims.counts.payload_bits`): the information the
  messages carry. netx sends every message in a fixed ``SDNN_MESSAGE_BITS``
  (16-bit) payload; that wire width times the messages is given in the totals;
- **synops**: NeuroBench's *effective* synaptic operations (nonzero weight x
  nonzero input), split into **MACs** (the calls whose input holds a value
  outside {-1, 0, 1}: graded) and ACs (:func:`sims.counts.graded_counts`);
- **activation sparsity**: zero activations / all activations, the activation
  being a neuron's output message at one step: ``1 - messages / (N_l * T)``.

and charges the graded figures of the table (``synop_pj`` and ``spike_pj``
when it has none)::

    E_l = synop_pj * ACs_l + graded_synop_pj * MACs_l + neuron_update_pj * N_l * T
        + active_neuron_extra_pj * Messages_l + graded_message_pj * Messages_l

The built-in ``loihi`` table's graded figures are assumptions (no per-operation
energy of a graded spike is published), labelled so in every report. Without
the messages themselves (``messages=None``), payload bits are not computed and
every event into a layer fed by a sigma-delta layer counts as a MAC.
CUBA networks get the report above, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import numpy.typing as npt

from export.ir import Conv, Dense, Layer, Network
from hw_targets import constants as C
from hw_targets.base import EnergyTable, Sourced
from hw_targets.errors import SimulationError
from sims.counts import graded_counts

#: Picojoules per microjoule.
PJ_PER_UJ = 1e6


def neuron_counts(net: Network) -> npt.NDArray[np.int64]:
    """(L,) neurons per layer: all of a dense or conv layer, an input layer's if it has a neuron, else 0.

    A dense layer without a neuron still has neurons: netx builds its default integrator.
    """
    return np.array([int(np.prod(layer.shape)) if layer.has_neurons else 0 for layer in net.layers],
                    dtype=np.int64)


def _no_macs(layer: Layer) -> int:
    return 0


def _dense_macs(layer: Layer) -> int:
    assert isinstance(layer, Dense)
    return int(layer.weight.size)


def _conv_macs(layer: Layer) -> int:
    assert isinstance(layer, Conv)
    return int(np.prod(layer.shape)) * int(np.prod(layer.weight.shape[1:]))


#: Multiply-accumulates per time step of each IR layer kind in the equivalent non-spiking network.
ANN_MACS: dict[str, Callable[[Layer], int]] = {
    "input": _no_macs,  # the input neurons receive the input directly, through no synapse
    "dense": _dense_macs,
    "conv": _conv_macs,
    "flatten": _no_macs,
}


def ann_macs(net: Network) -> npt.NDArray[np.int64]:
    """(L,) multiply-accumulates of the equivalent non-spiking network per time step.

    Dense: ``N_out * N_in``; conv: ``Cout * H_out * W_out * Cin/g * kH * kW``
    (every weight at every output position, zeros and borders included, as
    NeuroBench's dense count does); other layers 0. A merge layer counts once: the
    equivalent network adds its sources (SEW ``ADD``) before the one synapse, while
    the spiking network delivers each source through its own copy (see
    :func:`sims.counts.synaptic_ops`).
    """
    macs = [ANN_MACS[layer.kind](layer) for layer in net.layers]
    return np.array(macs, dtype=np.int64)


def _counts(name: str, values: npt.ArrayLike, n_layers: int) -> npt.NDArray[np.float64]:
    """(B, L) non-negative counts as float64; a (L,) vector is one sample."""
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != n_layers:
        raise SimulationError(f"{name} has shape {arr.shape}; expected (B, {n_layers}): one column per layer of the network")
    if arr.shape[0] == 0:
        raise SimulationError(f"{name} holds no samples; expected (B, {n_layers}) with B >= 1")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise SimulationError(f"{name} has dtype {arr.dtype}; expected counts")
    out = arr.astype(np.float64)
    if not np.all(np.isfinite(out)) or np.any(out < 0):
        raise SimulationError(f"{name} holds negative or non-finite values; counts are >= 0")
    return out


@dataclass(frozen=True)
class LayerEnergy:
    """Mean counts and energy of one layer per inference.

    Attributes:
        name, kind: the layer's name and kind.
        neurons: neurons of the layer.
        spikes: mean emitted spikes (0 for layers without neurons).
        synops: mean delivered synaptic events into the layer.
        neuron_updates: ``neurons * steps``.
        synop_uj, neuron_uj, active_uj, spike_uj: the four terms of the formula, in µJ.
        ann_macs: MACs of the equivalent non-spiking layer over all steps.
        ann_uj: their energy in µJ, or None when the table has no ``mac_pj``.
        mac_synops: of ``synops``, the mean effective MACs (graded input; 0 in CUBA networks).
        payload_bits: mean payload bits of the layer's messages (sigma-delta networks, computed
            from the messages), else None.
    """

    name: str
    kind: str
    neurons: int
    spikes: float
    synops: float
    neuron_updates: int
    synop_uj: float
    neuron_uj: float
    active_uj: float
    spike_uj: float
    ann_macs: int
    ann_uj: float | None
    mac_synops: float = 0.0
    payload_bits: float | None = None

    @property
    def total_uj(self) -> float:
        return self.synop_uj + self.neuron_uj + self.active_uj + self.spike_uj

    @property
    def ac_synops(self) -> float:
        """Of ``synops``, the effective ACs (binary input)."""
        return self.synops - self.mac_synops

    @property
    def activation_sparsity(self) -> float | None:
        """NeuroBench's zero activations / all activations of the layer; None without neurons."""
        return 1.0 - self.spikes / self.neuron_updates if self.neuron_updates else None


_TERMS = ("synop_uj", "neuron_uj", "active_uj", "spike_uj")


@dataclass(frozen=True)
class EnergyReport:
    """Energy per inference, per layer and in total.

    Attributes:
        table: the energy table's name.
        caveat: the table's caveat, printed with every report.
        steps: simulated steps per inference.
        samples: samples averaged over.
        layers: one entry per IR layer.
        sources: ``{figure: "value pJ: source"}`` of the table's figures.
        family: the network's neuron family; ``SDNN`` adds the graded columns.
    """

    table: str
    caveat: str
    steps: int
    samples: int
    layers: tuple[LayerEnergy, ...]
    sources: tuple[tuple[str, str], ...]
    family: str = "CUBA"

    def term_uj(self, term: str) -> float:
        """One term (``synop_uj``, ``neuron_uj``, ``active_uj``, ``spike_uj``) summed over layers."""
        return float(sum(getattr(layer, term) for layer in self.layers))

    @property
    def total_uj(self) -> float:
        """Energy of one inference in µJ."""
        return float(sum(layer.total_uj for layer in self.layers))

    @property
    def ann_uj(self) -> float | None:
        """Energy of the equivalent non-spiking network in µJ, or None without ``mac_pj``."""
        values = [layer.ann_uj for layer in self.layers]
        return None if any(v is None for v in values) else float(sum(v for v in values if v is not None))

    @property
    def activation_sparsity(self) -> float:
        """NeuroBench's activation sparsity over all layers with neurons: zero outputs / all outputs."""
        updates = sum(r.neuron_updates for r in self.layers)
        return 1.0 - sum(r.spikes for r in self.layers) / updates if updates else 1.0

    def format_table(self) -> str:
        """A plain-text table, one row per layer, the total and the table's caveat below."""
        if self.family == "SDNN":
            return _format_sdnn(self)
        has_ann = self.ann_uj is not None
        head = ["layer", "kind", "neurons", "spikes", "synops", "synop uJ", "neuron uJ", "spike uJ", "total uJ"]
        if has_ann:
            head += ["ANN MACs", "ANN uJ"]
        rows = [head]
        for r in self.layers:
            row = [r.name, r.kind, f"{r.neurons:,}", f"{r.spikes:,.1f}", f"{r.synops:,.1f}", f"{r.synop_uj:.4g}",
                   f"{r.neuron_uj + r.active_uj:.4g}", f"{r.spike_uj:.4g}", f"{r.total_uj:.4g}"]
            if has_ann:
                row += [f"{r.ann_macs:,}", f"{r.ann_uj:.4g}"]
            rows.append(row)
        total = ["total", "", f"{sum(r.neurons for r in self.layers):,}", f"{sum(r.spikes for r in self.layers):,.1f}",
                 f"{sum(r.synops for r in self.layers):,.1f}", f"{self.term_uj('synop_uj'):.4g}",
                 f"{self.term_uj('neuron_uj') + self.term_uj('active_uj'):.4g}", f"{self.term_uj('spike_uj'):.4g}",
                 f"{self.total_uj:.4g}"]
        if has_ann:
            total += [f"{sum(r.ann_macs for r in self.layers):,}", f"{self.ann_uj:.4g}"]
        rows.append(total)
        widths = [max(len(row[j]) for row in rows) for j in range(len(head))]
        lines = []
        for k, row in enumerate(rows):
            lines.append("  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))).rstrip())
            if k == 0 or k == len(rows) - 2:
                lines.append("  ".join("-" * w for w in widths))
        lines.append(f"energy table {self.table}: {self.total_uj:.4g} uJ per inference "
                     f"({self.steps} steps, mean of {self.samples} samples)")
        if has_ann:
            lines.append(f"equivalent non-spiking network, run once per step: {self.ann_uj:.4g} uJ")
        if self.caveat:
            lines.append(f"caveat: {self.caveat}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict for the result sidecar (sigma-delta networks: the graded counts too)."""
        if self.family == "SDNN":
            return _sdnn_dict(self)
        return self._base_dict()

    def _base_dict(self) -> dict[str, Any]:
        layers = [
            {"name": r.name, "kind": r.kind, "neurons": r.neurons, "spikes": r.spikes, "synops": r.synops,
             "neuron_updates": r.neuron_updates, **{t: getattr(r, t) for t in _TERMS}, "total_uj": r.total_uj,
             "ann_macs": r.ann_macs, "ann_uj": r.ann_uj}
            for r in self.layers
        ]
        return {
            "table": self.table,
            "caveat": self.caveat,
            "unit": "uJ per inference",
            "steps": self.steps,
            "samples": self.samples,
            "layers": layers,
            "totals": {**{t: self.term_uj(t) for t in _TERMS}, "total_uj": self.total_uj,
                       "ann_macs": int(sum(r.ann_macs for r in self.layers)),
                       "ann_macs_per_step": int(sum(r.ann_macs for r in self.layers)) // self.steps,
                       "ann_uj": self.ann_uj},
            "sources": dict(self.sources),
        }


def estimate_energy(
    net: Network,
    spike_counts: npt.ArrayLike,
    synops: npt.ArrayLike,
    steps: int,
    table: EnergyTable,
    messages: Sequence[npt.NDArray[Any]] | None = None,
) -> EnergyReport:
    """Energy per inference of ``net`` from a simulation's counts (formula in the module docstring).

    Args:
        net: the simulated network.
        spike_counts: (B, L) spikes per sample and layer (``SimResult.layer_spike_counts``);
            columns of flatten and neuron-less input layers are ignored.
        synops: (B, L) delivered synaptic events into each layer (``SimResult.synops``).
        steps: simulated time steps per sample.
        table: energy per operation in pJ (``hw_targets.energy_tables``).
        messages: sigma-delta networks only, optional: per layer (B, steps, *shape) the
            simulation's int32 messages (``SimResult.spikes``), for payload bits and the exact
            MAC/AC split; ignored for CUBA networks.

    Returns:
        An :class:`EnergyReport` in µJ per inference, the mean over the B samples.

    Raises:
        SimulationError: counts of the wrong shape, negative or non-finite; steps < 1;
            ``messages`` not one (B, steps, *shape) array per layer.
    """
    n_layers = len(net.layers)
    spikes = _counts("spike_counts", spike_counts, n_layers)
    events = _counts("synops", synops, n_layers)
    if spikes.shape[0] != events.shape[0]:
        raise SimulationError(f"spike_counts has {spikes.shape[0]} samples but synops has {events.shape[0]}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise SimulationError(f"steps={steps!r} must be a positive integer")
    steps = int(steps)
    neurons = neuron_counts(net)
    mean_spikes = np.where(neurons > 0, spikes.mean(axis=0), 0.0)
    mean_synops = events.mean(axis=0)
    macs = ann_macs(net) * steps
    mac_pj = None if table.mac_pj is None else table.mac_pj.value
    sdnn = net.family == "SDNN"
    graded = _graded(net, messages, spikes.shape[0], steps, mean_synops) if sdnn else None
    synop_pj, graded_synop_pj = table.synop_pj.value, _graded_figure(table.graded_synop_pj, table.synop_pj).value
    message_pj = _graded_figure(table.graded_message_pj, table.spike_pj).value if sdnn else table.spike_pj.value
    layers = []
    for i, layer in enumerate(net.layers):
        updates = int(neurons[i]) * steps
        mac_events = 0.0 if graded is None else float(graded[0][i])
        ac_events = float(mean_synops[i]) - mac_events
        layers.append(LayerEnergy(
            name=layer.name,
            kind=layer.kind,
            neurons=int(neurons[i]),
            spikes=float(mean_spikes[i]),
            synops=float(mean_synops[i]),
            neuron_updates=updates,
            # (CUBA: mac_events = 0, so this is synop_pj * synops, as it always was)
            synop_uj=(synop_pj * ac_events + graded_synop_pj * mac_events) / PJ_PER_UJ if sdnn
            else synop_pj * float(mean_synops[i]) / PJ_PER_UJ,
            neuron_uj=table.neuron_update_pj.value * updates / PJ_PER_UJ,
            active_uj=table.active_neuron_extra_pj.value * float(mean_spikes[i]) / PJ_PER_UJ,
            spike_uj=message_pj * float(mean_spikes[i]) / PJ_PER_UJ,
            ann_macs=int(macs[i]),
            ann_uj=None if mac_pj is None else mac_pj * int(macs[i]) / PJ_PER_UJ,
            mac_synops=mac_events,
            payload_bits=None if graded is None or graded[1] is None or not neurons[i] else float(graded[1][i]),
        ))
    figures = {"synop_pj": table.synop_pj, "neuron_update_pj": table.neuron_update_pj,
               "active_neuron_extra_pj": table.active_neuron_extra_pj, "spike_pj": table.spike_pj}
    if table.mac_pj is not None:
        figures["mac_pj"] = table.mac_pj
    if sdnn:
        figures["graded_synop_pj"] = _graded_figure(table.graded_synop_pj, table.synop_pj)
        figures["graded_message_pj"] = _graded_figure(table.graded_message_pj, table.spike_pj)
    sources = tuple((k, f"{v.value:g} pJ: {v.source}") for k, v in figures.items())
    return EnergyReport(table.name, table.caveat, steps, int(spikes.shape[0]), tuple(layers), sources,
                        family=net.family)


def _graded_figure(figure: Sourced | None, fallback: Sourced) -> Sourced:
    """A table's graded figure, or the binary one it falls back to, saying so."""
    if figure is not None:
        return figure
    return Sourced(fallback.value, f"not in the table: charged as its binary figure ({fallback.source})")


def _graded(
    net: Network, messages: Sequence[npt.NDArray[Any]] | None, batch: int, steps: int,
    mean_synops: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
    """Mean effective MACs and payload bits per layer of a sigma-delta network.

    Without ``messages``: every event into a layer whose input comes from a layer with neurons is
    a MAC (its input is graded), the external input's are ACs; payload bits unknown (None).
    """
    if messages is None:
        graded_source, macs = False, np.zeros(len(net.layers))
        for i, layer in enumerate(net.layers):
            if layer.synaptic and graded_source:
                macs[i] = mean_synops[i]
            graded_source = graded_source or layer.has_neurons
        return macs, None
    if len(messages) != len(net.layers):
        raise SimulationError(f"messages holds {len(messages)} arrays; expected one per layer ({len(net.layers)})")
    for i, (layer, m) in enumerate(zip(net.layers, messages)):
        expected = (batch, steps, *layer.out_shape)
        if tuple(np.shape(m)) != expected:
            raise SimulationError(f"messages of {net.describe(i)} have shape {np.shape(m)}; expected {expected} "
                                  "(B, steps, *shape), as the counts and steps say")
    counts = graded_counts(net, [np.asarray(m) for m in messages])
    return counts.mac_synops.mean(axis=0), counts.payload_bits.mean(axis=0)


_SDNN_HEAD = ("layer", "kind", "neurons", "messages", "payload bits", "act. sparsity", "synops", "MACs",
              "synop uJ", "neuron uJ", "message uJ", "total uJ")


def _sdnn_row(name: str, kind: str, r: LayerEnergy | None, report: EnergyReport) -> list[str]:
    """One row of the graded table; ``r`` None: the total."""
    layers = report.layers if r is None else (r,)
    bits = [x.payload_bits for x in layers if x.neurons]
    sparsity = report.activation_sparsity if r is None else r.activation_sparsity

    def total(term: str) -> float:
        return float(sum(getattr(x, term) for x in layers))

    return [name, kind, f"{int(total('neurons')):,}", f"{total('spikes'):,.1f}",
            "-" if not bits or any(b is None for b in bits) else f"{sum(b for b in bits if b is not None):,.1f}",
            "-" if sparsity is None else f"{sparsity:.4f}", f"{total('synops'):,.1f}",
            f"{total('mac_synops'):,.1f}", f"{total('synop_uj'):.4g}",
            f"{total('neuron_uj') + total('active_uj'):.4g}", f"{total('spike_uj'):.4g}", f"{total('total_uj'):.4g}"]


def _format_sdnn(report: EnergyReport) -> str:
    """The table of a sigma-delta network: messages, payload bits, sparsity and MACs per layer."""
    has_ann = report.ann_uj is not None
    head = list(_SDNN_HEAD) + (["ANN MACs", "ANN uJ"] if has_ann else [])
    rows = [head]
    for r in report.layers:
        rows.append(_sdnn_row(r.name, r.kind, r, report) + ([f"{r.ann_macs:,}", f"{r.ann_uj:.4g}"] if has_ann else []))
    ann_total = [f"{sum(r.ann_macs for r in report.layers):,}", f"{report.ann_uj:.4g}"] if has_ann else []
    rows.append(_sdnn_row("total", "", None, report) + ann_total)
    widths = [max(len(row[j]) for row in rows) for j in range(len(head))]
    lines = []
    for k, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))).rstrip())
        if k == 0 or k == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    sources = dict(report.sources)
    messages = sum(r.spikes for r in report.layers)
    lines += [
        f"energy table {report.table}: {report.total_uj:.4g} uJ per inference "
        f"({report.steps} steps, mean of {report.samples} samples; sigma-delta network, graded messages)",
        "messages: nonzero outputs; payload bits: the signed two's-complement width of each message value, "
        f"summed (netx sends each message in a {C.SDNN_MESSAGE_BITS}-bit payload: "
        f"{messages * C.SDNN_MESSAGE_BITS:,.0f} bits on the wire)",
        "synops: NeuroBench effective synaptic ops (nonzero weight x nonzero input); MACs: those whose input "
        "step held a value outside {-1, 0, 1} (NeuroBench's MAC rule), the rest ACs; activation sparsity: "
        "zero outputs / all outputs (Yik et al., Nat. Commun. 2025, arXiv:2304.04640)",
        f"graded synop: {sources['graded_synop_pj']}",
        f"graded message: {sources['graded_message_pj']}",
    ]
    if has_ann:
        lines.append(f"equivalent non-spiking network, run once per step: {report.ann_uj:.4g} uJ")
    if report.caveat:
        lines.append(f"caveat: {report.caveat}")
    return "\n".join(lines)


def _sdnn_dict(report: EnergyReport) -> dict[str, Any]:
    """:meth:`EnergyReport.to_dict` plus the graded counts of a sigma-delta network."""
    d = report._base_dict()
    for row, r in zip(d["layers"], report.layers):
        row.update(mac_synops=r.mac_synops, ac_synops=r.ac_synops, payload_bits=r.payload_bits,
                   activation_sparsity=r.activation_sparsity)
    bits = [r.payload_bits for r in report.layers if r.neurons]
    messages = float(sum(r.spikes for r in report.layers))
    d["family"] = report.family
    d["totals"].update(
        messages=messages,
        payload_bits=None if any(b is None for b in bits) else float(sum(b for b in bits if b is not None)),
        message_bits=C.SDNN_MESSAGE_BITS,
        wire_bits=messages * C.SDNN_MESSAGE_BITS,
        mac_synops=float(sum(r.mac_synops for r in report.layers)),
        ac_synops=float(sum(r.ac_synops for r in report.layers)),
        activation_sparsity=report.activation_sparsity,
    )
    return d
