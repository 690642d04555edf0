"""Twin of a digital oscilloscope: Rigol DS1000Z or Keysight InfiniiVision SCPI subset, BYTE waveforms.

The scope samples what the shared :class:`~instruments.twin.physics.BenchModel` delivered during the burst it
triggered on, through each channel's physical probe (from the bench), the amplifier's finite bandwidth, a
noise of half a quantisation step r.m.s. (which dithers the 8-bit steps, as an ADC's own noise does) and 8-bit
quantisation, and scales the bytes with the family's preamble formula:

* Rigol: ``volts = (raw - yorigin - yref) * yinc``, ``time = xorigin + i * xinc`` (12 divisions).
* Keysight: ``volts = (raw - yref) * yinc + yorigin``, ``time = (i - xref) * xinc + xorigin`` (10 divisions).

Acquisition as on the instruments: ``:SING`` arms; the edge trigger fires at the first instant after arming at
which the trigger channel's displayed signal (through probe and bandwidth, without noise) crosses the trigger
level in the set slope — a burst that never crosses it leaves the scope waiting; the record is complete, and
``:TRIG:STAT?`` reads ``STOP``, only once the post-trigger part of the screen has passed in simulated time.
Samples are the circuit's exact values at ``xorigin + i·xinc`` — the record length and timebase set the rate.
The record lengths on offer are the instrument's (:mod:`instruments.record_lengths`); only ``BYTE`` transfers
are served. As on a real DS1000Z, a deep record is read in windows of at most 250 000 points
(``:WAV:STAR``/``:WAV:STOP``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from instruments.record_lengths import KEYSIGHT_RAW_POINTS, RIGOL_MEMORY_DEPTHS
from instruments.twin.physics import BenchModel
from instruments.twin.scpi import ScpiDevice, ScpiError, format_number, parse_bool, parse_choice, parse_number

if TYPE_CHECKING:
    from instruments.twin.clock import SimClock

__all__ = ["TwinScope"]


_IDN = {
    "rigol": "RIGOL TECHNOLOGIES,DS1104Z,DS1ZA000TWIN,00.04.05.SP2",
    "keysight": "KEYSIGHT TECHNOLOGIES,DSOX2024A,MY-TWIN-0003,02.65.2021030741",
}
#: analogue bandwidth of each impersonated model (DS1104Z: 100 MHz, DSOX2024A: 200 MHz)
_BANDWIDTH_HZ = {"rigol": 100e6, "keysight": 200e6}


@dataclass
class _Chan:
    scale_V: float = 1.0
    offset_V: float = 0.0  # Rigol: trace shift; Keysight: centre value
    probe: float = 1.0
    display: bool = True


class TwinScope(ScpiDevice):
    """Simulated oscilloscope of ``family`` ``'rigol'`` (DS1000Z) or ``'keysight'`` (InfiniiVision)."""

    def __init__(self, model: BenchModel, clock: SimClock, *, family: Literal["rigol", "keysight"] = "rigol",
                 signals: dict[int, str] | None = None, seed: int = 0, noise_div: float = 0.02) -> None:
        super().__init__()
        if family not in _IDN:
            raise ValueError(f"scope family must be 'rigol' or 'keysight', got {family!r}")
        self.family = family
        self.idn = _IDN[family]
        self.model = model
        self.clock = clock
        #: what each channel is wired to: 'electrode' (voltage across the load) or 'shunt'
        self.signals = signals or {1: "electrode", 2: "shunt"}
        self.rng = np.random.default_rng(seed)
        self.noise_div = noise_div
        #: channel -> (what its record depends on, its bytes): the acquisition's record of each channel
        self._records: dict[int, tuple[tuple, np.ndarray]] = {}
        self.reset()
        self.add("TIMebase[:MAIN]:SCALe", self._tim_scale)
        self.add("TIMebase[:MAIN]:OFFSet", self._tim_offset)
        self.add("TIMebase:POSition", self._tim_offset)
        self.add("CHANnel#:SCALe", self._chan_num("scale_V", 1e-4, 1e4))
        self.add("CHANnel#:OFFSet", self._chan_num("offset_V", -1e5, 1e5))
        self.add("CHANnel#:PROBe", self._chan_num("probe", 1e-3, 1e4))
        self.add("CHANnel#:DISPlay", self._chan_display)
        self.add("TRIGger[:EDGE]:SOURce", self._trig_source)
        self.add("TRIGger[:EDGE]:LEVel", self._trig_level)
        self.add("TRIGger[:EDGE]:SLOPe", self._trig_slope)
        self.add("TRIGger:STATus", self._trig_status)
        self.add("OPERegister:CONDition", self._oper_cond)
        self.add("ACQuire:MDEPth", self._mdep)
        self.add("WAVeform:POINts", self._points)
        self.add("WAVeform:SOURce", self._wav_source)
        self.add("WAVeform:MODE", self._wav_mode)
        self.add("WAVeform:POINts:MODE", self._wav_mode)
        self.add("WAVeform:FORMat", self._wav_format)
        self.add("WAVeform:STARt", self._wav_start)
        self.add("WAVeform:STOP", self._wav_stop)
        self.add("WAVeform:PREamble", self._preamble)
        self.add("WAVeform:DATA", self._data)
        self.add("TFORce", self._force)
        self.add("TRIGger:FORCe", self._force)
        self.add("SINGle", self._single)
        self.add("DIGitize", self._single)
        self.add("RUN", self._run)
        self.add("STOP", self._stop)

    def reset(self) -> None:
        self.tim_scale_s = 1e-3
        self.tim_offset_s = 0.0
        self.ch = {n: _Chan() for n in (1, 2, 3, 4)}
        self.trig_source = 1
        self.trig_level_V = 0.0
        self.trig_slope = "POS"
        #: simulated time of the trigger of the acquisition in progress (state TD)
        self.mdep = 0  # 0 = automatic (screen record)
        self.points = 1000
        self.wav_source = 1
        self.wav_mode = "NORM"
        self.wav_start = 1
        self.wav_stop = 1200
        self.run_state = "RUN"
        self.armed_at_s = -math.inf
        self.captured_t0_s: float | None = None
        self.trigger_at_s: float | None = None

    # ---- handlers
    def _tim_scale(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            return format_number(self.tim_scale_s)
        self.tim_scale_s = parse_number(a[0] if a else "", lo=5e-9, hi=50.0, name="timebase")
        return None

    def _tim_offset(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            return format_number(self.tim_offset_s)
        self.tim_offset_s = parse_number(a[0] if a else "", lo=-500.0, hi=500.0, name="position")
        return None

    def _chan(self, s: list[int]) -> _Chan:
        if s[0] not in self.ch:
            raise ScpiError(-113, f"channel {s[0]}")
        return self.ch[s[0]]

    def _chan_num(self, attr: str, lo: float, hi: float):
        def handler(s: list[int], a: list[str], q: bool) -> str | None:
            c = self._chan(s)
            if q:
                return format_number(getattr(c, attr))
            setattr(c, attr, parse_number(a[0] if a else "", lo=lo, hi=hi, name=attr))
            return None
        return handler

    def _chan_display(self, s: list[int], a: list[str], q: bool) -> str | None:
        c = self._chan(s)
        if q:
            return "1" if c.display else "0"
        c.display = parse_bool(a[0] if a else "")
        return None

    @staticmethod
    def _source_number(arg: str) -> int:
        a = arg.strip().upper()
        for prefix in ("CHANNEL", "CHAN"):
            if a.startswith(prefix) and a[len(prefix):].isdigit() and 1 <= int(a[len(prefix):]) <= 4:
                return int(a[len(prefix):])
        raise ScpiError(-224, f"source {arg!r}; expected CHAN1..CHAN4")

    def _trig_source(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            return f"CHAN{self.trig_source}"
        self.trig_source = self._source_number(a[0] if a else "")
        return None

    def _trig_level(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            return format_number(self.trig_level_V)
        self.trig_level_V = parse_number(a[0] if a else "", lo=-1e5, hi=1e5, name="trigger level")
        return None

    def _trig_slope(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            return self.trig_slope
        self.trig_slope = parse_choice(a, {"POS": "POS", "POSITIVE": "POS", "NEG": "NEG", "NEGATIVE": "NEG"},
                                       name="slope")
        return None

    def _post_trigger_s(self) -> float:
        """Length of the record after the trigger point (the screen right of it)."""
        n, xinc, xorigin = self._x_axis()
        return max(xorigin + n * xinc, 0.0)

    def _find_trigger(self, after_s: float) -> float | None:
        """First crossing of the trigger level, in the set slope, by the displayed trigger channel after
        ``after_s`` (simulated time), within the last burst; None if it never crosses."""
        what = self.signals.get(self.trig_source)
        if what not in ("electrode", "shunt"):
            return None
        c = self.ch[self.trig_source]
        scale = c.probe / self.model.probe_attenuation.get(self.trig_source, 1.0)
        if what == "shunt":
            scale *= self.model.shunt_ohms
        return self.model.first_crossing(after_s, self.trig_level_V / scale, rising=self.trig_slope == "POS",
                                         signal="electrode" if what == "electrode" else "current",
                                         scope_bandwidth_Hz=_BANDWIDTH_HZ[self.family])

    def _update_acquisition(self) -> None:
        # when the trigger fired and when the record is complete; the waveforms are simulated only when read
        now = self.clock.now()
        if self.run_state == "WAIT":
            t = self._find_trigger(self.armed_at_s)
            if t is not None:
                self.trigger_at_s = t
                self.run_state = "TD"
        if self.run_state == "TD" and self.trigger_at_s is not None and now >= self.trigger_at_s + self._post_trigger_s():
            self.captured_t0_s = self.trigger_at_s
            self.run_state = "STOP"
        elif self.run_state == "RUN":
            t = self._find_trigger(-math.inf)
            if t is not None:
                self.captured_t0_s = t

    def _trig_status(self, s: list[int], a: list[str], q: bool) -> str:
        self._update_acquisition()
        return {"WAIT": "WAIT", "TD": "TD", "STOP": "STOP", "RUN": "TD"}[self.run_state]

    def _oper_cond(self, s: list[int], a: list[str], q: bool) -> str:
        self._update_acquisition()
        return "+8" if self.run_state in ("RUN", "WAIT", "TD") else "+0"

    def _channels_on(self) -> int:
        return max(sum(c.display for c in self.ch.values()), 1)

    def _mdep(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            return "AUTO" if self.mdep == 0 else str(self.mdep)
        arg = a[0].upper() if a else ""
        if arg == "AUTO":
            self.mdep = 0
            return None
        depth = int(parse_number(arg, lo=1, hi=24_000_000, name="depth"))
        offered = RIGOL_MEMORY_DEPTHS[min(self._channels_on(), 4)]
        if depth not in offered:
            raise ScpiError(-224, f"depth {depth} with {self._channels_on()} channels on; offered {offered}")
        self.mdep = depth
        return None

    def _points(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            return str(self._record_points())
        points = int(parse_number(a[0] if a else "", lo=100, hi=8_000_000, name="points"))
        if self.wav_mode == "RAW" and points not in KEYSIGHT_RAW_POINTS:
            raise ScpiError(-224, f"{points} points; RAW mode accepts {KEYSIGHT_RAW_POINTS}")
        self.points = points
        return None

    def _wav_source(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            return f"CHAN{self.wav_source}"
        self.wav_source = self._source_number(a[0] if a else "")
        return None

    def _wav_mode(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            return self.wav_mode
        m = a[0].upper() if a else ""
        names = {"NORM": "NORM", "NORMAL": "NORM", "RAW": "RAW", "MAX": "MAX", "MAXIMUM": "MAX"}
        if m not in names:
            raise ScpiError(-224, f"waveform mode {m!r}")
        self.wav_mode = names[m]
        return None

    def _wav_format(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            return "BYTE"
        if (a[0].upper() if a else "") != "BYTE":
            raise ScpiError(-224, "only BYTE waveform format is simulated")
        return None

    def _wav_start(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            return str(self.wav_start)
        self.wav_start = int(parse_number(a[0] if a else "", lo=1, hi=24_000_000, name="start"))
        return None

    def _wav_stop(self, s: list[int], a: list[str], q: bool) -> str | None:
        if q:
            return str(self.wav_stop)
        self.wav_stop = int(parse_number(a[0] if a else "", lo=1, hi=24_000_000, name="stop"))
        return None

    def _single(self, s: list[int], a: list[str], q: bool) -> None:
        self.run_state = "WAIT"
        self.armed_at_s = self.clock.now()
        self.captured_t0_s = None
        self.trigger_at_s = None

    def _force(self, s: list[int], a: list[str], q: bool) -> None:
        if self.run_state == "WAIT":  # an armed acquisition triggers now, whatever the signal
            self.trigger_at_s = self.clock.now()
            self.run_state = "TD"

    def _run(self, s: list[int], a: list[str], q: bool) -> None:
        self.run_state = "RUN"

    def _stop(self, s: list[int], a: list[str], q: bool) -> None:
        self._update_acquisition()
        if self.run_state == "TD":  # stopped before the record was complete: keep what was triggered
            self.captured_t0_s = self.trigger_at_s
        self.run_state = "STOP"

    # ---- acquisition
    def _divisions(self) -> int:
        return 12 if self.family == "rigol" else 10

    def _record_points(self) -> int:
        if self.family == "rigol":
            return 1200 if (self.wav_mode == "NORM" or self.mdep == 0) else self.mdep
        return self.points

    def _x_axis(self) -> tuple[int, float, float]:
        n = self._record_points()
        xinc = self._divisions() * self.tim_scale_s / n
        xorigin = -self._divisions() / 2 * self.tim_scale_s + self.tim_offset_s
        return n, xinc, xorigin

    def _y_axis(self, c: _Chan) -> tuple[float, float, float]:
        if self.family == "rigol":
            yinc = c.scale_V / 25.0
            return yinc, c.offset_V / yinc, 127.0
        yinc = c.scale_V * 8.0 / 256.0
        return yinc, c.offset_V, 128.0

    def _preamble(self, s: list[int], a: list[str], q: bool) -> str:
        self._update_acquisition()
        n, xinc, xorigin = self._x_axis()
        yinc, yorigin, yref = self._y_axis(self.ch[self.wav_source])
        if self.family == "rigol":
            return f"0,0,{n},1,{xinc:.6e},{xorigin:.6e},0,{yinc:.6e},{yorigin:.6e},{int(yref)}"
        return (f"+0,+0,+{n},+1,{xinc:+.8E},{xorigin:+.8E},+0,{yinc:+.8E},{yorigin:+.8E},+{int(yref)}")

    def sample(self, channel: int) -> np.ndarray:
        """The channel's raw bytes (uint8) for the current acquisition (the same bytes until it changes)."""
        self._update_acquisition()
        n, xinc, xorigin = self._x_axis()
        c = self.ch[channel]
        key = (channel, self.captured_t0_s, n, xinc, xorigin, self.model.deliveries, self.model.load,
               self.model.contact_fault, self.model.impedance_factor, c.scale_V, c.offset_V, c.probe)
        # each channel's record is kept: reading a channel again gives its bytes again, whatever was read between
        cached = self._records.get(channel)
        if cached is not None and cached[0] == key:
            return cached[1]
        raw = self._render(channel, n, xinc, xorigin, key[1:9])
        self._records[channel] = (key, raw)
        return raw

    def _signals_at(self, n: int, xinc: float, xorigin: float, key: tuple) -> tuple[np.ndarray, np.ndarray]:
        """Electrode voltage and current at the record's sample instants, solved once per acquisition (every
        channel samples the same instants)."""
        cached = getattr(self, "_signals", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        grid = getattr(self, "_grid", None)
        if grid is None or grid[0] != (n, xinc, xorigin):
            # the sample instants of a record, the same while the timebase and depth stay (a session's captures)
            grid = ((n, xinc, xorigin), xorigin + np.arange(n) * xinc)
            grid[1].setflags(write=False)
            self._grid = grid if n <= self.SCRATCH_MAX_POINTS else None
        t_rel = grid[1]
        # the circuit's exact waveform through the amplifier's and this scope's bandwidth, at the sample
        # instants (no anti-alias filter: a transient between two samples is missed, as on a real scope)
        signals = self.model.render(self.captured_t0_s + t_rel, scope_bandwidth_Hz=_BANDWIDTH_HZ[self.family])
        self._signals = (key, signals)
        return signals

    def _render(self, channel: int, n: int, xinc: float, xorigin: float, key: tuple) -> np.ndarray:
        c = self.ch[channel]
        physical = self.model.probe_attenuation.get(channel, 1.0)
        shown, noise = self._scratch(n)
        # in place, in the order of tip / physical * probe + noise, then the family's scaling
        what = None if self.captured_t0_s is None else self.signals.get(channel)
        if what == "electrode":
            np.divide(self._signals_at(n, xinc, xorigin, key)[0], physical, out=shown)
        elif what == "shunt":
            np.multiply(self._signals_at(n, xinc, xorigin, key)[1], self.model.shunt_ohms, out=shown)
            shown /= physical
        else:
            shown.fill(0.0)
            shown /= physical
        shown *= c.probe
        # the noise as rng.normal(0, σ, n) draws it, bit for bit (the same standard normals, each times σ), without
        # its per-sample location and scale handling
        self.rng.standard_normal(out=noise)
        noise *= self.noise_div * c.scale_V
        shown += noise
        yinc, yorigin, yref = self._y_axis(c)
        if self.family == "rigol":
            shown /= yinc
            shown += yorigin
        else:
            shown -= yorigin
            shown /= yinc
        shown += yref
        np.rint(shown, out=shown)
        return np.clip(shown, 0, 255, out=shown).astype(np.uint8)

    #: records up to this many points are rendered in two float buffers kept from one record to the next
    SCRATCH_MAX_POINTS = 1_000_000

    def _scratch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Two float buffers of ``n`` samples for rendering a channel (kept for the next record of that length:
        fresh arrays of a deep record cost the process new memory pages at every capture)."""
        held = getattr(self, "_scratch_buffers", None)
        if held is not None and held[0].size == n:
            return held
        pair = (np.empty(n), np.empty(n))
        self._scratch_buffers = pair if n <= self.SCRATCH_MAX_POINTS else None
        return pair

    #: most BYTE points one Rigol ``:WAV:DATA?`` returns
    RIGOL_MAX_BYTES = 250_000

    def _data(self, s: list[int], a: list[str], q: bool) -> bytes:
        raw = self.sample(self.wav_source)
        if self.family == "rigol" and raw.size > 1200:
            # deep memory is read in windows (:WAV:STAR/:WAV:STOP, 1-based, inclusive) of at most 250 000
            start, stop = self.wav_start, min(self.wav_stop, raw.size)
            if stop < start or stop - start + 1 > self.RIGOL_MAX_BYTES:
                raise ScpiError(-222, f"window {start}..{stop} empty or above {self.RIGOL_MAX_BYTES} points")
            raw = raw[start - 1:stop]
        raw = raw.tobytes()
        length = str(len(raw))
        digits = 9 if self.family == "rigol" else len(length)
        return f"#{digits}{length.zfill(digits)}".encode("ascii") + raw
