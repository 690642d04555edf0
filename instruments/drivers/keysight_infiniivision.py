"""Keysight InfiniiVision 1000X/2000X oscilloscope, written on PyMeasure's ``Instrument`` base.

BYTE blocks scaled with ``volts = (raw - yref) * yinc + yorigin`` and ``time = (i - xref) * xinc + xorigin``
from ``:WAV:PRE?``; ``:CHAN<n>:OFFS`` is the screen-centre voltage; ``:WAV:POIN`` sets the record; the run bit
(8) of ``:OPER:COND?`` clears when a single acquisition is complete.
"""

from __future__ import annotations

from instruments.drivers.scope_base import PreambleScope
from instruments.record_lengths import KEYSIGHT_RAW_POINTS

__all__ = ["KeysightInfiniiVision"]


class KeysightInfiniiVision(PreambleScope):
    """Keysight InfiniiVision DSOX1000/2000 oscilloscope."""

    family = "keysight"
    divisions = 10
    max_sample_rate_Sa_s = 1e9
    max_record_points = 1_000_000
    bandwidth_Hz = 200e6

    @classmethod
    def record_depths(cls, channels: int = 2) -> tuple[int, ...]:
        """Record lengths ``:WAV:POIN`` accepts."""
        return KEYSIGHT_RAW_POINTS

    def _offset_command(self, ch: int, offset_V: float) -> str:
        return f":CHAN{ch}:OFFS {offset_V:.10g}"

    def _position_command(self, position_s: float) -> str:
        return f":TIM:POS {position_s:.10g}"

    def _record_commands(self, record_points: int | None) -> list[str]:
        return [":WAV:POIN:MODE NORM" if record_points is None else ":WAV:POIN:MODE RAW",
                f":WAV:POIN {int(record_points or 1000)}"]

    #: :TRIGger:FORCe (a ``:TFOR`` is Rigol's spelling)
    force_command = ":TRIG:FORC"

    def _acquired(self) -> bool:
        return (int(self.ask_float(":OPER:COND?")) & 8) == 0
