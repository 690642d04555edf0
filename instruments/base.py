"""Vendor-neutral interfaces of the bench: :class:`Stimulator`, :class:`Oscilloscope` and :class:`Trace`.

Delivery code talks only to these interfaces; each vendor driver in :mod:`instruments.drivers` implements one
of them. Conventions shared by all implementations:

* Units are SI and carried in argument names (``amplitude_V``, ``pulse_width_s``, ``amplitude_A``).
* Stimulator amplitudes are **at the instrument's output terminals** (open circuit, the generator's load
  setting is high impedance). Mapping "volts across the electrodes" to a generator setting through an
  amplifier's gain is done by :meth:`instruments.bench.ConnectedBench.generator_amplitude_for`.
* Nothing is enabled on connect. Stimulation is armed only as finite bursts on a bus trigger: each
  :meth:`Stimulator.trigger` delivers one burst, so a host that stops triggering stops the stimulation
  within one burst.
* Every configuration is validated before anything is sent, synchronised with ``*OPC?``, read back and
  compared, and followed by a drain of the error queue; any error is raised as an
  :class:`~instruments.errors.InstrumentError` subclass naming the resource.
* Scaling of oscilloscope data happens in the oscilloscope driver: the scope is told each channel's probe
  attenuation (so its preamble already reports volts at the probe tip), and the driver divides a current
  channel by its shunt resistance, so a :class:`Trace` is in ``'V'`` or ``'A'``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np

__all__ = ["Oscilloscope", "ScopeChannel", "Stimulator", "Trace", "CurrentWaveform", "TriggerSlope"]

#: waveform shapes a current stimulator accepts
CurrentWaveform = Literal["dc", "square", "biphasic"]
#: edge of an oscilloscope trigger
TriggerSlope = Literal["rising", "falling"]


@dataclass(frozen=True, eq=False)
class Trace:
    """One captured oscilloscope channel, scaled to physical units.

    Attributes
    ----------
    time_s : (N,) ndarray of float64
        Sample times relative to the trigger, in seconds (``xorigin + i * xinc``).
    values : (N,) ndarray of float64
        Samples in :attr:`unit`: volts at the probe tip, or amperes for a channel across a current shunt.
    unit : {'V', 'A'}
        Unit of :attr:`values`.
    channel : int
        Scope channel number (1-based).
    timestamp : datetime
        UTC time at which the acquisition was read (timezone-aware).
    meta : mapping
        The instrument's preamble and scaling details (``xinc_s``, ``yinc``, ``probe_attenuation``,
        ``shunt_ohms``, ``idn``, ...), kept so a stored capture can be re-scaled from its raw bytes.
    """

    time_s: np.ndarray
    values: np.ndarray
    unit: str
    channel: int
    timestamp: datetime
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.time_s.shape != self.values.shape or self.time_s.ndim != 1:
            raise ValueError(
                f"Trace of channel {self.channel}: time_s and values must be 1-D arrays of equal length, "
                f"got shapes {self.time_s.shape} and {self.values.shape}"
            )
        if self.unit not in ("V", "A"):
            raise ValueError(f"Trace of channel {self.channel}: unit must be 'V' or 'A', got {self.unit!r}")

    def __len__(self) -> int:
        return int(self.values.size)

    @property
    def sample_interval_s(self) -> float:
        """Time between samples in seconds (``xinc``)."""
        if "xinc_s" in self.meta:
            return float(self.meta["xinc_s"])
        if self.time_s.size < 2:
            raise ValueError(f"Trace of channel {self.channel} has fewer than two samples")
        return float(self.time_s[1] - self.time_s[0])


@dataclass(frozen=True)
class ScopeChannel:
    """How one oscilloscope channel is set up and scaled.

    Parameters
    ----------
    channel : int
        Channel number (1-based).
    volts_per_div : float
        Vertical scale at the probe tip, in volts per division (the scope shows 8 divisions).
    offset_V : float
        Vertical offset at the probe tip, in volts.
    probe_attenuation : float
        Probe ratio told to the scope (10 for a ×10 probe).
    shunt_ohms : float or None
        If set, the channel measures the voltage across a current-sense shunt of this resistance and the
        trace is returned in amperes.
    label : str
        Free text for tables and plots (``'electrode voltage'``).
    """

    channel: int
    volts_per_div: float
    offset_V: float = 0.0
    probe_attenuation: float = 1.0
    shunt_ohms: float | None = None
    label: str = ""

    @property
    def unit(self) -> str:
        """``'A'`` for a shunt channel, otherwise ``'V'``."""
        return "A" if self.shunt_ohms else "V"


class Stimulator(abc.ABC):
    """A source of stimulation: a function generator (voltage) or a current source.

    All methods are thread-safe (one re-entrant lock per instrument) and raise
    :class:`~instruments.errors.InstrumentError` subclasses naming the resource.
    """

    #: VISA resource string this driver talks to
    resource: str
    #: output channels the instrument has, e.g. ``(1, 2)``
    output_channels: tuple[int, ...]

    @abc.abstractmethod
    def identify(self) -> str:
        """Return the ``*IDN?`` reply."""

    @abc.abstractmethod
    def configure_pulse_train(
        self,
        channel: int,
        *,
        amplitude_V: float,
        pulse_width_s: float,
        frequency_Hz: float,
        pulses_per_burst: int,
        offset_V: float = 0.0,
        limit_V: float | None = None,
    ) -> dict[str, Any]:
        """Set up a finite, bus-triggered burst of rectangular voltage pulses; the output stays as it is.

        Parameters
        ----------
        channel : int
            Output channel.
        amplitude_V : float
            Pulse height above ``offset_V`` at the output (open circuit), in volts. Negative for pulses
            below the baseline.
        pulse_width_s : float
            Width of each pulse in seconds; must be shorter than the period ``1 / frequency_Hz``.
        frequency_Hz : float
            Pulse repetition frequency within the burst.
        pulses_per_burst : int
            Number of pulses each :meth:`trigger` delivers.
        offset_V : float
            Baseline level between pulses, in volts.
        limit_V : float, optional
            Instrument-side clamp: the output may never exceed ``±limit_V`` (``VOLT:LIM``); the
            requested levels must lie inside it. Defaults to the instrument's own maximum.

        Returns
        -------
        dict
            The settings read back from the instrument (same keys as the arguments, SI units).
        """

    #: whether :meth:`configure_carrier_train` is available (an arbitrary waveform generator)
    supports_carrier: bool = False

    def configure_carrier_train(
        self,
        channel: int,
        *,
        amplitude_V: float,
        pulse_width_s: float,
        carrier_Hz: float,
        frequency_Hz: float,
        pulses_per_burst: int,
        limit_V: float | None = None,
    ) -> dict[str, Any]:
        """Set up a finite, bus-triggered burst of pulses each filled with a bipolar square carrier.

        Parameters
        ----------
        channel : int
            Output channel.
        amplitude_V : float
            Carrier amplitude at the output (open circuit): the carrier swings ±``amplitude_V``.
        pulse_width_s, carrier_Hz, frequency_Hz : float
            Pulse width, carrier frequency inside it, and pulse repetition frequency.
        pulses_per_burst : int
            Pulses each :meth:`trigger` delivers.
        limit_V : float, optional
            Instrument-side clamp ±``limit_V``.

        Returns
        -------
        dict
            Settings read back, with the realised pulse width and carrier frequency.

        Raises
        ------
        InstrumentError
            When the instrument cannot play arbitrary waveforms (:attr:`supports_carrier` is False).
        """
        from instruments.errors import InstrumentError

        raise InstrumentError(f"{type(self).__name__} at {getattr(self, 'resource', '')} cannot deliver a carrier "
                              "inside pulses (no arbitrary waveform support in this driver)",
                              resource=getattr(self, "resource", None))

    @abc.abstractmethod
    def configure_current(
        self,
        channel: int,
        *,
        amplitude_A: float,
        waveform: CurrentWaveform,
        frequency_Hz: float,
        compliance_V: float,
        cycles_per_burst: int,
        polarity: int = 1,
        dc_offset_A: float = 0.0,
        duty_cycle: float = 0.5,
        load_ohms: float = 0.0,
    ) -> dict[str, Any]:
        """Set up a finite burst of current stimulation (microcurrent).

        Parameters
        ----------
        channel : int
            Output channel.
        amplitude_A : float
            Peak current in amperes (``'dc'``: the constant current; ``'biphasic'``: the AC amplitude).
        waveform : {'dc', 'square', 'biphasic'}
            ``'biphasic'`` alternates polarity every half period (charge balanced); ``'square'`` is
            unipolar (0 to ``amplitude_A``); ``'dc'`` is galvanic.
        frequency_Hz : float
            Waveform frequency (for ``'dc'``: the frequency that sets the burst duration with
            ``cycles_per_burst``).
        compliance_V : float
            Highest voltage the source may apply to keep the current.
        cycles_per_burst : int
            Number of cycles each :meth:`trigger` delivers.
        polarity : {1, -1}
            −1 reverses a ``'square'`` or ``'dc'`` current, and the direct part of a DC + AC one.
        dc_offset_A : float
            Direct current added to a ``'biphasic'`` waveform (a combined DC + AC protocol).
        duty_cycle : float
            On-time fraction of a ``'square'`` period.
        load_ohms : float
            Resistance in series with the output besides the instrument's own (the measured load and the
            shunt): a voltage generator driving a series resistor needs it to set the current; a true current
            source ignores it.

        Returns
        -------
        dict
            The settings read back from the instrument.
        """

    @abc.abstractmethod
    def arm(self, channel: int | None = None) -> None:
        """Check that the channel(s) are configured as finite bus-triggered bursts, ready for :meth:`trigger`."""

    @abc.abstractmethod
    def trigger(self) -> bool:
        """Deliver one finite burst on every armed channel whose output is on (``*TRG``).

        Returns once the instrument has executed the start (not when the burst ends): True if a burst
        started, False if the instrument ignored the trigger because its previous burst was still running.
        Any other instrument error raises.
        """

    @abc.abstractmethod
    def output_on(self, channel: int) -> None:
        """Switch an armed channel's output on and read it back on (bursts still need :meth:`trigger`)."""

    @abc.abstractmethod
    def output_off(self, channel: int) -> None:
        """Switch a channel's output off and read it back off."""

    @abc.abstractmethod
    def output_state(self, channel: int) -> bool:
        """Return the output state read back from the instrument (True means on)."""

    @abc.abstractmethod
    def errors(self) -> list[str]:
        """Drain the error queue and return its entries (empty when there were none)."""

    @abc.abstractmethod
    def safe_shutdown(self) -> None:
        """Switch every output off and read each back off.

        Raises
        ------
        OutputStateUnknown
            If an output could not be confirmed off.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Shut the outputs down safely (as :meth:`safe_shutdown`) and close the connection."""

    def __enter__(self) -> Stimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Oscilloscope(abc.ABC):
    """A digital oscilloscope returning scaled, time-stamped :class:`Trace` objects.

    Sampling: a record of ``record_points`` spans the screen, ``divisions × timebase``, so the sample interval
    is ``divisions × timebase / record_points``. :meth:`record_points_for` picks the smallest record the scope
    offers that samples at least as fast as a measure needs, or refuses.
    """

    #: VISA resource string this driver talks to
    resource: str
    #: horizontal divisions of the screen
    divisions: int = 10
    #: fastest sampling per channel with two channels on (Sa/s); a bench file may lower it
    max_sample_rate_Sa_s: float = 1e9
    #: deepest record per channel with two channels on (points); a bench file may lower it
    max_record_points: int = 1_000_000
    #: analogue bandwidth (Hz)
    bandwidth_Hz: float = 100e6

    @classmethod
    def record_depths(cls, channels: int = 2) -> Sequence[int] | None:
        """The record lengths the scope offers with ``channels`` on, ascending (None: any up to the maximum)."""
        return None

    @classmethod
    def timebase_at_least(cls, timebase_s_per_div: float) -> float:
        """The timebase the scope would be set to for at least ``timebase_s_per_div`` (any value by default;
        scopes with fixed steps round up to their next step)."""
        return float(timebase_s_per_div)

    @classmethod
    def sample_interval_s(cls, timebase_s_per_div: float, record_points: int) -> float:
        """Seconds between samples of a ``record_points`` record at ``timebase_s_per_div``."""
        return cls.divisions * timebase_s_per_div / record_points

    @classmethod
    def record_points_for(cls, timebase_s_per_div: float, max_interval_s: float, channels: int = 2, *,
                          max_sample_rate_Sa_s: float | None = None, max_record_points: int | None = None,
                          name: str = "the scope") -> int:
        """The smallest record sampling at least every ``max_interval_s`` over the screen.

        Parameters
        ----------
        timebase_s_per_div, max_interval_s : float
            Timebase and the longest acceptable time between samples.
        channels : int
            Channels on (the record lengths on offer depend on it).
        max_sample_rate_Sa_s, max_record_points : optional
            Lower limits declared for this particular scope (a bench file), instead of the model's.
        name : str
            How the scope is named in a refusal.

        Raises
        ------
        OutOfRange
            When the scope cannot sample that fast (rate or memory), naming both limits.
        """
        from instruments.errors import OutOfRange

        max_rate = min(cls.max_sample_rate_Sa_s, max_sample_rate_Sa_s or math.inf)
        max_points = min(cls.max_record_points, max_record_points or cls.max_record_points)
        span = cls.divisions * timebase_s_per_div
        needed = max(math.ceil(span / max_interval_s - 1e-9), 1)
        rate = 1.0 / max_interval_s
        depths = cls.record_depths(channels)
        fits = [d for d in depths if d >= needed] if depths is not None else [needed]
        points = min(fits) if fits else None
        if rate > max_rate * (1 + 1e-9) or points is None or points > max_points:
            raise OutOfRange(
                f"{name} cannot sample every {max_interval_s:.3g} s ({rate:.3g} Sa/s) over a {span:.3g} s screen "
                f"({needed} points): it offers at most {max_rate:.3g} Sa/s and {max_points} points per channel",
                resource=name)
        return int(points)

    @abc.abstractmethod
    def identify(self) -> str:
        """Return the ``*IDN?`` reply."""

    @abc.abstractmethod
    def configure(
        self,
        *,
        timebase_s_per_div: float,
        channels: Sequence[ScopeChannel],
        trigger_channel: int = 1,
        trigger_level_V: float = 0.0,
        position_s: float = 0.0,
        record_points: int | None = None,
        trigger_slope: TriggerSlope = "rising",
    ) -> dict[str, Any]:
        """Set up timebase, channels and an edge trigger; read back and compare.

        Parameters
        ----------
        timebase_s_per_div : float
            Horizontal scale in seconds per division.
        channels : sequence of ScopeChannel
            The channels to display and capture, with their scaling; the scope's other channels are
            switched off (the record lengths on offer depend on how many are on).
        trigger_channel : int
            Source of the edge trigger.
        trigger_level_V : float
            Trigger level at the probe tip, in volts.
        trigger_slope : {'rising', 'falling'}
            Edge that triggers: a signal crossing the level upward or downward.
        position_s : float
            Horizontal position of the trigger relative to the screen centre, in seconds.
        record_points : int, optional
            Memory depth; the default is the scope's screen record.

        Returns
        -------
        dict
            Settings read back.
        """

    @abc.abstractmethod
    def single(self) -> None:
        """Arm a single acquisition (the next trigger is captured)."""

    @abc.abstractmethod
    def acquired(self) -> bool:
        """Whether the armed single acquisition is complete (triggered and its record filled)."""

    @abc.abstractmethod
    def force_trigger(self) -> None:
        """Trigger the armed acquisition now, whatever the signal (it shows what is there: e.g. no current)."""

    @abc.abstractmethod
    def capture(self, channels: Sequence[int] = (1, 2)) -> dict[int, Trace]:
        """Read the last acquisition of ``channels`` as scaled traces (binary blocks, preamble scaling)."""

    @abc.abstractmethod
    def errors(self) -> list[str]:
        """Drain the error queue and return its entries."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection."""

    def __enter__(self) -> Oscilloscope:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
