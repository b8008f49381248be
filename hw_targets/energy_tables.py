"""Energy-per-operation tables, looked up by name or loaded from a TOML file.

Two tables ship (reference ``loihi_netx.md`` section 15.3):

- ``loihi``: Loihi 1 pre-silicon figures of Davies et al., IEEE Micro 2018,
  Table 2 (0.75 V, Intel 14 nm). Loihi 2 per-operation energies are **not
  public**; this table stands in for Loihi 2 and every report says so.
- ``cmos45nm``: Horowitz, ISSCC 2014, 45 nm CMOS at 0.9 V: 0.9 pJ per 32-bit
  float add, used as the accumulate (AC) of one synaptic event, and 4.6 pJ
  (3.7 pJ multiply + 0.9 pJ add) per multiply-accumulate (MAC) of the
  equivalent non-spiking network. This is the convention of SNN-vs-ANN papers:
  arithmetic only, no memory or data movement, not a model of any chip.

For sigma-delta (graded-spike) networks each table also prices a synaptic event
on a graded payload and a graded message: ``cmos45nm`` charges the event as a
MAC (NeuroBench counts graded inputs as MACs, reference section 16) and the
message nothing; ``loihi``'s two figures are **assumptions** (no per-operation
energy of a graded spike is published), labelled so in their sources.

A user table is a flat TOML file whose keys are the fields of
:class:`~hw_targets.base.EnergyTable` (see :func:`load_energy_table`).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Callable

from hw_targets.base import EnergyTable, Sourced
from hw_targets.errors import ConfigError
from hw_targets.loihi import LOIHI1_ENERGY

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the project runs on 3.11; 3.10 needs the tomli backport
    import tomli as tomllib

_HOROWITZ = (
    "M. Horowitz, \"Computing's energy problem (and what we can do about it)\", "
    "ISSCC 2014, doi:10.1109/ISSCC.2014.6757323, 45 nm, 0.9 V"
)
_AC_ONLY = (
    "not charged: SNN-vs-ANN comparisons built on Horowitz's figures count one "
    "accumulate per synaptic event and nothing per neuron or spike"
)

CMOS45NM_ENERGY = EnergyTable(
    name="cmos45nm",
    synop_pj=Sourced(0.9, _HOROWITZ + ": 32-bit float add (one accumulate, AC, per synaptic event)"),
    neuron_update_pj=Sourced(0.0, _AC_ONLY),
    active_neuron_extra_pj=Sourced(0.0, _AC_ONLY),
    spike_pj=Sourced(0.0, _AC_ONLY),
    mac_pj=Sourced(4.6, _HOROWITZ + ": 32-bit float multiply 3.7 pJ + add 0.9 pJ (one MAC)"),
    graded_synop_pj=Sourced(4.6, _HOROWITZ + ": 32-bit float multiply 3.7 pJ + add 0.9 pJ: a synaptic event on a "
                            "graded input is a MAC (NeuroBench's effective MACs)"),
    graded_message_pj=Sourced(0.0, _AC_ONLY),
    caveat=(
        "general-purpose 45 nm CMOS arithmetic (32-bit float) as SNN papers use it for SNN-vs-ANN "
        "comparisons; excludes memory access and data movement; not a model of a neuromorphic chip"
    ),
)

_TABLES: dict[str, Callable[[], EnergyTable]] = {
    "loihi": lambda: LOIHI1_ENERGY,
    "cmos45nm": lambda: CMOS45NM_ENERGY,
}

#: The figures of a user table (the :class:`EnergyTable` fields in picojoules).
FIGURE_KEYS = ("synop_pj", "neuron_update_pj", "active_neuron_extra_pj", "spike_pj", "mac_pj",
               "graded_synop_pj", "graded_message_pj")
#: Figures a user table must give; the others default to 0 pJ (``mac_pj``: no ANN column).
_REQUIRED = ("synop_pj", "neuron_update_pj")


def energy_table_names() -> tuple[str, ...]:
    """Names of the built-in energy tables."""
    return tuple(sorted(_TABLES))


def get_energy_table(name: str) -> EnergyTable:
    """Return the built-in energy table ``name`` (``loihi`` or ``cmos45nm``).

    Raises:
        ConfigError: for an unknown name; the message lists the known ones.
    """
    try:
        return _TABLES[name]()
    except KeyError:
        raise ConfigError(
            f"unknown energy table {name!r}; built-in tables: {', '.join(energy_table_names())}, "
            "or pass a TOML file (see hw_targets.energy_tables.load_energy_table)"
        ) from None


def resolve_energy_table(spec: str | Path) -> EnergyTable:
    """A built-in table by name, or a user table from a ``.toml`` path (the ``--energy`` flag).

    Raises:
        ConfigError: when ``spec`` is neither a built-in name nor a readable TOML table.
    """
    text = str(spec)
    if text in _TABLES:
        return get_energy_table(text)
    path = Path(text)
    if path.suffix.lower() == ".toml" or path.exists():
        return load_energy_table(path)
    return get_energy_table(text)


def _figure(path: Path, key: str, value: Any, default_source: str) -> Sourced:
    """One figure: a bare number, or an inline table ``{value = ..., source = "..."}``."""
    source = default_source
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"value", "source"})
        if unknown:
            raise ConfigError(f"{path}: unknown key '{key}.{unknown[0]}'; a figure holds 'value' and 'source'")
        if "value" not in value:
            raise ConfigError(f"{path}: key '{key}' needs a 'value' (picojoules)")
        source = value.get("source", default_source)
        if not isinstance(source, str):
            raise ConfigError(f"{path}: '{key}.source' must be a string")
        value = value["value"]
    # bool is an int subclass in Python; `true` is not an energy.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{path}: key '{key}' must be a number of picojoules, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"{path}: key '{key}' = {value!r} must be a finite number >= 0 (picojoules)")
    return Sourced(number, source)


def load_energy_table(path: str | Path) -> EnergyTable:
    """Read a user energy table from a TOML file.

    Schema (flat, all energies in picojoules per operation; each figure is a
    number or an inline table ``{value = 23.6, source = "where it comes from"}``)::

        name = "mychip"                # optional, default: the file name without suffix
        source = "datasheet rev 3"     # optional, the source of figures given as bare numbers
        caveat = "pre-silicon"         # optional, printed with every report
        synop_pj = 23.6                # required: per delivered synaptic event
        neuron_update_pj = 52.0        # required: per neuron per time step
        active_neuron_extra_pj = 29.0  # optional (0): extra per neuron update that spikes
        spike_pj = 1.7                 # optional (0): per emitted spike
        mac_pj = 4.6                   # optional: per MAC of the equivalent ANN (enables that column)
        graded_synop_pj = 23.6         # optional (synop_pj): per synaptic event on a graded payload
        graded_message_pj = 1.7        # optional (spike_pj): per graded message (sigma-delta networks)

    Raises:
        ConfigError: the file is missing or not TOML; a key is unknown (named);
            a required figure is missing; a figure is not a finite number >= 0.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: energy table file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read energy table ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:  # a binary file is not UTF-8 TOML
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None

    known = {"name", "caveat", "source", *FIGURE_KEYS}
    for key in data:
        if key not in known:
            raise ConfigError(f"{path}: unknown key '{key}' in energy table; known keys: {', '.join(sorted(known))}")
    for key in ("name", "caveat", "source"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"{path}: key '{key}' must be a string")
    for key in _REQUIRED:
        if key not in data:
            raise ConfigError(f"{path}: energy table lacks required key '{key}' (picojoules)")

    default_source = data.get("source", f"user table {path.name}")

    def given(key: str) -> Sourced:
        return _figure(path, key, data[key], default_source)

    def zero_unless_given(key: str) -> Sourced:
        return given(key) if key in data else Sourced(0.0, f"not given in {path.name}")

    return EnergyTable(
        name=data.get("name", path.stem),
        synop_pj=given("synop_pj"),
        neuron_update_pj=given("neuron_update_pj"),
        active_neuron_extra_pj=zero_unless_given("active_neuron_extra_pj"),
        spike_pj=zero_unless_given("spike_pj"),
        mac_pj=given("mac_pj") if "mac_pj" in data else None,
        caveat=data.get("caveat", ""),
        graded_synop_pj=given("graded_synop_pj") if "graded_synop_pj" in data else None,
        graded_message_pj=given("graded_message_pj") if "graded_message_pj" in data else None,
    )
