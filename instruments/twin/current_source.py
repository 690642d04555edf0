"""Twin of a Keithley 6221 AC/DC current source (wave mode, compliance, output).

``SOUR:WAVE:FUNC SQU`` follows ``SOUR:WAVE:DCYC``; ``SIN`` and ``RAMP`` (rising for ``DCYC`` % of the period,
a triangle at 50 %) are played as 64 held steps per period, so their r.m.s. and peak are those of the shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from instruments.twin.physics import BenchModel, CurrentDrive
from instruments.twin.scpi import ScpiDevice, ScpiError, format_number, parse_bool, parse_number

if TYPE_CHECKING:
    from instruments.twin.clock import SimClock

__all__ = ["TwinCurrentSource"]

MAX_A = 0.105
#: held steps per period of a sine or a ramp
_STEPS = 64


@dataclass
class _State:
    func: str = "SIN"
    ampl_A: float = 1e-3
    offs_A: float = 0.0
    freq_Hz: float = 1000.0
    dcyc_pct: float = 50.0
    cycles: float = 1.0
    compliance_V: float = 10.0
    dc_A: float = 0.0
    armed: bool = False
    output: bool = False
    burst_end_s: float = -1.0


class TwinCurrentSource(ScpiDevice):
    """Simulated 6221: ``SOUR:WAVE`` functions with a finite duration in cycles, compliance, ``OUTP``."""

    idn = "KEITHLEY INSTRUMENTS INC.,MODEL 6221,TWIN0002,D03  /700x"

    def __init__(self, model: BenchModel, clock: SimClock) -> None:
        super().__init__()
        self.model = model
        self.clock = clock
        self.st = _State()
        W = "[SOURce:]WAVE:"
        self.add(W + "FUNCtion", self._func)
        self.add(W + "AMPLitude", self._num("ampl_A", 2e-12, MAX_A))
        self.add(W + "OFFSet", self._num("offs_A", -MAX_A, MAX_A))
        self.add(W + "FREQuency", self._num("freq_Hz", 1e-3, 1e5))
        self.add(W + "DCYCle", self._num("dcyc_pct", 0.0, 100.0))
        self.add(W + "DURation:CYCLes", self._num("cycles", 1e-3, 99999999900))
        self.add(W + "ARM", self._arm)
        self.add(W + "INITiate", self._init)
        self.add(W + "ABORt", self._abort)
        self.add("[SOURce:]CURRent[:AMPLitude]", self._num("dc_A", -MAX_A, MAX_A))
        self.add("[SOURce:]CURRent:COMPliance", self._num("compliance_V", 0.1, 105.0))
        self.add("OUTPut[:STATe]", self._output)

    def _num(self, attr: str, lo: float, hi: float):
        def handler(s: list[int], a: list[str], q: bool) -> str | None:
            if q:
                return format_number(getattr(self.st, attr))
            if not a:
                raise ScpiError(-109)
            setattr(self.st, attr, parse_number(a[0], lo=lo, hi=hi, name=attr))
            return None
        return handler

    def _func(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            return self.st.func
        f = a[0].upper() if a else ""
        names = {"SIN": "SIN", "SINE": "SIN", "SQU": "SQU", "SQUARE": "SQU", "RAMP": "RAMP"}
        if f not in names:
            raise ScpiError(-224, f"wave function {f!r}")
        self.st.func = names[f]
        return None

    def _arm(self, s: list[int], a: list[str], q: bool) -> None:
        peak = abs(self.st.offs_A) + abs(self.st.ampl_A)
        if peak > MAX_A:
            raise ScpiError(-221, "amplitude + offset above 105 mA")
        self.st.armed = True

    def _init(self, s: list[int], a: list[str], q: bool) -> None:
        st = self.st
        if not st.armed:
            raise ScpiError(-221, "wave not armed")
        if not st.output:
            return
        now = self.clock.now()
        if now < st.burst_end_s:
            # a wave still running is not restarted: the start request is ignored and reported
            self.push_error(-213, "wave still running")
            return
        period = 1.0 / st.freq_Hz
        cycles = max(1, round(st.cycles))
        st.burst_end_s = now + st.cycles * period
        if st.func == "SQU":
            high_s = period * st.dcyc_pct / 100.0
            drive = CurrentDrive(high_A=st.offs_A + st.ampl_A, low_A=st.offs_A - st.ampl_A, high_s=high_s,
                                 period_s=period, cycles=cycles, compliance_V=st.compliance_V)
            self.model.start_current_burst(drive, now)
            return
        # a sine, or a ramp rising for DCYCle % of the period (50 %: a triangle), as held steps
        u = np.arange(_STEPS) / _STEPS
        if st.func == "SIN":
            shape = np.sin(2 * np.pi * u)
        else:
            rise = min(max(st.dcyc_pct / 100.0, 1e-3), 1 - 1e-3)
            x = np.mod(u + rise / 2, 1.0)  # starts at 0 going up, as the sine does
            shape = np.where(x < rise, -1 + 2 * x / rise, 1 - 2 * (x - rise) / (1 - rise))
        levels = st.offs_A + st.ampl_A * shape
        self.model.start_current_phases(tuple((float(a), period / _STEPS) for a in levels), cycles, now,
                                        compliance_V=st.compliance_V)

    def _stop_wave(self) -> None:
        if self.st.burst_end_s > self.clock.now():
            self.model.cut(self.clock.now())
        self.st.burst_end_s = -1.0

    def _abort(self, s: list[int], a: list[str], q: bool) -> None:
        self.st.armed = False
        self._stop_wave()

    def _output(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            return "1" if self.st.output else "0"
        if not a:
            raise ScpiError(-109)
        self.st.output = parse_bool(a[0])
        if not self.st.output:
            self._stop_wave()
            self.st.armed = False
        return None

    def operations_complete_at(self) -> float | None:
        """End of the running wave, the operation ``*OPC?`` waits for; None when none runs."""
        end = self.st.burst_end_s
        return end if self.st.output and end > self.clock.now() else None

    def output_state(self, channel: int = 1) -> bool:
        """True output state (the 6221 has one output)."""
        return self.st.output

    def delivering(self, channel: int = 1) -> bool:
        """True while a wave burst is in progress."""
        return self.st.output and self.clock.now() < self.st.burst_end_s

    def reset(self) -> None:
        if hasattr(self, "st"):
            self._stop_wave()
        self.st = _State()
