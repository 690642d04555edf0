"""Keithley 6221 AC/DC current source as a :class:`~instruments.base.Stimulator` (microcurrent).

Built on PyMeasure's maintained ``pymeasure.instruments.keithley.Keithley6221`` (its ``waveform_*``,
``source_compliance`` and ``source_enabled`` controls and ``waveform_arm/start/abort``), wrapped by the safety
layer: PyMeasure's validators *truncate* out-of-range values silently, so every value is checked here first and
refused with :class:`~instruments.errors.OutOfRange`, and every setting is read back.

Waveforms (peak current ``A``): ``'biphasic'`` is a square from −A to +A (charge balanced); ``'square'`` a
unipolar square 0…A; ``'dc'`` a constant A (square at 100 % duty). Each :meth:`trigger` runs one wave burst of
``cycles_per_burst`` cycles (``SOUR:WAVE:DUR:CYCL``), so stimulation stops when triggers stop.
"""

from __future__ import annotations

from typing import Any

from pymeasure.instruments.keithley import Keithley6221 as _PyMeasure6221

from instruments.base import CurrentWaveform
from instruments.drivers.stimulator_base import StimulatorDriver
from instruments.errors import GarbledReply, InstrumentError, InstrumentReportedError, OutOfRange

__all__ = ["Keithley6221"]

MAX_A = 0.105
MAX_COMPLIANCE_V = 105.0


class Keithley6221(StimulatorDriver, _PyMeasure6221):
    """Keithley 6221 with the stimulator safety layer (one output, channel 1)."""

    output_channels = (1,)

    def configure_pulse_train(self, channel: int, *, amplitude_V: float, pulse_width_s: float,
                              frequency_Hz: float, pulses_per_burst: int, offset_V: float = 0.0,
                              limit_V: float | None = None) -> dict[str, Any]:
        """A current source does not deliver voltage pulses.

        Raises
        ------
        InstrumentError
            Always; use :meth:`configure_current`.
        """
        raise InstrumentError(f"{self.name} at {self.resource} is a current source: use configure_current",
                              resource=self.resource)

    def configure_current(self, channel: int, *, amplitude_A: float, waveform: CurrentWaveform,
                          frequency_Hz: float, compliance_V: float, cycles_per_burst: int) -> dict[str, Any]:
        """See :meth:`instruments.base.Stimulator.configure_current`."""
        self._channel(channel)
        res = self.resource
        if waveform not in ("dc", "square", "biphasic"):
            raise OutOfRange(f"waveform={waveform!r} for {res}; accepted: 'dc', 'square', 'biphasic'",
                             resource=res)
        amp = self._range("amplitude_A", amplitude_A, 1e-9, MAX_A, " A")
        freq = self._range("frequency_Hz", frequency_Hz, 1e-3, 1e5, " Hz")
        comp = self._range("compliance_V", compliance_V, 0.1, MAX_COMPLIANCE_V, " V")
        cycles = self._count("cycles_per_burst", cycles_per_burst, 1, 99_999_999)
        if waveform == "biphasic":
            wave_amp, offset, duty = amp, 0.0, 50.0
        elif waveform == "square":
            wave_amp, offset, duty = amp / 2, amp / 2, 50.0
        else:
            wave_amp, offset, duty = amp / 2, amp / 2, 100.0
        with self.lock:
            self.waveform_abort()
            self.source_compliance = comp
            self.waveform_function = "square"
            self.waveform_frequency = freq
            self.waveform_amplitude = wave_amp
            self.waveform_offset = offset
            self.waveform_dutycycle = duty
            self.waveform_duration_cycles = cycles
            self._finish_configure(channel, "configure_current")
            try:
                back = {
                    "compliance_V": self.source_compliance, "function": self.waveform_function,
                    "frequency_Hz": self.waveform_frequency, "wave_amplitude_A": self.waveform_amplitude,
                    "offset_A": self.waveform_offset, "duty_pct": self.waveform_dutycycle,
                    "cycles": self.waveform_duration_cycles,
                }
            except (KeyError, ValueError, IndexError) as exc:
                raise GarbledReply(f"{self.name} at {res}: unexpected reply while reading settings back ({exc})",
                                   resource=res) from None
            sent = {"compliance_V": comp, "function": "square", "frequency_Hz": freq, "wave_amplitude_A": wave_amp,
                    "offset_A": offset, "duty_pct": duty, "cycles": cycles}
            for key, value in sent.items():
                if isinstance(value, str):
                    self.compare(key, value, back[key])
                else:
                    self.compare(key, value, back[key], rel=1e-5, abs_=1e-12)
        return {"channel": channel, "amplitude_A": amp, "waveform": waveform, "frequency_Hz": freq,
                "compliance_V": comp, "cycles_per_burst": cycles, "readback": back}

    def _check_armed(self, channel: int) -> None:
        cycles = self.ask_float(":SOUR:WAVE:DUR:CYCL?")
        if not 1 <= cycles < 1e9:
            raise InstrumentError(f"{self.name} at {self.resource}: wave duration is {cycles:g} cycles, not a "
                                  "finite burst; configure it first", resource=self.resource)
        self.waveform_arm()
        self.raise_errors("arm")

    #: after ``:SOUR:WAVE:INIT`` the error query needs its root colon
    error_query = ":SYST:ERR?"

    def trigger(self) -> bool:
        """Start one finite wave burst (``SOUR:WAVE:INIT``) and read the error queue, in one round trip.

        Returns False when the start was ignored because a wave was still running (-213).
        """
        with self.lock:
            return self._start_bursts(":SOUR:WAVE:INIT")

    def set_wave_offset(self, channel: int, offset_A: float) -> float:
        """Disarm, set the wave offset, re-arm, and read back the offset, the burst length and the error queue.

        The 6221's square wave runs from offset − amplitude to offset + amplitude, so changing the sign of
        the offset of a unipolar square reverses its polarity. Everything goes in one program message
        (one round trip, where PyMeasure's properties take six); each part is still checked: the offset
        reads back as sent, the wave is still a finite burst, and the error queue is empty.

        Parameters
        ----------
        channel : int
            Output channel (1).
        offset_A : float
            Wave offset in amperes; ``|offset| + amplitude`` must stay within 105 mA (the instrument refuses
            more and the error queue reports it).

        Returns
        -------
        float
            The offset read back, in amperes.

        Raises
        ------
        OutOfRange
            ``offset_A`` outside ±105 mA (nothing sent).
        ReadbackMismatch, InstrumentReportedError, InstrumentError, GarbledReply
            The offset read back differs, the instrument reported an error, the wave is not a finite burst,
            or the reply could not be parsed.
        """
        self._channel(channel)
        res = self.resource
        offset = self._range("offset_A", offset_A, -MAX_A, MAX_A, " A")
        with self.lock:
            self._armed[channel] = False
            reply = self.ask(f":SOUR:WAVE:ABOR;:SOUR:WAVE:OFFS {offset:g};:SOUR:WAVE:ARM;"
                             ":SOUR:WAVE:OFFS?;:SOUR:WAVE:DUR:CYCL?;:SYST:ERR?")
            # the error entry comes last: its quoted text may itself contain ';'
            parts = reply.split(";", 2)
            try:
                back, cycles = float(parts[0]), float(parts[1])
                code = int(parts[2].split(",", 1)[0].strip().lstrip("+"))
            except (IndexError, ValueError):
                raise GarbledReply(f"{self.name} at {res} answered the wave offset change with {reply[:80]!r}",
                                   resource=res) from None
            if code != 0:
                raise InstrumentReportedError(f"{self.name} at {res} reported error(s) while changing the wave "
                                              "offset", resource=res, errors=[parts[2], *self.errors()])
            self.compare("offset_A", offset, back, rel=1e-5, abs_=1e-12)
            if not 1 <= cycles < 1e9:
                raise InstrumentError(f"{self.name} at {res}: wave duration is {cycles:g} cycles, not a finite "
                                      "burst", resource=res)
            self._armed[channel] = True
        return back

    def _write_output(self, channel: int, on: bool) -> None:
        self.source_enabled = on

    def _read_output(self, channel: int) -> bool:
        return self.ask_bool("OUTPut?")
