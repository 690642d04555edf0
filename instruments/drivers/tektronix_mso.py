"""Tektronix MSO/DPO/TBS oscilloscopes (``CURVe?`` / ``WFMOutpre``), written on PyMeasure's ``Instrument`` base.

Waveforms are read as signed bytes (``DATa:ENCdg RIBinary``, ``DATa:WIDth 1``) and scaled with
``volts = (raw - YOFf) * YMUlt + YZEro`` and ``time = XZEro + (i - PT_Off) * XINcr``. The probe ratio of a
plain BNC probe is set as ``CH<n>:PRObe:GAIN`` (= 1 / attenuation); a TekVPI probe reports its own and
ignores it, and the read-back comparison then says so. Horizontal position is the trigger point in percent of
the record (50 = centre). A single acquisition is ``ACQuire:STOPAfter SEQuence`` + ``ACQuire:STATE ON``; it is
complete when ``ACQuire:STATE?`` reads 0.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from instruments.base import Oscilloscope, ScopeChannel, Trace
from instruments.drivers.scope_base import capture_channels, check_channels, check_slope
from instruments.drivers.session import ScpiSession, check_range
from instruments.errors import ConnectionFailed
from instruments.waveform import parse_preamble

__all__ = ["TektronixMSO"]

_PREAMBLE_FIELDS = ("NR_PT", "XINCR", "XZERO", "PT_OFF", "YMULT", "YZERO", "YOFF")


class TektronixMSO(ScpiSession, Oscilloscope):
    """Tektronix oscilloscope with ``CURVe?`` binary transfers (4 analogue channels)."""

    divisions = 10
    n_channels = 4
    max_sample_rate_Sa_s = 2.5e9
    max_record_points = 10_000_000
    bandwidth_Hz = 200e6

    def __init__(self, adapter: Any, name: str = "scope", resource: str = "") -> None:
        super().__init__(adapter, name, resource)
        self._setup: dict[int, ScopeChannel] = {}
        self._record = 10_000

    def configure(self, *, timebase_s_per_div: float, channels: Sequence[ScopeChannel], trigger_channel: int = 1,
                  trigger_level_V: float = 0.0, position_s: float = 0.0,
                  record_points: int | None = None, trigger_slope: str = "rising") -> dict[str, Any]:
        """See :meth:`instruments.base.Oscilloscope.configure`."""
        res = self.resource
        tb = check_range(res, "timebase_s_per_div", timebase_s_per_div, 1e-9, 1000.0, " s/div")
        check_channels(res, channels, self.n_channels, trigger_channel)
        slope = check_slope(res, trigger_slope)
        percent = 50.0 - position_s / (self.divisions * tb) * 100.0
        check_range(res, "position_s (as % of the record)", percent, 0.0, 100.0, " %")
        record = int(record_points or 10_000)
        with self.lock:
            self.write("ACQuire:STATE OFF")
            self.write(f"HORizontal:SCAle {tb:.10g}")
            self.write(f"HORizontal:RECOrdlength {record}")
            self.write(f"HORizontal:POSition {percent:.10g}")
            used = {c.channel for c in channels}
            for ch in range(1, self.n_channels + 1):
                if ch not in used:
                    self.write(f"SELect:CH{ch} OFF")
            for c in channels:
                self.write(f"SELect:CH{c.channel} ON")
                self.write(f"CH{c.channel}:PRObe:GAIN {1.0 / c.probe_attenuation:.10g}")
                self.write(f"CH{c.channel}:SCAle {c.volts_per_div:.10g}")
                self.write(f"CH{c.channel}:OFFSet {c.offset_V:.10g}")
            self.write(f"TRIGger:A:EDGE:SOUrce CH{trigger_channel}")
            self.write(f"TRIGger:A:EDGE:SLOpe {'RISe' if slope == 'rising' else 'FALL'}")
            self.write(f"TRIGger:A:LEVel:CH{trigger_channel} {trigger_level_V:.10g}")
            self.write("DATa:ENCdg RIBinary")
            self.write("DATa:WIDth 1")
            self.write("DATa:STARt 1")
            self.write(f"DATa:STOP {record}")
            self.opc()
            self.raise_errors("configure")
            back: dict[str, Any] = {"timebase_s_per_div": self.ask_float("HORizontal:SCAle?")}
            self.compare("timebase_s_per_div", tb, back["timebase_s_per_div"], rel=1e-6)
            for c in channels:
                scale = self.ask_float(f"CH{c.channel}:SCAle?")
                gain = self.ask_float(f"CH{c.channel}:PRObe:GAIN?")
                self.compare(f"CH{c.channel} scale", c.volts_per_div, scale, rel=1e-6)
                self.compare(f"CH{c.channel} probe gain", 1.0 / c.probe_attenuation, gain, rel=1e-6)
                back[f"ch{c.channel}_volts_per_div"] = scale
                back[f"ch{c.channel}_probe"] = 1.0 / gain
            self._setup = {c.channel: c for c in channels}
            self._record = record
        return back

    def single(self) -> None:
        """Arm one sequence acquisition."""
        with self.lock:
            self.write("ACQuire:STOPAfter SEQuence")
            self.write("ACQuire:STATE ON")
            self.opc()

    def acquired(self) -> bool:
        """Whether the sequence acquisition is complete (``ACQuire:STATE?`` reads 0)."""
        return int(self.ask_float("ACQuire:STATE?")) == 0

    def force_trigger(self) -> None:
        """Force a trigger (``TRIGger FORCe``)."""
        self.write("TRIGger FORCe")

    def wait_acquired(self, timeout_s: float = 5.0, poll_s: float = 0.01) -> None:
        """Poll ``ACQuire:STATE?`` until the sequence is complete."""
        deadline = time.monotonic() + timeout_s
        while int(self.ask_float("ACQuire:STATE?")) != 0:
            if time.monotonic() > deadline:
                raise ConnectionFailed(f"{self.name} at {self.resource} did not trigger within {timeout_s:g} s",
                                       resource=self.resource)
            time.sleep(poll_s)

    def capture(self, channels: Sequence[int] = (1, 2)) -> dict[int, Trace]:
        """Read the last acquisition as scaled traces (signed-byte ``CURVe?`` blocks)."""
        return capture_channels(self, channels, self._fetch, signed=True)

    def _fetch(self, ch: int) -> tuple[Any, bytes]:
        """Select one channel, then read its ``WFMOutpre`` fields and ``CURVe?`` block."""
        self.write(f"DATa:SOUrce CH{ch}")
        fields = ";".join(f"{f}={self.ask(f'WFMOutpre:{f}?')}" for f in _PREAMBLE_FIELDS)
        return parse_preamble(fields, "tektronix", resource=self.resource), self.read_block("CURVe?")

    def close(self) -> None:
        """Close the connection."""
        self.close_connection()
