"""Siglent SDS1000X-E and SDS2000X oscilloscopes (the legacy command set), written on PyMeasure's ``Instrument``.

Commands and scaling from the SDS1000/SDS2000X/SDS2000X-E Programming Guide (EN02E) as its examples use them
(also github.com/little-did-I-know/Siglent-Oscilloscope and the SDS1104X-E driver in LogikosTestToolAutomation):

* ``CHDR OFF`` drops the header from replies (``5.00E-01V`` instead of ``C1:VDIV 5.00E-01V``);
* ``TDIV`` (1-2-5 steps), ``TRDL`` ("the time interval from the trigger event to the horizontal centre of the
  screen"), ``C<n>:TRA ON|OFF``, ``C<n>:ATTN`` (probe ratio), ``C<n>:VDIV`` (volts/div at the probe tip),
  ``C<n>:OFST``; edge trigger ``TRSE EDGE,SR,C<n>,HT,OFF``, ``C<n>:TRSL POS|NEG``, ``C<n>:TRLV``;
  ``TRMD SINGLE`` arms one acquisition, ``FRTR`` forces a trigger, ``INR?`` bit 0 says a new signal was
  acquired (reading clears it), ``MSIZ`` sets the memory depth, ``SARA?`` reads the sample rate;
* ``WFSU SP,0,NP,0,FP,0`` then ``C<n>:WF? DAT2`` → ``C<n>:WF DAT2,#9<9-digit length><bytes>`` and two line feeds;
* each byte is a signed code, 25 codes per division: ``volts = code × VDIV / 25 − OFST``; sample ``i`` lies at
  ``−TDIV × 14 / 2 + TRDL + i / SARA`` seconds from the trigger (14 divisions).

The guide documents no error queue: every setting is read back and compared instead. Record lengths (MSIZ)
and rates are the datasheets' (SDS1000X-E: 1 GSa/s and 14 Mpts on one channel of a pair, half each on two;
SDS2000X: 2 GSa/s and 140 Mpts, half each on two); a bench file may declare lower limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from instruments.base import Oscilloscope, ScopeChannel, Trace
from instruments.drivers.scope_base import capture_channels, check_channels, check_slope, read_back_channels
from instruments.drivers.session import ScpiSession, check_range
from instruments.drivers.siglent_replies import leading_number
from instruments.errors import BlockFormatError, ConnectionFailed, OutOfRange
from instruments.waveform import Preamble

__all__ = ["SiglentSDS1000XE", "SiglentSDS2000X", "timebase_steps"]

#: probe ratios ``C<n>:ATTN`` accepts
PROBE_RATIOS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
#: codes per vertical division of a byte sample
CODES_PER_DIV = 25.0


def timebase_steps() -> tuple[float, ...]:
    """The 1-2-5 timebases ``TDIV`` accepts, 1 ns/div to 100 s/div."""
    out = []
    for exp in range(-9, 3):
        for m in (1, 2, 5):
            v = float(f"{m}e{exp}")
            if v <= 100.0:
                out.append(v)
    return tuple(out)


def _depth_label(points: int) -> str:
    """``MSIZ`` spelling of a depth (7000 → ``7K``, 1 400 000 → ``1.4M``)."""
    for unit, scale in (("M", 1_000_000), ("K", 1_000)):
        if points >= scale:
            return f"{points / scale:g}{unit}"
    return str(points)


class SiglentSDS1000XE(ScpiSession, Oscilloscope):
    """Siglent SDS1000X-E (SDS1104X-E, SDS1202X-E…) oscilloscope, 14 horizontal divisions."""

    divisions = 14
    #: ``*TST?`` is not asked: the sources above do not confirm it for these models
    has_self_test = False
    n_channels = 4
    max_sample_rate_Sa_s = 500e6
    max_record_points = 7_000_000
    bandwidth_Hz = 100e6
    #: memory depths per channel with one channel of a pair on (two channels: half of each)
    single_depths: tuple[int, ...] = (14_000, 140_000, 1_400_000, 14_000_000)

    def __init__(self, adapter: Any, name: str = "scope", resource: str = "") -> None:
        super().__init__(adapter, name, resource)
        self._setup: dict[int, ScopeChannel] = {}

    @classmethod
    def timebase_at_least(cls, timebase_s_per_div: float) -> float:
        """The smallest 1-2-5 step at or above ``timebase_s_per_div`` (the slowest, 100 s/div, above it)."""
        steps = timebase_steps()
        return next((s for s in steps if s >= timebase_s_per_div * (1 - 1e-9)), steps[-1])

    @classmethod
    def record_depths(cls, channels: int = 2) -> tuple[int, ...]:
        """Depths per channel with ``channels`` on (two or more share the memory of a pair)."""
        return cls.single_depths if channels <= 1 else tuple(d // 2 for d in cls.single_depths)

    def configure(self, *, timebase_s_per_div: float, channels: Sequence[ScopeChannel], trigger_channel: int = 1,
                  trigger_level_V: float = 0.0, position_s: float = 0.0,
                  record_points: int | None = None, trigger_slope: str = "rising") -> dict[str, Any]:
        """See :meth:`instruments.base.Oscilloscope.configure` (the timebase must be a 1-2-5 step)."""
        res = self.resource
        tb = check_range(res, "timebase_s_per_div", timebase_s_per_div, 1e-9, 100.0, " s/div")
        steps = timebase_steps()
        if not any(abs(tb - s) <= 1e-9 * s for s in steps):
            raise OutOfRange(f"timebase_s_per_div={tb:g} s/div is not a step {res} offers; accepted: 1-2-5 steps "
                             "from 1e-09 to 100 s/div (e.g. 0.0001, 0.0002, 0.0005)", resource=res)
        check_channels(res, channels, self.n_channels, trigger_channel)
        slope = check_slope(res, trigger_slope)
        for c in channels:
            if not any(abs(c.probe_attenuation - p) <= 1e-9 * p for p in PROBE_RATIOS):
                raise OutOfRange(f"CH{c.channel} probe_attenuation={c.probe_attenuation:g} for {res}; accepted: "
                                 f"{', '.join(f'{p:g}' for p in PROBE_RATIOS)}", resource=res)
        check_range(res, "position_s", position_s, -10 * 14 * tb, 7 * tb, " s")
        depth = None
        if record_points is not None:
            depths = self.record_depths(len(channels))
            depth = int(record_points)
            if depth not in depths:
                raise OutOfRange(f"record_points={depth} is not a depth {res} offers with {len(channels)} channels "
                                 f"on; accepted: {', '.join(map(str, depths))}", resource=res)
        used = {c.channel for c in channels}
        with self.lock:
            self.write("CHDR OFF")
            self.write("STOP")
            self.write(f"TDIV {tb:.10g}")
            self.write(f"TRDL {position_s:.10g}")
            for c in channels:
                self.write(f"C{c.channel}:TRA ON")
                self.write(f"C{c.channel}:ATTN {c.probe_attenuation:g}")
                self.write(f"C{c.channel}:VDIV {c.volts_per_div:.10g}")
                # the trace moves by OFST: the screen centre shows -OFST volts
                self.write(f"C{c.channel}:OFST {0.0 - c.offset_V:.10g}")
            for ch in range(1, self.n_channels + 1):
                if ch not in used:
                    self.write(f"C{ch}:TRA OFF")
            self.write(f"TRSE EDGE,SR,C{trigger_channel},HT,OFF")
            self.write(f"C{trigger_channel}:TRSL {'POS' if slope == 'rising' else 'NEG'}")
            self.write(f"C{trigger_channel}:TRLV {trigger_level_V:.10g}")
            if depth is not None:
                # MSIZ names the memory of one channel of a pair; with two on each has half
                self.write(f"MSIZ {_depth_label(depth if len(channels) <= 1 else 2 * depth)}")
            self.write("WFSU SP,0,NP,0,FP,0")
            self.opc()
            back: dict[str, Any] = {"timebase_s_per_div": self._number("TDIV?"), "position_s": self._number("TRDL?")}
            self.compare("timebase_s_per_div", tb, back["timebase_s_per_div"], rel=1e-6)
            self.compare("position_s", position_s, back["position_s"], rel=1e-6, abs_=1e-12)
            back.update(read_back_channels(self, channels, self._number, "C{ch}:VDIV?", "C{ch}:ATTN?"))
            self._setup = {c.channel: c for c in channels}
        return back

    def _number(self, query: str) -> float:
        return leading_number(self.ask(query), what=query, resource=f"{self.name} at {self.resource}")

    def single(self) -> None:
        """Clear the acquisition flag (``INR?``), arm one acquisition (``TRMD SINGLE``) and wait (``*OPC?``)."""
        with self.lock:
            self._number("INR?")
            self.write("TRMD SINGLE")
            self.opc()

    def acquired(self) -> bool:
        """Whether a new signal was acquired since :meth:`single` (``INR?`` bit 0)."""
        with self.lock:
            return bool(int(self._number("INR?")) & 1)

    def force_trigger(self) -> None:
        """Trigger the armed acquisition now (``FRTR``)."""
        with self.lock:
            self.write("FRTR")

    def wait_acquired(self, timeout_s: float = 5.0, poll_s: float = 0.01) -> None:
        """Poll :meth:`acquired` until the acquisition is complete.

        Raises
        ------
        ConnectionFailed
            If the scope did not trigger within ``timeout_s``.
        """
        import time

        deadline = time.monotonic() + timeout_s
        while not self.acquired():
            if time.monotonic() > deadline:
                raise ConnectionFailed(f"{self.name} at {self.resource} did not trigger within {timeout_s:g} s "
                                       "(no signal reached the trigger channel?)", resource=self.resource)
            time.sleep(poll_s)

    def capture(self, channels: Sequence[int] = (1, 2)) -> dict[int, Trace]:
        """Read the last acquisition as scaled traces (signed codes, 25 per division)."""
        return capture_channels(self, channels, self._fetch, signed=True)

    def _fetch(self, ch: int) -> tuple[Preamble, bytes]:
        """The channel's scaling (VDIV, OFST, TDIV, TRDL, SARA) as a preamble, and its ``WF? DAT2`` codes."""
        vdiv = self._number(f"C{ch}:VDIV?")
        ofst = self._number(f"C{ch}:OFST?")
        tdiv = self._number("TDIV?")
        delay = self._number("TRDL?")
        rate = self._number("SARA?")
        if not rate > 0:
            raise BlockFormatError(f"{self.name} at {self.resource} reports a sample rate of {rate:g} Sa/s",
                                   resource=self.resource)
        payload = self._read_wf(ch)
        # volts = code × VDIV/25 − OFST is (code − yref) × yinc + yorigin with yref 0
        pre = Preamble(family="siglent", points=len(payload), xinc=1.0 / rate,
                       xorigin=-tdiv * self.divisions / 2 + delay, xref=0.0,
                       yinc=vdiv / CODES_PER_DIV, yorigin=-ofst, yref=0.0)
        return pre, payload

    def _read_wf(self, ch: int) -> bytes:
        """``C<n>:WF? DAT2``: a header up to ``#``, a definite-length block, then two line feeds."""
        command = f"C{ch}:WF? DAT2"
        with self.lock:
            self.write(command)
            head = b""
            while not head.endswith(b"#"):
                byte = self._guard(lambda: self.adapter.read_bytes(1), repr(command))
                head += byte
                if not byte or len(head) > 32:
                    raise BlockFormatError(f"{self.name} at {self.resource} answered {command!r} with {head!r}, "
                                           "not 'C<n>:WF DAT2,#9<length>…'", resource=self.resource)
            if not head[:-1].rstrip(b",").upper().endswith(b"DAT2"):
                raise BlockFormatError(f"{self.name} at {self.resource} answered {command!r} with {head!r}",
                                       resource=self.resource)
            nd = self._guard(lambda: self.adapter.read_bytes(1), repr(command))
            if not nd.isdigit() or nd == b"0":
                raise BlockFormatError(f"{self.name} at {self.resource}: malformed block header after {head!r}",
                                       resource=self.resource)
            payload = self.read_block_body(command, int(nd))
            # the guide's reply ends with two line feeds
            self.expect_block_end(command, (b"\n\n",))
            return payload

    def errors(self) -> list[str]:
        """Nothing to drain: the guide documents no error queue (settings are verified by reading them back)."""
        return []

    def close(self) -> None:
        """Close the connection (a scope has no output to switch off)."""
        self.close_connection()


class SiglentSDS2000X(SiglentSDS1000XE):
    """Siglent SDS2000X (SDS2104X, SDS2304X…; not the SDS2000X Plus, which speaks another command set)."""

    max_sample_rate_Sa_s = 1e9
    max_record_points = 70_000_000
    bandwidth_Hz = 200e6
    single_depths = (14_000, 140_000, 1_400_000, 14_000_000, 140_000_000)
