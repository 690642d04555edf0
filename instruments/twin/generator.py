"""Twin of a Keysight 33500B two-channel function generator (the SCPI subset the drivers use).

Channel 1 feeds the bench's amplifier and load; a channel wired to a series resistor (the bench's
``series_resistor_channel``) drives the same load through it, without the amplifier (microcurrent from a
generator); any other channel is not connected but keeps its state. Each channel tracks its true output
state and whether a burst is being delivered.

Continuous output (``BURS:STAT OFF``, the default): with the output on, ``FUNC PULS`` (``FUNC:PULS:WIDT`` or
``FUNC:PULS:DCYC``), ``SQU`` (``FUNC:SQU:DCYC``), ``SIN`` (rendered as 64 held steps per period), ``DC``
(the offset) and ``ARB`` run without a trigger from the moment the output goes on; changing any setting changes
the output at once, and switching the output off, turning burst mode on or ``*RST`` ends it. The levels assume
the declared ``OUTP:LOAD`` (into the amplifier's high impedance a 50 Ω setting gives twice the voltage).
Only one output drives the load at a time: the channel that started last.

Arbitrary waveforms: ``DATA:ARB:DAC`` (codes ±32767) or ``DATA:ARB`` (±1.0) load a named waveform into the
channel's volatile memory (8 to 1 M points), ``FUNC:ARB`` selects it, ``FUNC ARB`` plays it at
``FUNC:ARB:SRAT``; the twin plays every ARB sample-and-hold (as ``FUNC:ARB:FILT OFF``; ``NORM`` and ``STEP``
are accepted and read back, not smoothed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from instruments.twin.physics import BenchModel
from instruments.twin.scpi import ScpiDevice, ScpiError, format_number, parse_bool, parse_choice, parse_number

if TYPE_CHECKING:
    from instruments.twin.clock import SimClock

__all__ = ["TwinGenerator"]

_FUNCS = {"SIN": "SIN", "SINUSOID": "SIN", "SQU": "SQU", "SQUARE": "SQU", "PULS": "PULS", "PULSE": "PULS",
          "DC": "DC", "ARB": "ARB", "ARBITRARY": "ARB"}
#: points an arbitrary waveform may have (the 33500B's standard memory)
ARB_POINTS = (8, 1_000_000)
MAX_V = 10.0  # open-circuit output range (±10 V into high impedance)
#: held steps per period of a continuous sine
_SINE_STEPS = 64
#: a continuous output is a burst this long (simulated seconds, at most this many periods), ended when it stops
_CONTINUOUS_S = 1e7
_CONTINUOUS_CYCLES = 10**10
#: periods of a continuous output solved one by one (it settles in a few; the rest repeats the last)
_CONTINUOUS_SOLVED = 4


@dataclass
class _Channel:
    func: str = "SIN"
    freq_Hz: float = 1000.0
    width_s: float = 100e-6
    #: square-wave duty cycle (FUNC:SQU:DCYC), in percent
    square_duty_pct: float = 50.0
    volt_Vpp: float = 0.1
    offset_V: float = 0.0
    lim_high_V: float = 5.0
    lim_low_V: float = -5.0
    lim_on: bool = False
    burst_on: bool = False
    burst_mode: str = "TRIG"
    ncyc: int = 1
    trig_source: str = "IMM"
    load_ohms: float = 50.0  # inf for high impedance
    output: bool = False
    burst_end_s: float = -1.0
    #: arbitrary waveforms in volatile memory (name → samples in ±1), the one selected, its rate and filter
    arbs: dict[str, np.ndarray] = field(default_factory=dict)
    arb: str = ""
    arb_srate: float = 40e3
    arb_filter: str = "NORM"
    #: settings of the continuous output running on the load (None: none runs)
    running: tuple | None = None
    running_seq: int = 0


class TwinGenerator(ScpiDevice):
    """Simulated 33500B: pulse/burst/limit/trigger subset, output state tracked."""

    idn = "Keysight Technologies,33522B,MY-TWIN-0001,5.03-3.15-2.00-58-00"

    def __init__(self, model: BenchModel, clock: SimClock, *, series_channel: int | None = None,
                 series_ohms: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.clock = clock
        #: the channel wired to the load through a series resistor (no amplifier), and the resistor
        self.series_channel = series_channel
        self.series_ohms = series_ohms
        self.ch = {1: _Channel(), 2: _Channel()}
        S = "[SOURce#:]"
        self.add(S + "FUNCtion[:SHAPe]", self._func)
        self.add(S + "FREQuency[:CW]", self._num("freq_Hz", 1e-6, 30e6))
        self.add(S + "FUNCtion:PULSe:WIDTh", self._num("width_s", 16e-9, 1e6))
        self.add(S + "FUNCtion:PULSe:DCYCle", self._pulse_duty)
        self.add(S + "FUNCtion:SQUare:DCYCle", self._num("square_duty_pct", 0.01, 99.99))
        self.add(S + "VOLTage[:LEVel][:IMMediate][:AMPLitude]", self._volt)
        self.add(S + "VOLTage[:LEVel][:IMMediate]:OFFSet", self._offset)
        self.add(S + "VOLTage:LIMit:HIGH", self._num("lim_high_V", -MAX_V, MAX_V))
        self.add(S + "VOLTage:LIMit:LOW", self._num("lim_low_V", -MAX_V, MAX_V))
        self.add(S + "VOLTage:LIMit:STATe", self._lim_state)
        self.add(S + "BURSt:STATe", self._bool("burst_on"))
        self.add(S + "BURSt:MODE", self._burst_mode)
        self.add(S + "BURSt:NCYCles", self._ncyc)
        self.add(S + "DATA:VOLatile:CLEar", self._arb_clear)
        self.add(S + "DATA:ARBitrary:DAC", self._arb_data(32767.0))
        self.add(S + "DATA:ARBitrary", self._arb_data(1.0))
        self.add(S + "DATA:ATTRibute:POINts", self._arb_points)
        self.add(S + "FUNCtion:ARBitrary", self._arb_select)
        self.add(S + "FUNCtion:ARBitrary:SRATe", self._num("arb_srate", 1e-6, 160e6))
        self.add(S + "FUNCtion:ARBitrary:FILTer", self._arb_filter)
        self.add("TRIGger#:SOURce", self._trig_source)
        self.add("OUTPut#[:STATe]", self._output)
        self.add("OUTPut#:LOAD", self._load)
        self.add("*TRG", lambda s, a, q: self.bus_trigger())
        # twin only (no real instrument has it): switch the load between the dummy resistor and skin
        self.add("TWIN:LOAD", self._twin_load)

    def _dispatch(self, name: str, args: list[str], is_query: bool) -> str | bytes | None:
        reply = super()._dispatch(name, args, is_query)
        if not is_query:
            self._follow_settings()
        return reply

    # ---- helpers
    def _chan(self, suffixes: list[int]) -> _Channel:
        n = suffixes[0] if suffixes else 1
        if n not in self.ch:
            raise ScpiError(-113, f"channel {n} does not exist")
        return self.ch[n]

    def _num(self, attr: str, lo: float, hi: float):
        def handler(s: list[int], a: list[str], q: bool) -> str | None:
            c = self._chan(s)
            if q:
                return format_number(getattr(c, attr))
            if not a:
                raise ScpiError(-109)
            setattr(c, attr, parse_number(a[0], lo=lo, hi=hi, name=attr))
            return None
        return handler

    def _bool(self, attr: str):
        def handler(s: list[int], a: list[str], q: bool) -> str | None:
            c = self._chan(s)
            if q:
                return "1" if getattr(c, attr) else "0"
            if not a:
                raise ScpiError(-109)
            setattr(c, attr, parse_bool(a[0]))
            return None
        return handler

    def _levels(self, c: _Channel) -> tuple[float, float]:
        return c.offset_V + c.volt_Vpp / 2, c.offset_V - c.volt_Vpp / 2

    def _check_limits(self, c: _Channel, high: float, low: float) -> None:
        if abs(high) > MAX_V or abs(low) > MAX_V:
            raise ScpiError(-222, f"levels {low:g}..{high:g} V outside ±{MAX_V:g} V")
        if c.lim_on and (high > c.lim_high_V + 1e-9 or low < c.lim_low_V - 1e-9):
            raise ScpiError(-221, f"levels {low:g}..{high:g} V outside the voltage limits")

    # ---- handlers
    def _func(self, s: list[int], a: list[str], q: bool) -> str | None:
        c = self._chan(s)
        if q:
            return c.func
        if not a or a[0].upper() not in _FUNCS:
            raise ScpiError(-224, f"function {a[0] if a else ''!r}")
        c.func = _FUNCS[a[0].upper()]
        return None

    def _pulse_duty(self, s: list[int], a: list[str], q: bool) -> str | None:
        """``FUNC:PULS:DCYC``: the pulse width as a percentage of the period (the width is what is held)."""
        c = self._chan(s)
        if q:
            return format_number(100.0 * c.width_s * c.freq_Hz)
        if not a:
            raise ScpiError(-109)
        duty = parse_number(a[0], lo=0.001, hi=99.999, name="duty cycle")
        c.width_s = duty / 100.0 / c.freq_Hz
        return None

    def _arb_clear(self, s: list[int], a: list[str], q: bool) -> None:
        c = self._chan(s)
        self._stop_burst(s[0] if s else 1)
        c.arbs.clear()
        c.arb = ""

    def _arb_data(self, full_scale: float):
        def handler(s: list[int], a: list[str], q: bool) -> None:
            c = self._chan(s)
            if q or len(a) < 2:
                raise ScpiError(-109, "DATA:ARB needs a name and its samples")
            name = a[0].strip().strip('"').upper()
            if not name or len(name) > 12:
                raise ScpiError(-224, f"arb name {a[0]!r} (1 to 12 characters)")
            try:
                values = np.array([float(x) for x in a[1:]]) / full_scale
            except ValueError:
                raise ScpiError(-104, "arb samples must be numbers") from None
            if not ARB_POINTS[0] <= values.size <= ARB_POINTS[1]:
                raise ScpiError(-222, f"{values.size} points; accepted {ARB_POINTS[0]} to {ARB_POINTS[1]}")
            if np.any(np.abs(values) > 1.0 + 1e-9):
                raise ScpiError(-222, "arb samples outside the DAC range")
            c.arbs[name] = values
            return None
        return handler

    def _arb_points(self, s: list[int], a: list[str], q: bool) -> str:
        c = self._chan(s)
        name = (a[0].strip().strip('"').upper() if a else c.arb)
        if name not in c.arbs:
            raise ScpiError(-224, f"no arbitrary waveform {name!r} in volatile memory")
        return str(c.arbs[name].size)

    def _arb_select(self, s: list[int], a: list[str], q: bool) -> str | None:
        c = self._chan(s)
        if q:
            return f'"{c.arb}"'
        name = a[0].strip().strip('"').upper() if a else ""
        if name not in c.arbs:
            raise ScpiError(-224, f"no arbitrary waveform {name!r} in volatile memory")
        c.arb = name
        return None

    def _arb_filter(self, s: list[int], a: list[str], q: bool) -> str | None:
        c = self._chan(s)
        if q:
            return c.arb_filter
        c.arb_filter = parse_choice(a, {"NORM": "NORM", "NORMAL": "NORM", "STEP": "STEP", "OFF": "OFF"},
                                    name="filter")
        return None

    def _arb_phases(self, c: _Channel) -> tuple[tuple[tuple[float, float], ...], float]:
        """The selected ARB as (volts, seconds) steps at the output terminals, and its period."""
        samples = c.arbs[c.arb]
        levels = c.offset_V + samples * c.volt_Vpp / 2
        if c.lim_on:
            levels = np.clip(levels, c.lim_low_V, c.lim_high_V)
        change = np.flatnonzero(np.diff(levels)) + 1
        starts = np.concatenate(([0], change))
        counts = np.diff(np.concatenate((starts, [levels.size])))
        dt = 1.0 / c.arb_srate
        return tuple((float(levels[k]), float(n * dt)) for k, n in zip(starts, counts, strict=True)), levels.size * dt

    def _volt(self, s: list[int], a: list[str], q: bool) -> str | None:
        c = self._chan(s)
        if q:
            return format_number(c.volt_Vpp)
        if not a:
            raise ScpiError(-109)
        v = parse_number(a[0], lo=1e-3, hi=2 * MAX_V, name="amplitude")
        self._check_limits(c, c.offset_V + v / 2, c.offset_V - v / 2)
        c.volt_Vpp = v
        return None

    def _offset(self, s: list[int], a: list[str], q: bool) -> str | None:
        c = self._chan(s)
        if q:
            return format_number(c.offset_V)
        if not a:
            raise ScpiError(-109)
        o = parse_number(a[0], lo=-MAX_V, hi=MAX_V, name="offset")
        self._check_limits(c, o + c.volt_Vpp / 2, o - c.volt_Vpp / 2)
        c.offset_V = o
        return None

    def _lim_state(self, s: list[int], a: list[str], q: bool) -> str | None:
        c = self._chan(s)
        if q:
            return "1" if c.lim_on else "0"
        if not a:
            raise ScpiError(-109)
        on = parse_bool(a[0])
        if on:
            high, low = self._levels(c)
            if c.lim_low_V >= c.lim_high_V:
                raise ScpiError(-221, "low limit not below high limit")
            if high > c.lim_high_V + 1e-9 or low < c.lim_low_V - 1e-9:
                raise ScpiError(-221, "present levels outside the limits")
        c.lim_on = on
        return None

    def _burst_mode(self, s: list[int], a: list[str], q: bool) -> str | None:
        c = self._chan(s)
        if q:
            return c.burst_mode
        mode = (a[0].upper() if a else "")
        if mode not in ("TRIG", "TRIGGERED", "GAT", "GATED"):
            raise ScpiError(-224, f"burst mode {mode!r}")
        c.burst_mode = mode[:4] if mode.startswith("TRIG") else "GAT"
        return None

    def _ncyc(self, s: list[int], a: list[str], q: bool) -> str | None:
        c = self._chan(s)
        if q:
            return format_number(c.ncyc)
        if not a:
            raise ScpiError(-109)
        n = parse_number(a[0], lo=1, hi=100_000_000, name="cycles")
        if n != int(n):
            raise ScpiError(-224, "cycles must be an integer")
        c.ncyc = int(n)
        return None

    def _trig_source(self, s: list[int], a: list[str], q: bool) -> str | None:
        c = self._chan(s)
        if q:
            return c.trig_source
        src = a[0].upper() if a else ""
        names = {"BUS": "BUS", "IMM": "IMM", "IMMEDIATE": "IMM", "EXT": "EXT", "EXTERNAL": "EXT"}
        if src not in names:
            raise ScpiError(-224, f"trigger source {src!r}")
        c.trig_source = names[src]
        return None

    def _output(self, s: list[int], a: list[str], q: bool) -> str | None:
        c = self._chan(s)
        if q:
            return "1" if c.output else "0"
        if not a:
            raise ScpiError(-109)
        c.output = parse_bool(a[0])
        if not c.output:
            self._stop_burst(s[0] if s else 1)
        return None

    def _load(self, s: list[int], a: list[str], q: bool) -> str | None:
        c = self._chan(s)
        if q:
            return "+9.9E+37" if c.load_ohms == float("inf") else format_number(c.load_ohms)
        arg = a[0].upper() if a else ""
        if arg in ("INF", "INFINITY"):
            c.load_ohms = float("inf")
        else:
            c.load_ohms = parse_number(arg, lo=1.0, hi=10e3, default=50.0, name="load")
        return None

    def _twin_load(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            return self.model.load.upper()
        self.model.set_load(parse_choice(a, {"DUMMY": "DUMMY", "SKIN": "SKIN"}, name="load").lower())
        return None

    # ---- triggering and state
    def _drives_load(self, n: int) -> bool:
        return n == 1 or n == self.series_channel

    def _deliver(self, n: int, phases: tuple[tuple[float, float], ...], cycles: int, now: float, *,
                 continuous: bool = False) -> None:
        """Start a burst of channel ``n`` on the load: through the amplifier, or through the series resistor."""
        # a continuous output settles in a few periods: the rest repeats the last one solved
        periods = _CONTINUOUS_SOLVED if continuous else None
        if n == self.series_channel:
            self.model.start_voltage_phases(phases, cycles, now, through_amplifier=False,
                                            source_ohms=50.0 + self.series_ohms, simulated_periods=periods)
        elif n == 1:
            self.model.start_voltage_phases(phases, cycles, now, simulated_periods=periods)

    def _stop_burst(self, n: int) -> None:
        """The burst of channel ``n`` (if any) ends now: output off, burst off, a new function, a reset."""
        c = self.ch[n]
        if c.burst_end_s > self.clock.now() and self._drives_load(n):
            self.model.cut(self.clock.now())
        c.burst_end_s = -1.0

    def bus_trigger(self) -> None:
        """``*TRG``: start one burst on each channel armed for a bus trigger whose output is on.

        A channel still delivering its previous burst ignores the trigger (as the 33500B does) and queues
        -211 "Trigger ignored".
        """
        now = self.clock.now()
        for n, c in self.ch.items():
            if not (c.output and c.burst_on and c.burst_mode == "TRIG" and c.trig_source == "BUS"):
                continue
            if c.func not in ("PULS", "SQU", "ARB"):
                continue
            if now < c.burst_end_s:
                self.push_error(-211, f"channel {n} still delivering its burst")
                continue
            period = self._play(n, c, now)
            if period is not None:
                c.burst_end_s = now + c.ncyc * period

    def _play(self, n: int, c: _Channel, now: float, *, continuous: bool = False) -> float | None:
        """Start a burst of ``NCYC`` periods of channel ``n``'s function on the load, or its continuous output;
        return the period, or None (an error queued) when the function cannot be played."""
        if c.func == "ARB" and c.arb not in c.arbs:
            self.push_error(-221, "no arbitrary waveform selected")
            return None
        shape = self._periodic_phases(c)
        if shape is None:
            self.push_error(-221, "pulse width not below the period")
            return None
        phases, period = shape
        # the set levels assume the declared load; into the amplifier's high impedance the EMF is seen
        emf = 2.0 if c.load_ohms != float("inf") else 1.0
        cycles = max(1, int(min(_CONTINUOUS_S / period, _CONTINUOUS_CYCLES))) if continuous else c.ncyc
        self._deliver(n, tuple((lvl * emf, d) for lvl, d in phases), cycles, now, continuous=continuous)
        return period

    def _periodic_phases(self, c: _Channel) -> tuple[tuple[tuple[float, float], ...], float] | None:
        """One period of the channel's function as (volts, seconds) steps at the terminals (into the declared
        load), and the period; None when the pulse does not fit its period."""
        if c.func == "ARB":
            return self._arb_phases(c)
        period = 1.0 / c.freq_Hz
        high, low = self._levels(c)
        if c.lim_on:
            high, low = min(high, c.lim_high_V), max(low, c.lim_low_V)
        if c.func == "DC":
            level = min(max(c.offset_V, c.lim_low_V), c.lim_high_V) if c.lim_on else c.offset_V
            return ((level, period),), period
        if c.func == "SIN":
            k = np.arange(_SINE_STEPS)
            levels = c.offset_V + c.volt_Vpp / 2 * np.sin(2 * np.pi * k / _SINE_STEPS)
            if c.lim_on:
                levels = np.clip(levels, c.lim_low_V, c.lim_high_V)
            return tuple((float(v), period / _SINE_STEPS) for v in levels), period
        width = c.width_s if c.func == "PULS" else period * c.square_duty_pct / 100.0
        if width >= period:
            return None
        return ((high, width), (low, period - width)), period

    def _follow_settings(self) -> None:
        """Start, change or end the continuous output of each channel to match its settings now."""
        for n, c in self.ch.items():
            continuous = c.output and not c.burst_on and self._drives_load(n)
            if continuous and c.func == "ARB" and c.arb not in c.arbs:
                continuous = False
            sig = ((c.func, c.freq_Hz, c.width_s, c.square_duty_pct, c.volt_Vpp, c.offset_V, c.lim_on,
                    c.lim_high_V, c.lim_low_V, c.load_ohms, c.arb, c.arb_srate, self.model.load)
                   if continuous else None)
            if sig == c.running:
                continue
            now = self.clock.now()
            self._end_continuous(c, now)
            if sig is None:
                continue
            if self._play(n, c, now, continuous=True) is not None:
                c.running, c.running_seq = sig, self.model.ledger.mark()

    def _end_continuous(self, c: _Channel, now: float) -> None:
        """End the channel's continuous output, unless another output has replaced it on the load since."""
        if c.running is not None and self.model.ledger.mark() == c.running_seq:
            self.model.cut(now)
        c.running = None

    def operations_complete_at(self) -> float | None:
        """End of the running burst(s), the operation ``*OPC?`` waits for; None when no burst runs."""
        now = self.clock.now()
        ends = [c.burst_end_s for c in self.ch.values() if c.output and c.burst_end_s > now]
        return max(ends) if ends else None

    def output_state(self, channel: int) -> bool:
        """True output state of a channel."""
        return self.ch[channel].output

    def delivering(self, channel: int) -> bool:
        """True while the channel's output is on and a burst is in progress (or a continuous output)."""
        c = self.ch[channel]
        if not c.output:
            return False
        if not c.burst_on:
            return True  # continuous output
        return self.clock.now() < c.burst_end_s

    def reset(self) -> None:
        if hasattr(self, "ch"):
            for n, c in self.ch.items():
                self._end_continuous(c, self.clock.now())
                self._stop_burst(n)
        self.ch = {1: _Channel(), 2: _Channel()}
