"""Twin of a Keysight 33500B two-channel function generator (the SCPI subset the drivers use).

Channel 1 feeds the bench's amplifier and load; channel 2 is not connected to the load but keeps its
state. Each channel tracks its true output state and whether a burst is being delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from instruments.twin.physics import BenchModel, VoltageDrive
from instruments.twin.scpi import ScpiDevice, ScpiError, format_number, parse_bool, parse_number

if TYPE_CHECKING:
    from instruments.twin.clock import SimClock

__all__ = ["TwinGenerator"]

_FUNCS = {"SIN": "SIN", "SINUSOID": "SIN", "SQU": "SQU", "SQUARE": "SQU", "PULS": "PULS", "PULSE": "PULS",
          "DC": "DC"}
MAX_V = 10.0  # open-circuit output range (±10 V into high impedance)


@dataclass
class _Channel:
    func: str = "SIN"
    freq_Hz: float = 1000.0
    width_s: float = 100e-6
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


class TwinGenerator(ScpiDevice):
    """Simulated 33500B: pulse/burst/limit/trigger subset, output state tracked."""

    idn = "Keysight Technologies,33522B,MY-TWIN-0001,5.03-3.15-2.00-58-00"

    def __init__(self, model: BenchModel, clock: SimClock) -> None:
        super().__init__()
        self.model = model
        self.clock = clock
        self.ch = {1: _Channel(), 2: _Channel()}
        S = "[SOURce#:]"
        self.add(S + "FUNCtion[:SHAPe]", self._func)
        self.add(S + "FREQuency[:CW]", self._num("freq_Hz", 1e-6, 30e6))
        self.add(S + "FUNCtion:PULSe:WIDTh", self._num("width_s", 16e-9, 1e6))
        self.add(S + "VOLTage[:LEVel][:IMMediate][:AMPLitude]", self._volt)
        self.add(S + "VOLTage[:LEVel][:IMMediate]:OFFSet", self._offset)
        self.add(S + "VOLTage:LIMit:HIGH", self._num("lim_high_V", -MAX_V, MAX_V))
        self.add(S + "VOLTage:LIMit:LOW", self._num("lim_low_V", -MAX_V, MAX_V))
        self.add(S + "VOLTage:LIMit:STATe", self._lim_state)
        self.add(S + "BURSt:STATe", self._bool("burst_on"))
        self.add(S + "BURSt:MODE", self._burst_mode)
        self.add(S + "BURSt:NCYCles", self._ncyc)
        self.add("TRIGger#:SOURce", self._trig_source)
        self.add("OUTPut#[:STATe]", self._output)
        self.add("OUTPut#:LOAD", self._load)
        self.add("*TRG", lambda s, a, q: self.bus_trigger())
        # twin only (no real instrument has it): switch the load between the dummy resistor and skin
        self.add("TWIN:LOAD", self._twin_load)

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
        arg = a[0].upper() if a else ""
        if arg not in ("DUMMY", "SKIN"):
            raise ScpiError(-224, f"load {arg!r}; expected DUMMY or SKIN")
        self.model.set_load(arg.lower())
        return None

    # ---- triggering and state
    def _stop_burst(self, n: int) -> None:
        """The burst of channel ``n`` (if any) ends now: output off, burst off, a new function, a reset."""
        c = self.ch[n]
        if c.burst_end_s > self.clock.now() and n == 1:
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
            if c.func not in ("PULS", "SQU"):
                continue
            if now < c.burst_end_s:
                self.push_error(-211, f"channel {n} still delivering its burst")
                continue
            period = 1.0 / c.freq_Hz
            width = c.width_s if c.func == "PULS" else period / 2
            if width >= period:
                self.push_error(-221, "pulse width not below the period")
                continue
            high, low = self._levels(c)
            if c.lim_on:
                high, low = min(high, c.lim_high_V), max(low, c.lim_low_V)
            # the set levels assume the declared load; into the amplifier's high impedance the EMF is seen
            emf = 2.0 if c.load_ohms != float("inf") else 1.0
            drive = VoltageDrive(high_V=high * emf, low_V=low * emf, pulse_width_s=width,
                                 period_s=period, pulses=c.ncyc)
            c.burst_end_s = now + c.ncyc * period
            if n == 1:
                self.model.start_voltage_burst(drive, now)

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
            self._stop_burst(1)
        self.ch = {1: _Channel(), 2: _Channel()}
