"""Rigol DS1000Z oscilloscope (DS1054Z/DS1104Z…), written on PyMeasure's ``Instrument`` base.

PyMeasure 0.16 has no DS1000Z driver. Waveforms are read as BYTE blocks (``:WAV:FORM BYTE``) and scaled with
``volts = (raw - yorigin - yref) * yinc`` and ``time = xorigin + i * xinc`` from ``:WAV:PRE?``. The channel
offset on a Rigol shifts the trace, so a wanted screen-centre voltage ``offset_V`` is sent as ``-offset_V``.
With ``record_points`` the memory depth is set (``:ACQ:MDEP``) and read in RAW mode; otherwise the 1200-point
screen record (NORM mode). The depths on offer depend on the channels switched on (User's Guide, "Memory
Depth": one channel 12k/120k/1.2M/12M/24M points, two 6k/60k/600k/6M/12M, three or four 3k/30k/300k/3M/6M;
the largest of each needs the memory option) and ``depth = sample rate × timebase × 12``; the sample rate
peaks at 1 GSa/s with one channel, 500 MSa/s with two, 250 MSa/s with more. A record in memory is always read
with explicit ``:WAV:STAR``/``:WAV:STOP`` windows of at most 250 000 BYTE points (the most one ``:WAV:DATA?``
returns) and joined.
"""

from __future__ import annotations

from instruments.drivers.scope_base import PreambleScope
from instruments.record_lengths import RIGOL_MEMORY_DEPTHS

__all__ = ["RigolDS1000Z"]

#: most BYTE points one ``:WAV:DATA?`` returns
MAX_BYTES_PER_READ = 250_000


class RigolDS1000Z(PreambleScope):
    """Rigol DS1000Z four-channel oscilloscope."""

    family = "rigol"
    divisions = 12
    max_sample_rate_Sa_s = 500e6
    max_record_points = 12_000_000
    bandwidth_Hz = 100e6

    @classmethod
    def record_depths(cls, channels: int = 2) -> tuple[int, ...]:
        """Memory depths on offer with ``channels`` on (see the module docstring)."""
        return RIGOL_MEMORY_DEPTHS[min(max(int(channels), 1), 4)]

    def _offset_command(self, ch: int, offset_V: float) -> str:
        return f":CHAN{ch}:OFFS {-offset_V:.10g}"

    def _position_command(self, position_s: float) -> str:
        return f":TIM:OFFS {position_s:.10g}"

    def _record_commands(self, record_points: int | None) -> list[str]:
        if record_points is None:
            return [":ACQ:MDEP AUTO", ":WAV:MODE NORM"]
        return [f":ACQ:MDEP {int(record_points)}", ":WAV:MODE RAW"]

    def _acquired(self) -> bool:
        return self.ask(":TRIG:STAT?").upper() == "STOP"

    def _read_payload(self, points: int) -> bytes:
        if points <= 1200:  # the screen record (NORM mode) comes whole
            return super()._read_payload(points)
        parts = []
        for start in range(1, points + 1, MAX_BYTES_PER_READ):
            stop = min(start + MAX_BYTES_PER_READ - 1, points)
            self.write(f":WAV:STAR {start}")
            self.write(f":WAV:STOP {stop}")
            parts.append(self.read_block(":WAV:DATA?"))
        if len(parts) == 1:
            # one window from the first point: the start is where the next read begins anyway
            return parts[0]
        self.write(":WAV:STAR 1")
        return b"".join(parts)
