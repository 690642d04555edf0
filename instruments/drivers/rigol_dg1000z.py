"""Rigol DG1000Z / DG800 function generator as a :class:`~instruments.base.Stimulator`.

Written on PyMeasure's ``Instrument`` base: PyMeasure 0.16 ships a ``RigolDG800`` driver without burst
control. The DG1000Z has no instrument-side voltage clamp in its SCPI set, so ``limit_V`` is enforced here
(before anything is sent) and by reading the levels back. Bursts: ``:SOUR<n>:BURS ON``, ``:BURS:MODE TRIG``,
``:BURS:NCYC n``, ``:BURS:TRIG:SOUR MAN``; :meth:`trigger` sends ``:SOUR<n>:BURS:TRIG`` to each armed channel.
"""

from __future__ import annotations

from typing import Any

from instruments.drivers.stimulator_base import StimulatorDriver
from instruments.errors import InstrumentError, OutOfRange

__all__ = ["RigolDG1000Z"]

MAX_V = 10.0  # open circuit (high-Z load)
MAX_CYCLES = 1_000_000


class RigolDG1000Z(StimulatorDriver):
    """Rigol DG1000Z/DG800 two-channel generator with the stimulator safety layer."""

    output_channels = (1, 2)

    def configure_pulse_train(self, channel: int, *, amplitude_V: float, pulse_width_s: float,
                              frequency_Hz: float, pulses_per_burst: int, offset_V: float = 0.0,
                              limit_V: float | None = None) -> dict[str, Any]:
        """See :meth:`instruments.base.Stimulator.configure_pulse_train`."""
        ch = self._channel(channel)
        res = self.resource
        limit = self._range("limit_V", MAX_V if limit_V is None else limit_V, 1e-3, MAX_V, " V")
        amp = self._range("amplitude_V", amplitude_V, 2e-3, 2 * MAX_V, " V")
        off = self._range("offset_V", offset_V, -MAX_V, MAX_V, " V")
        freq = self._range("frequency_Hz", frequency_Hz, 1e-6, 25e6, " Hz")
        width = self._range("pulse_width_s", pulse_width_s, 16e-9, 1e6, " s")
        n = self._count("pulses_per_burst", pulses_per_burst, 1, MAX_CYCLES)
        if width >= 1.0 / freq:
            raise OutOfRange(f"pulse_width_s={width:g} s for {res} must be shorter than the period "
                             f"{1.0 / freq:g} s", resource=res)
        if off + amp > limit or off < -limit:
            raise OutOfRange(f"pulse levels {off:g}..{off + amp:g} V for {res} exceed limit_V=±{limit:g} V; "
                             "nothing was sent", resource=res)
        centre = off + amp / 2
        with self.lock:
            self.write(f":OUTP{ch}:LOAD INF")
            self.write(f":SOUR{ch}:APPL:PULS {freq:.10g},{amp:.10g},{centre:.10g},0")
            self.write(f":SOUR{ch}:PULS:WIDT {width:.10g}")
            self.write(f":SOUR{ch}:BURS:MODE TRIG")
            self.write(f":SOUR{ch}:BURS:NCYC {n:d}")
            self.write(f":SOUR{ch}:BURS:TRIG:SOUR MAN")
            self.write(f":SOUR{ch}:BURS ON")
            self._finish_configure(ch, "configure_pulse_train")
            back = {
                "frequency_Hz": self.ask_float(f":SOUR{ch}:FREQ?"),
                "pulse_width_s": self.ask_float(f":SOUR{ch}:PULS:WIDT?"),
                "amplitude_Vpp": self.ask_float(f":SOUR{ch}:VOLT?"),
                "offset_V": self.ask_float(f":SOUR{ch}:VOLT:OFFS?"),
                "burst_cycles": int(self.ask_float(f":SOUR{ch}:BURS:NCYC?")),
            }
            for key, value in (("frequency_Hz", freq), ("pulse_width_s", width), ("amplitude_Vpp", amp),
                               ("offset_V", centre), ("burst_cycles", n)):
                self.compare(key, value, back[key], rel=1e-6, abs_=1e-9)
        return {"channel": ch, "amplitude_V": amp, "offset_V": off, "pulse_width_s": width,
                "frequency_Hz": freq, "pulses_per_burst": n, "limit_V": limit, "readback": back}

    def _check_armed(self, channel: int) -> None:
        state = (self.ask(f":SOUR{channel}:BURS?").upper(), self.ask(f":SOUR{channel}:BURS:MODE?").upper(),
                 self.ask(f":SOUR{channel}:BURS:TRIG:SOUR?").upper())
        if state != ("ON", "TRIG", "MAN"):
            raise InstrumentError(f"{self.name} at {self.resource}: channel {channel} is not a finite manually "
                                  f"triggered burst (read back {state})", resource=self.resource)

    #: after ``:SOUR<n>:BURS:TRIG`` the error query needs its root colon
    error_query = ":SYST:ERR?"

    def trigger(self) -> bool:
        """One manual burst trigger to each armed channel and ``:SYST:ERR?``, in one program message.

        Returns False when the generator ignored it because a burst was still running.
        """
        with self.lock:
            triggers = [f":SOUR{ch}:BURS:TRIG" for ch in self.output_channels if self._armed.get(ch)]
            if not triggers:
                self.opc()
                return False
            return self._start_bursts(";".join(triggers))

    def _write_output(self, channel: int, on: bool) -> None:
        self.write(f":OUTP{channel} {'ON' if on else 'OFF'}")

    def _read_output(self, channel: int) -> bool:
        return self.ask_bool(f":OUTP{channel}?")
