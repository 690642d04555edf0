"""Bench files: which instruments make up a bench, how to reach them, and how the signals are scaled.

A bench file (``instruments/benches/*.yaml``) declares, per role, the driver, the VISA resource, the
expected ``*IDN?`` pattern and the calibration due date; the amplifier (gain, limits); the scope channel
map (electrode voltage through a probe, current across a shunt of known ohms); and the dummy load used for
verification. ``twin.yaml`` matches the default ports of ``toolkit bench twin``.

Contract used by the delivery layer::

    from instruments.bench import load_bench, Bench, connect_bench

    bench = load_bench("instruments/benches/twin.yaml")          # -> Bench (pydantic)
    with connect_bench(bench, timeout_s=2.0) as cb:              # -> ConnectedBench
        cb.stimulator   # Stimulator (generator; amplitudes at its output)
        cb.scope        # Oscilloscope
        cb.current_source  # Stimulator or None (e.g. Keithley 6221 for microcurrent)
        cb.bench        # this configuration
        cb.generator_amplitude_for(200.0)  # generator volts for 200 V across the electrodes

Connecting checks each instrument's identity and enables nothing. Leaving the ``with`` block switches
every output off, reads it back off, and closes the connections.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from instruments.base import Oscilloscope, ScopeChannel, Stimulator
from instruments.errors import BenchFileError, IdentityMismatch, InstrumentError, OutOfRange

__all__ = [
    "AmplifierSpec",
    "Bench",
    "ChannelMap",
    "ConnectedBench",
    "InstrumentSpec",
    "ProbeSpec",
    "ScopeSpec",
    "connect_bench",
    "default_bench_path",
    "load_bench",
]

_BENCH_DIR = Path(__file__).resolve().parent / "benches"


def default_bench_path(name: str = "twin") -> Path:
    """Return the path of a bench file shipped in ``instruments/benches`` (``twin``, ``example-lab``)."""
    return _BENCH_DIR / f"{name}.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstrumentSpec(_Strict):
    """One instrument of the bench."""

    #: driver name, one of :data:`instruments.drivers.STIMULATOR_DRIVERS` or ``SCOPE_DRIVERS``
    driver: str
    #: VISA resource string, e.g. ``TCPIP0::192.168.1.20::5025::SOCKET``
    resource: str
    #: regular expression the ``*IDN?`` reply must match (searched, case-insensitive)
    idn: str
    #: date by which the instrument must be recalibrated; a check after it fails
    calibration_due: date | None = None
    #: output channel used for stimulation (stimulators only)
    channel: int = Field(default=1, ge=1, le=4)
    #: free text (serial number, asset tag)
    notes: str = ""

    @field_validator("idn")
    @classmethod
    def _idn_is_regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from exc
        return value

    @field_validator("resource")
    @classmethod
    def _resource_form(cls, value: str) -> str:
        if "::" not in value:
            raise ValueError("expected a VISA resource string such as 'TCPIP0::127.0.0.1::5025::SOCKET'")
        return value


class ScopeSpec(InstrumentSpec):
    """The oscilloscope: an instrument, with limits lower than its model's when this unit has them."""

    #: fastest sampling per channel with two channels on (Sa/s), if lower than the model's
    max_sample_rate_Sa_s: float | None = Field(default=None, gt=0)
    #: deepest record per channel with two channels on (points), if smaller than the model's
    max_record_points: int | None = Field(default=None, gt=0)


class AmplifierSpec(_Strict):
    """A high-voltage amplifier between the generator and the electrodes (not remote-controlled)."""

    model: str = ""
    #: voltage gain (output volts per input volt)
    gain: float = Field(gt=0)
    #: largest output magnitude, in volts (the amplifier clips above it)
    max_output_V: float = Field(gt=0)
    #: largest input magnitude accepted, in volts
    max_input_V: float = Field(default=10.0, gt=0)
    #: small-signal bandwidth, in hertz
    bandwidth_Hz: float | None = Field(default=None, gt=0)
    calibration_due: date | None = None


class ProbeSpec(_Strict):
    """How a scope channel is connected: probe ratio and, for a current channel, the shunt."""

    channel: int = Field(ge=1, le=4)
    probe_attenuation: float = Field(default=1.0, gt=0)
    #: current-sense shunt resistance in ohms (current channel only)
    shunt_ohms: float | None = Field(default=None, gt=0)


class ChannelMap(_Strict):
    """Scope channel map: the electrode voltage and the current through the load."""

    electrode_voltage: ProbeSpec
    current: ProbeSpec

    @model_validator(mode="after")
    def _distinct(self) -> ChannelMap:
        if self.electrode_voltage.channel == self.current.channel:
            raise ValueError("electrode_voltage and current must use different scope channels")
        if self.current.shunt_ohms is None:
            raise ValueError("current.shunt_ohms is required (the current is read across a shunt)")
        return self


class Bench(_Strict):
    """A bench configuration, validated from a bench file by :func:`load_bench`."""

    name: str
    description: str = ""
    stimulator: InstrumentSpec
    scope: ScopeSpec
    #: optional true current source for microcurrent
    current_source: InstrumentSpec | None = None
    amplifier: AmplifierSpec | None = None
    channels: ChannelMap
    #: dummy load used for verification bursts, in ohms
    dummy_load_ohms: float = Field(gt=0)
    #: series resistor when microcurrent is driven by the generator as a voltage, in ohms
    series_resistor_ohms: float | None = Field(default=None, gt=0)
    #: generator channel wired to the series resistor (default: the stimulator's channel); it reaches the
    #: electrodes without the amplifier
    series_resistor_channel: int | None = Field(default=None, ge=1, le=4)

    @model_validator(mode="after")
    def _series_channel_needs_resistor(self) -> Bench:
        if self.series_resistor_channel is not None and self.series_resistor_ohms is None:
            raise ValueError("series_resistor_channel needs series_resistor_ohms (the resistor it feeds)")
        return self

    @field_validator("stimulator", "current_source")
    @classmethod
    def _stimulator_driver(cls, spec: InstrumentSpec | None) -> InstrumentSpec | None:
        from instruments.drivers import STIMULATOR_DRIVERS

        if spec is not None and spec.driver not in STIMULATOR_DRIVERS:
            raise ValueError(
                f"unknown stimulator driver {spec.driver!r}; accepted: {', '.join(sorted(STIMULATOR_DRIVERS))}"
            )
        return spec

    @field_validator("scope")
    @classmethod
    def _scope_driver(cls, spec: InstrumentSpec) -> InstrumentSpec:
        from instruments.drivers import SCOPE_DRIVERS

        if spec.driver not in SCOPE_DRIVERS:
            raise ValueError(
                f"unknown oscilloscope driver {spec.driver!r}; accepted: {', '.join(sorted(SCOPE_DRIVERS))}"
            )
        return spec

    # ---- convenient views used by delivery and checks
    @property
    def amplifier_gain(self) -> float:
        """Voltage gain between the generator output and the electrodes (1 without an amplifier)."""
        return self.amplifier.gain if self.amplifier else 1.0

    @property
    def probe_attenuation(self) -> float:
        """Probe ratio of the electrode-voltage channel."""
        return self.channels.electrode_voltage.probe_attenuation

    @property
    def shunt_ohms(self) -> float:
        """Current-sense shunt resistance in ohms."""
        return float(self.channels.current.shunt_ohms or 0.0)

    def scope_limits(self) -> dict[str, Any]:
        """The scope's declared limits, as keyword arguments of ``record_points_for``."""
        return {"max_sample_rate_Sa_s": self.scope.max_sample_rate_Sa_s,
                "max_record_points": self.scope.max_record_points,
                "name": f"the {self.scope.driver} scope of bench {self.name!r}"}

    @property
    def amplifier_time_constant_s(self) -> float | None:
        """``1 / (2π · bandwidth)`` of the amplifier: the fastest change it passes (None if not declared)."""
        amp = self.amplifier
        if amp is None or not amp.bandwidth_Hz:
            return None
        return 1.0 / (2 * math.pi * amp.bandwidth_Hz)

    @property
    def is_loopback_twin(self) -> bool:
        """True for a bench named ``twin`` whose instruments are all on this machine (the digital twin)."""
        return self.name == "twin" and all(
            "127.0.0.1" in spec.resource or "localhost" in spec.resource.lower() for _, spec in self.instruments())

    def instruments(self) -> Iterator[tuple[str, InstrumentSpec]]:
        """Yield ``(role, spec)`` for every instrument declared."""
        yield "stimulator", self.stimulator
        yield "scope", self.scope
        if self.current_source is not None:
            yield "current_source", self.current_source

    def scope_channels(self, *, electrode_V: float, current_A: float) -> list[ScopeChannel]:
        """Scope channel set-up (8 divisions) that fits ``±electrode_V`` and ``±current_A`` with 25 % headroom."""
        ev, cur = self.channels.electrode_voltage, self.channels.current
        shunt = float(cur.shunt_ohms or 1.0)
        return [
            ScopeChannel(
                ev.channel, volts_per_div=max(abs(electrode_V), 1e-3) * 2.5 / 8,
                probe_attenuation=ev.probe_attenuation, label="electrode voltage",
            ),
            ScopeChannel(
                cur.channel, volts_per_div=max(abs(current_A) * shunt, 1e-4) * 2.5 / 8,
                probe_attenuation=cur.probe_attenuation, shunt_ohms=shunt, label="current",
            ),
        ]


def load_bench(path: str | Path) -> Bench:
    """Read and validate a bench file.

    Parameters
    ----------
    path : str or Path
        A YAML bench file.

    Returns
    -------
    Bench

    Raises
    ------
    BenchFileError
        If the file is missing, is not YAML, or a field is invalid (each problem is listed with its field).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BenchFileError(f"bench file {path} not found", resource=str(path)) from None
    except OSError as exc:
        raise BenchFileError(f"bench file {path} cannot be read: {exc.strerror}", resource=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise BenchFileError(
            f"bench file {path} is not valid YAML{where}: {problem}", resource=str(path)
        ) from None
    if not isinstance(data, dict):
        raise BenchFileError(f"bench file {path} must hold a mapping of fields, got {type(data).__name__}",
                             resource=str(path))
    return bench_from_dict(data, source=str(path))


def bench_from_dict(data: dict[str, Any], *, source: str = "<bench>") -> Bench:
    """Validate a bench from a mapping (as read from YAML); see :func:`load_bench`."""
    try:
        return Bench.model_validate(data)
    except ValidationError as exc:
        details = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            details.append(f"{field}: {msg}")
        raise BenchFileError(f"bench file {source} is invalid", resource=source, details=details) from None


@dataclass
class ConnectedBench:
    """Open connections to a bench's instruments; a context manager that always ends with outputs off."""

    bench: Bench
    stimulator: Stimulator
    scope: Oscilloscope
    current_source: Stimulator | None = None

    def generator_amplitude_for(self, electrode_V: float) -> float:
        """Generator output (volts) that gives ``electrode_V`` after the amplifier.

        Raises
        ------
        OutOfRange
            If the requested voltage exceeds the amplifier's output or input limits.
        """
        amp = self.bench.amplifier
        if amp is None:
            return float(electrode_V)
        if abs(electrode_V) > amp.max_output_V:
            raise OutOfRange(
                f"{electrode_V:g} V across the electrodes exceeds the amplifier's max_output_V "
                f"{amp.max_output_V:g} V (bench {self.bench.name!r})", resource="amplifier.max_output_V",
            )
        setting = electrode_V / amp.gain
        if abs(setting) > amp.max_input_V:
            raise OutOfRange(
                f"{electrode_V:g} V needs {setting:g} V at the amplifier input, above its max_input_V "
                f"{amp.max_input_V:g} V (bench {self.bench.name!r})", resource="amplifier.max_input_V",
            )
        return setting

    def stimulators(self) -> list[Stimulator]:
        """Every stimulating instrument of the bench."""
        out = [self.stimulator]
        if self.current_source is not None:
            out.append(self.current_source)
        return out

    def safe_shutdown(self) -> None:
        """Switch every output off and read it back off (raises ``OutputStateUnknown`` if it cannot)."""
        failures: list[InstrumentError] = []
        for stim in self.stimulators():
            try:
                stim.safe_shutdown()
            except InstrumentError as exc:
                failures.append(exc)
        if failures:
            raise failures[0]

    def close(self) -> None:
        """Shut every output down, then close all connections."""
        errors: list[InstrumentError] = []
        for inst in (*self.stimulators(), self.scope):
            try:
                inst.close()
            except InstrumentError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> ConnectedBench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_bench(bench: Bench, *, timeout_s: float = 2.0, check_identity: bool = True) -> ConnectedBench:
    """Connect to every instrument of a bench, check identities, and enable nothing.

    Parameters
    ----------
    bench : Bench
        The bench configuration.
    timeout_s : float
        I/O timeout for each instrument, in seconds.
    check_identity : bool
        Compare each ``*IDN?`` reply with the bench file's ``idn`` pattern (leave on outside tests).

    Returns
    -------
    ConnectedBench

    Raises
    ------
    ConnectionFailed
        If a resource does not answer.
    IdentityMismatch
        If an instrument is not the one declared.
    """
    from instruments.drivers import open_driver

    opened: dict[str, Any] = {}
    verified: set[str] = set()
    try:
        for role, spec in bench.instruments():
            inst = open_driver(spec.driver, spec.resource, timeout_s=timeout_s, name=role)
            opened[role] = inst
            if role != "scope" and bench.series_resistor_ohms is not None:
                inst.series_resistor_ohms = bench.series_resistor_ohms
            if check_identity:
                verify_identity(inst, spec, role)
            verified.add(role)
    except BaseException:
        for role, inst in opened.items():
            try:
                # an unverified device may be something else entirely: send it nothing
                inst.close() if role in verified else inst.abandon()
            except InstrumentError:
                pass
        raise
    return ConnectedBench(
        bench=bench,
        stimulator=opened["stimulator"],
        scope=opened["scope"],
        current_source=opened.get("current_source"),
    )


def verify_identity(inst: Stimulator | Oscilloscope, spec: InstrumentSpec, role: str) -> str:
    """Query ``*IDN?`` and raise :class:`IdentityMismatch` unless it matches ``spec.idn``."""
    idn = inst.identify()
    if not re.search(spec.idn, idn, flags=re.IGNORECASE):
        raise IdentityMismatch(
            f"{role} at {spec.resource} answered *IDN? with {idn!r}, which does not match the bench "
            f"file's idn pattern {spec.idn!r}",
            resource=spec.resource,
        )
    return idn
