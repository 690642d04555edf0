"""Twin of a Keithley 6221 AC/DC current source (wave mode, compliance, output).

``SOUR:WAVE:FUNC SQU`` follows ``SOUR:WAVE:DCYC``; ``SIN`` and ``RAMP`` (rising for ``DCYC`` % of the period,
a triangle at 50 %) are played as 64 held steps per period, so their r.m.s. and peak are those of the shape.

Arbitrary waveforms: ``SOUR:WAVE:ARB:DATA`` (up to 100 points, replacing ``ARB0``) and ``:APPend`` (up to 100
more, 65 535 in all) fill the working waveform ``ARB0`` with points from −1 to +1; ``ARB:COPY n`` keeps a copy
in ``ARBn`` (1–4); ``FUNC ARB0``…``ARB4`` plays one. Each point is held for 1/(points × frequency) at
``offset + amplitude × point``, exactly as sent, so a burst holding +pulses then −pulses reaches the load as
such. The ledger counts an arbitrary waveform's periods as its shortest repeating block of at least two points
(each repeat possibly inverted), so +pulses then −pulses count as pulses, not as one long period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
#: points of an arbitrary waveform, and per ``ARB:DATA``/``ARB:APPend`` command
_ARB_MAX = 65_535
_ARB_CHUNK = 100


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
    #: ``ARB0`` (the working waveform) and the copies ``ARB1``–``ARB4``
    arbs: dict[int, tuple[float, ...]] = field(default_factory=dict)


class TwinCurrentSource(ScpiDevice):
    """Simulated 6221: ``SOUR:WAVE`` functions with a finite duration in cycles, compliance, ``OUTP``."""

    idn = "KEITHLEY INSTRUMENTS INC.,MODEL 6221,TWIN0002,D03  /700x"

    def __init__(self, model: BenchModel, clock: SimClock) -> None:
        super().__init__()
        self.model = model
        self.clock = clock
        self.st = _State()
        #: the steps of the last arbitrary waveform played, under what they were worked out from
        self._arb_steps: tuple | None = None
        W = "[SOURce:]WAVE:"
        self.add(W + "FUNCtion", self._func)
        self.add(W + "AMPLitude", self._num("ampl_A", 2e-12, MAX_A))
        self.add(W + "OFFSet", self._num("offs_A", -MAX_A, MAX_A))
        self.add(W + "FREQuency", self._num("freq_Hz", 1e-3, 1e5))
        self.add(W + "DCYCle", self._num("dcyc_pct", 0.0, 100.0))
        self.add(W + "DURation:CYCLes", self._num("cycles", 1e-3, 99999999900))
        self.add(W + "ARBitrary:DATA", self._arb_data)
        self.add(W + "ARBitrary:APPend", self._arb_append)
        self.add(W + "ARBitrary:POINts", self._arb_points)
        self.add(W + "ARBitrary:COPY", self._arb_copy)
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
        names = {"SIN": "SIN", "SINE": "SIN", "SQU": "SQU", "SQUARE": "SQU", "RAMP": "RAMP",
                 **{f"ARB{n}": f"ARB{n}" for n in range(5)}}
        if f not in names:
            raise ScpiError(-224, f"wave function {f!r}")
        if names[f].startswith("ARB") and len(self.st.arbs.get(int(f[3:]), ())) < 2:
            raise ScpiError(-221, f"{f} holds no waveform")
        self.st.func = names[f]
        return None

    def _arb_values(self, a: list[str]) -> list[float]:
        if not a:
            raise ScpiError(-109)
        if len(a) > _ARB_CHUNK:
            raise ScpiError(-223, f"more than {_ARB_CHUNK} points in one command")
        return [parse_number(x, lo=-1.0, hi=1.0, name="point") for x in a]

    def _arb_data(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            raise ScpiError(-113)
        values = self._arb_values(a)
        self.st.arbs[0] = tuple(values)
        if self.st.func == "ARB0":
            self.st.armed = False
        return None

    def _arb_append(self, s: list[int], a: list[str], q: bool) -> None:
        values = self._arb_values(a)
        have = self.st.arbs.get(0, ())
        if len(have) + len(values) > _ARB_MAX:
            raise ScpiError(-222, f"ARB0 would hold more than {_ARB_MAX} points")
        self.st.arbs[0] = have + tuple(values)
        if self.st.func == "ARB0":
            self.st.armed = False

    def _arb_points(self, s: list[int], a: list[str], q: bool) -> str:
        if not q:
            raise ScpiError(-113)
        return str(len(self.st.arbs.get(0, ())))

    def _arb_copy(self, s: list[int], a: list[str], q: bool) -> None:
        n = int(parse_number(a[0] if a else "", lo=1, hi=4, name="slot"))
        if len(self.st.arbs.get(0, ())) < 2:
            raise ScpiError(-221, "ARB0 holds no waveform")
        self.st.arbs[n] = self.st.arbs[0]

    def _arb(self) -> tuple[float, ...]:
        return self.st.arbs.get(int(self.st.func[3:]), ())

    def _arm(self, s: list[int], a: list[str], q: bool) -> None:
        shape = max((abs(p) for p in self._arb()), default=1.0) if self.st.func.startswith("ARB") else 1.0
        if self.st.func.startswith("ARB") and len(self._arb()) < 2:
            raise ScpiError(-221, f"{self.st.func} holds no waveform")
        peak = abs(self.st.offs_A) + abs(self.st.ampl_A) * shape
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
        if st.func.startswith("ARB"):
            self._play_arb(now, period, cycles)
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

    def _play_arb(self, now: float, period: float, cycles: int) -> None:
        """Each point held for its share of the period, runs of equal points as one step."""
        st = self.st
        points = self._arb()
        key = (points, st.offs_A, st.ampl_A, period)
        if self._arb_steps is None or self._arb_steps[0] != key:
            # the same waveform is re-triggered hundreds of times: its steps are worked out once
            dt = period / len(points)
            phases: list[tuple[float, float]] = []
            for p in points:
                level = st.offs_A + st.ampl_A * p
                if phases and phases[-1][0] == level:
                    phases[-1] = (level, phases[-1][1] + dt)
                else:
                    phases.append((level, dt))
            block, repeats = _repeating_block(points)
            first = next((k for k in range(1, block) if points[k] != points[0]), block)
            self._arb_steps = (key, tuple(phases), (block * dt, repeats, first * dt))
        _, phases, (block_s, repeats, first_s) = self._arb_steps
        self.model.start_current_phases(phases, cycles, now, compliance_V=st.compliance_V,
                                        counted_as=(block_s, repeats * cycles, first_s))

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


def _repeating_block(points: tuple[float, ...]) -> tuple[int, int]:
    """(length, repeats) of the shortest block of at least two points that, repeated with either sign, makes
    up ``points`` (the whole waveform when none does)."""
    n = len(points)
    for length in range(2, n // 2 + 1):
        if n % length:
            continue
        head = points[:length]
        neg = tuple(-p for p in head)
        if all(points[k:k + length] in (head, neg) for k in range(length, n, length)):
            return length, n // length
    return n, 1
