"""Shared oscilloscope logic: configure with read-back, single acquisition, BYTE blocks, preamble scaling."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from instruments.base import Oscilloscope, ScopeChannel, Trace
from instruments.drivers.session import ScpiSession, check_range
from instruments.errors import BlockFormatError, ConnectionFailed, OutOfRange
from instruments.waveform import parse_preamble, physical_samples, sample_times

__all__ = ["PreambleScope", "capture_channels", "check_slope", "make_trace", "read_back_channels"]

#: edge slopes as the scopes answer ``:TRIG:EDGE:SLOP?`` (short or long form)
_SLOPES = {"POS": "POS", "POSITIVE": "POS", "NEG": "NEG", "NEGATIVE": "NEG"}


def check_slope(resource: str, slope: str) -> str:
    """Refuse a trigger slope other than ``'rising'`` or ``'falling'`` before anything is sent."""
    if slope not in ("rising", "falling"):
        raise OutOfRange(f"trigger_slope={slope!r} for {resource}; accepted: 'rising', 'falling'", resource=resource)
    return slope


def read_back_channels(scope: Any, channels: Sequence[ScopeChannel], read: Any, scale_query: str,
                       probe_query: str) -> dict[str, float]:
    """Read each channel's volts/div and probe ratio back (``read(query)`` → float; ``{ch}`` in the queries is
    the channel number) and compare them with what was set; returns them as ``ch<n>_volts_per_div`` and
    ``ch<n>_probe``."""
    back: dict[str, float] = {}
    for c in channels:
        scale = read(scale_query.format(ch=c.channel))
        probe = read(probe_query.format(ch=c.channel))
        scope.compare(f"CH{c.channel} scale", c.volts_per_div, scale, rel=1e-6)
        scope.compare(f"CH{c.channel} probe", c.probe_attenuation, probe, rel=1e-6)
        back[f"ch{c.channel}_volts_per_div"] = scale
        back[f"ch{c.channel}_probe"] = probe
    return back


def check_channels(resource: str, channels: Sequence[ScopeChannel], n_channels: int, trigger_channel: int) -> None:
    """Refuse, before anything is sent, channels the scope lacks, bad V/div, or a trigger on an unused channel."""
    if not channels:
        raise OutOfRange(f"configure for {resource} needs at least one channel", resource=resource)
    for c in channels:
        if not 1 <= c.channel <= n_channels:
            raise OutOfRange(f"scope channel {c.channel} does not exist on {resource}; accepted 1..{n_channels}",
                             resource=resource)
        check_range(resource, f"CH{c.channel} volts_per_div", c.volts_per_div, 1e-4, 1e4, " V/div")
    if trigger_channel not in {c.channel for c in channels}:
        raise OutOfRange(f"trigger_channel {trigger_channel} is not among the configured channels", resource=resource)


class PreambleScope(ScpiSession, Oscilloscope):
    """Base of the Rigol and Keysight drivers; subclasses set the family and a few commands."""

    family: str = "rigol"
    divisions: int = 12
    n_channels: int = 4

    def __init__(self, adapter: Any, name: str = "scope", resource: str = "") -> None:
        super().__init__(adapter, name, resource)
        self._setup: dict[int, ScopeChannel] = {}
        self._trigger_channel = 0

    # ---- vendor hooks
    def _offset_command(self, ch: int, offset_V: float) -> str:
        raise NotImplementedError

    def _position_command(self, position_s: float) -> str:
        raise NotImplementedError

    def _record_commands(self, record_points: int | None) -> list[str]:
        raise NotImplementedError

    def _acquired(self) -> bool:
        raise NotImplementedError

    #: command that forces a trigger
    force_command = ":TFOR"

    def configure(self, *, timebase_s_per_div: float, channels: Sequence[ScopeChannel], trigger_channel: int = 1,
                  trigger_level_V: float = 0.0, position_s: float = 0.0,
                  record_points: int | None = None, trigger_slope: str = "rising") -> dict[str, Any]:
        """See :meth:`instruments.base.Oscilloscope.configure`."""
        res = self.resource
        tb = check_range(res, "timebase_s_per_div", timebase_s_per_div, 5e-9, 50.0, " s/div")
        check_channels(res, channels, self.n_channels, trigger_channel)
        slope = check_slope(res, trigger_slope)
        for c in channels:
            check_range(res, f"CH{c.channel} probe_attenuation", c.probe_attenuation, 1e-3, 1e4)
        record = self._check_record(record_points, len(channels))
        used = {c.channel for c in channels}
        with self.lock:
            self.write(":STOP")
            self.write(f":TIM:SCAL {tb:.10g}")
            self.write(self._position_command(position_s))
            for c in channels:
                self.write(f":CHAN{c.channel}:DISP ON")
                self.write(f":CHAN{c.channel}:PROB {c.probe_attenuation:.10g}")
                self.write(f":CHAN{c.channel}:SCAL {c.volts_per_div:.10g}")
                self.write(self._offset_command(c.channel, c.offset_V))
            for ch in range(1, self.n_channels + 1):
                if ch not in used:
                    self.write(f":CHAN{ch}:DISP OFF")
            self.write(f":TRIG:EDGE:SOUR CHAN{trigger_channel}")
            self.write(f":TRIG:EDGE:SLOP {'POS' if slope == 'rising' else 'NEG'}")
            self.write(f":TRIG:EDGE:LEV {trigger_level_V:.10g}")
            for cmd in self._record_commands(record):
                self.write(cmd)
            self.write(":WAV:FORM BYTE")
            self.opc()
            self.raise_errors("configure")
            back: dict[str, Any] = {"timebase_s_per_div": self.ask_float(":TIM:SCAL?")}
            self.compare("timebase_s_per_div", tb, back["timebase_s_per_div"], rel=1e-6)
            back.update(read_back_channels(self, channels, self.ask_float, ":CHAN{ch}:SCAL?", ":CHAN{ch}:PROB?"))
            self._setup = {c.channel: c for c in channels}
            self._trigger_channel = trigger_channel
        return back

    #: the trigger level reads back within this share of the trigger channel's V/div (scopes set the level in
    #: steps of a fraction of a division, e.g. 0.02 div on the DS1000Z)
    trigger_level_tolerance_div = 0.04

    def set_trigger(self, *, trigger_level_V: float, trigger_slope: str) -> dict[str, Any]:
        """Change only the edge trigger's level and slope of a configured scope, and read both back.

        A ramp step or a reversed burst needs nothing else of :meth:`configure`: timebase, channels and record
        stay as they were read back. Returns ``trigger_level_V`` and ``trigger_slope`` as read.

        Raises
        ------
        OutOfRange
            A slope other than ``'rising'``/``'falling'``, a level that is not finite, or a scope not
            configured yet (before anything is sent).
        ReadbackMismatch
            When the level or slope does not read back as sent.
        """
        res = self.resource
        slope = check_slope(res, trigger_slope)
        level = check_range(res, "trigger_level_V", trigger_level_V, -1e5, 1e5, " V")
        if not self._setup or self._trigger_channel not in self._setup:
            raise OutOfRange(f"set_trigger on {res} before configure: the trigger channel is not set up",
                             resource=res)
        sent_slope = "POS" if slope == "rising" else "NEG"
        with self.lock:
            self.write(f":TRIG:EDGE:SLOP {sent_slope}")
            self.write(f":TRIG:EDGE:LEV {level:.10g}")
            back_level = self.ask_float(":TRIG:EDGE:LEV?")
            back_slope = _SLOPES.get(self.ask(":TRIG:EDGE:SLOP?").upper(), "")
            self.raise_errors("set_trigger")
        step_V = self.trigger_level_tolerance_div * self._setup[self._trigger_channel].volts_per_div
        self.compare("trigger level", level, back_level, rel=0.0, abs_=step_V)
        self.compare("trigger slope", sent_slope, back_slope or "(not a slope)")
        return {"trigger_level_V": back_level, "trigger_slope": "rising" if back_slope == "POS" else "falling"}

    def _check_record(self, record_points: int | None, channels: int) -> int | None:
        """Refuse, before anything is sent, a record length the scope does not offer with ``channels`` on."""
        if record_points is None:
            return None
        depths = self.record_depths(channels)
        n = int(record_points)
        if (depths is not None and n not in depths) or not 1 <= n <= self.max_record_points:
            offered = ", ".join(map(str, depths)) if depths is not None else f"1..{self.max_record_points}"
            raise OutOfRange(f"record_points={n} is not a record length {self.resource} offers with {channels} "
                             f"channels on; accepted: {offered}", resource=self.resource)
        return n

    def single(self) -> None:
        """Arm a single acquisition (``:SING``) and wait for it to be armed (``*OPC?``)."""
        with self.lock:
            self.write(":SING")
            self.opc()

    def acquired(self) -> bool:
        """Whether the single acquisition is complete."""
        with self.lock:
            return self._acquired()

    def force_trigger(self) -> None:
        """Force a trigger of the armed acquisition."""
        with self.lock:
            self.write(self.force_command)

    def wait_acquired(self, timeout_s: float = 5.0, poll_s: float = 0.01) -> None:
        """Poll until the single acquisition is complete.

        Raises
        ------
        ConnectionFailed
            If the scope did not trigger within ``timeout_s`` (no burst reached it).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            if self._acquired():
                return
            if time.monotonic() > deadline:
                raise ConnectionFailed(f"{self.name} at {self.resource} did not trigger within {timeout_s:g} s "
                                       "(no signal reached the trigger channel?)", resource=self.resource)
            time.sleep(poll_s)

    def capture(self, channels: Sequence[int] = (1, 2)) -> dict[int, Trace]:
        """Read the last acquisition as scaled traces (the scope must be stopped or triggered)."""
        return capture_channels(self, channels, self._fetch)

    def _fetch(self, ch: int) -> tuple[Any, bytes]:
        """Select one channel, then read its preamble and data block."""
        self.write(f":WAV:SOUR CHAN{ch}")
        pre = parse_preamble(self.ask(":WAV:PRE?"), self.family, resource=self.resource)  # type: ignore[arg-type]
        return pre, self._read_payload(pre.points)

    def _read_payload(self, points: int) -> bytes:
        """Read the selected channel's data block (families with a transfer limit read it in windows)."""
        return self.read_block(":WAV:DATA?")

    def errors(self) -> list[str]:
        """Drain the error queue."""
        return super().errors()

    def close(self) -> None:
        """Close the connection (a scope has no output to switch off)."""
        self.close_connection()


def capture_channels(scope: Any, channels: Sequence[int], fetch: Any, *, signed: bool = False) -> dict[int, Trace]:
    """Scaled traces of ``channels``: ``fetch(ch)`` selects a configured channel and returns its parsed
    preamble and raw block; the block must hold as many samples as the preamble announces."""
    out: dict[int, Trace] = {}
    with scope.lock:
        for ch in channels:
            setup = scope._setup.get(ch)
            if setup is None:
                raise OutOfRange(f"scope channel {ch} was not configured on {scope.resource}; configured: "
                                 f"{sorted(scope._setup)}", resource=scope.resource)
            pre, payload = fetch(ch)
            if len(payload) != pre.points:
                raise BlockFormatError(f"{scope.name} at {scope.resource}: CH{ch} block holds {len(payload)} "
                                       f"samples, preamble announces {pre.points}", resource=scope.resource)
            out[ch] = make_trace(payload, pre, setup, signed=signed)
    return out


def make_trace(payload: bytes, pre: Any, setup: ScopeChannel, *, idn: str | None = None,
               signed: bool = False) -> Trace:
    """Scale a payload into a :class:`Trace` (volts, or amperes through ``setup.shunt_ohms``)."""
    values = physical_samples(payload, pre, signed=signed, shunt_ohms=setup.shunt_ohms)
    unit = "A" if setup.shunt_ohms else "V"
    meta = {**pre.as_dict(), "xinc_s": pre.xinc, "probe_attenuation": setup.probe_attenuation,
            "shunt_ohms": setup.shunt_ohms, "label": setup.label}
    if idn:
        meta["idn"] = idn
    return Trace(time_s=sample_times(pre, values.size), values=values, unit=unit, channel=setup.channel,
                 timestamp=datetime.now(UTC), meta=meta)


