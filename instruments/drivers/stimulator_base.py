"""What all stimulator drivers share: validation, the configure → ``*OPC?`` → read back → errors cycle,
output off on close and at exit, refusal to enable an output that is not armed as finite bursts."""

from __future__ import annotations

import contextlib
from typing import Any, NamedTuple

from instruments import safety
from instruments.base import CurrentWaveform, Stimulator
from instruments.drivers.session import ScpiSession, check_range
from instruments.errors import (
    ConnectionFailed,
    InstrumentError,
    OutOfRange,
    OutputStateUnknown,
    ReadbackMismatch,
)

__all__ = ["IGNORED_START_CODES", "PulseTrain", "StimulatorDriver"]


class PulseTrain(NamedTuple):
    """A validated pulse train: the checked values, and the peak-to-peak span and centre of its two levels."""

    limit_V: float
    amplitude_V: float
    offset_V: float
    frequency_Hz: float
    width_s: float
    pulses: int
    vpp: float
    centre_V: float

#: SCPI errors that say a trigger or start request came while the previous burst was still running
#: (-211 "Trigger ignored", -213 "Init ignored"): the request had no effect, the running burst goes on
IGNORED_START_CODES = (-211, -213)


class StimulatorDriver(ScpiSession, Stimulator):
    """Base of the stimulator drivers (subclasses supply the vendor commands)."""

    output_channels: tuple[int, ...] = (1,)
    #: series resistor (ohms) through which a voltage generator drives microcurrent; set from the bench file
    #: (``series_resistor_ohms``) by :func:`instruments.bench.connect_bench`
    series_resistor_ohms: float | None = None

    def __init__(self, adapter: Any, name: str = "stimulator", resource: str = "") -> None:
        super().__init__(adapter, name, resource)
        self._armed: dict[int, bool] = dict.fromkeys(self.output_channels, False)
        safety.register_stimulator(self)

    #: output impedance of a voltage generator (ohms): in series with its series resistor and the load
    output_ohms: float = 50.0
    #: largest open-circuit output magnitude of a voltage generator (volts)
    max_output_V: float = 10.0

    def _current_via_series_resistor(self, channel: int, *, amplitude_A: float, waveform: str, frequency_Hz: float,
                                     compliance_V: float, cycles_per_burst: int, polarity: int = 1,
                                     dc_offset_A: float = 0.0, duty_cycle: float = 0.5,
                                     load_ohms: float = 0.0) -> dict[str, Any]:
        """Microcurrent from a voltage generator through :attr:`series_resistor_ohms`.

        The generator is set to ``V = I × (output 50 Ω + series resistor + load_ohms)`` — the load measured on
        the subject plus the shunt — so the current is ``I`` through whatever the electrodes present; the
        scope's shunt channel verifies it. The output is clamped at ``±compliance_V``. ``'biphasic'`` is a
        pulse from −V to +V (shifted by the direct part ``dc_offset_A``) for half of each period,
        ``'square'`` one from 0 to ±V for ``duty_cycle`` of it; ``'dc'`` cannot be made of finite pulses and
        is refused.
        """
        res = self.resource
        r = self.series_resistor_ohms
        if not r:
            raise InstrumentError(f"{self.name} at {res} is a voltage generator: microcurrent needs the bench's "
                                  "series_resistor_ohms (or a current source, driver keithley6221)", resource=res)
        if waveform not in ("square", "biphasic"):
            raise OutOfRange(f"waveform={waveform!r} through a series resistor on {res}; accepted: 'square', "
                             "'biphasic' ('dc' needs a current source)", resource=res)
        if polarity not in (1, -1):
            raise OutOfRange(f"polarity={polarity!r} for {res}; accepted: 1, -1", resource=res)
        ohms = self.output_ohms + r + self._range("load_ohms", load_ohms, 0.0, 1e9, " ohm")
        volts = self._range("amplitude_A", amplitude_A, 1e-9, 0.105, " A") * ohms
        dc_V = self._range("dc_offset_A", dc_offset_A, -0.105, 0.105, " A") * ohms * polarity
        freq = self._range("frequency_Hz", frequency_Hz, 1e-3, 1e6, " Hz")
        duty = self._range("duty_cycle", duty_cycle, 1e-3, 0.999, "")
        if waveform == "biphasic":
            amp, offset, width = 2 * volts, dc_V - volts, 0.5 / freq
        else:
            amp, offset, width = polarity * volts, 0.0, duty / freq
        back = self.configure_pulse_train(channel, amplitude_V=amp, offset_V=offset, pulse_width_s=width,
                                          frequency_Hz=freq, pulses_per_burst=cycles_per_burst,
                                          limit_V=compliance_V)
        return {**back, "amplitude_A": amplitude_A, "waveform": waveform, "series_resistor_ohms": r,
                "compliance_V": compliance_V, "output_V": volts, "load_ohms": load_ohms, "polarity": polarity}

    def configure_current(self, channel: int, *, amplitude_A: float, waveform: CurrentWaveform,
                          frequency_Hz: float, compliance_V: float, cycles_per_burst: int, polarity: int = 1,
                          dc_offset_A: float = 0.0, duty_cycle: float = 0.5, load_ohms: float = 0.0
                          ) -> dict[str, Any]:
        """Microcurrent from a voltage generator through the bench's series resistor (see
        ``_current_via_series_resistor``); a current source overrides this.

        Raises
        ------
        InstrumentError
            If no ``series_resistor_ohms`` is declared for the bench.
        """
        return self._current_via_series_resistor(channel, amplitude_A=amplitude_A, waveform=waveform,
                                                 frequency_Hz=frequency_Hz, compliance_V=compliance_V,
                                                 cycles_per_burst=cycles_per_burst, polarity=polarity,
                                                 dc_offset_A=dc_offset_A, duty_cycle=duty_cycle,
                                                 load_ohms=load_ohms)

    # ---- vendor hooks
    def _write_output(self, channel: int, on: bool) -> None:
        raise NotImplementedError

    def _read_output(self, channel: int) -> bool:
        raise NotImplementedError

    def _check_armed(self, channel: int) -> None:
        """Read back that the channel is in finite bus-triggered burst mode (raise otherwise)."""
        raise NotImplementedError

    # ---- shared behaviour
    def _start_bursts(self, command: str) -> bool:
        """Send a burst start ``command`` and ``SYST:ERR?`` in one program message; True if it was accepted.

        The error query is answered as soon as the start command has been executed, without waiting for the
        burst (an overlapped operation, which ``*OPC?`` would wait for), so the reply dates the start and says
        whether the instrument ignored it because a burst was still running (-211/-213: returns False). Any
        other error raises :class:`InstrumentReportedError` with the whole queue.
        """
        entry = self.ask(f"{command};{self.error_query}")
        code = self.error_code(entry)
        if code == 0:
            return True
        entries = [entry, *self.errors()]
        codes = [self.error_code(e) for e in entries]
        if all(c in IGNORED_START_CODES for c in codes):
            return False
        from instruments.errors import InstrumentReportedError

        raise InstrumentReportedError(f"{self.name} at {self.resource} reported error(s) when starting a burst",
                                      resource=self.resource, errors=entries)

    #: error query appended to a burst start (a leading colon where the start command leaves a subsystem path)
    error_query = "SYST:ERR?"

    def _channel(self, channel: int) -> int:
        if channel not in self.output_channels:
            raise OutOfRange(f"channel {channel!r} does not exist on {self.name} at {self.resource}; "
                             f"accepted: {', '.join(map(str, self.output_channels))}", resource=self.resource)
        return channel

    def _finish_configure(self, channel: int, what: str) -> None:
        self.opc()
        self.raise_errors(what)
        self._armed[channel] = False

    def arm(self, channel: int | None = None) -> None:
        """Check, by reading back, that the channel(s) are finite bus-triggered bursts."""
        with self.lock:
            for ch in ([channel] if channel is not None else list(self.output_channels)):
                self._check_armed(self._channel(ch))
                self._armed[ch] = True

    def output_on(self, channel: int) -> None:
        """Switch an armed channel on and read it back on; refuses a channel that is not armed."""
        with self.lock:
            self._channel(channel)
            if not self._armed.get(channel):
                raise InstrumentError(f"{self.name} at {self.resource}: channel {channel} is not armed as "
                                      "finite bus-triggered bursts; call arm() after configuring",
                                      resource=self.resource)
            self._write_output(channel, True)
            self.opc()
            if not self._read_output(channel):
                raise ReadbackMismatch(f"{self.name} at {self.resource}: output {channel} reads back off after "
                                       "switching on", resource=self.resource)
            self.raise_errors(f"output {channel} on")

    def output_off(self, channel: int) -> None:
        """Switch a channel off and read it back off."""
        with self.lock:
            self._channel(channel)
            self._write_output(channel, False)
            if self._read_output(channel):
                raise OutputStateUnknown(f"{self.name} at {self.resource}: output {channel} still reads back ON "
                                         "after switching off — check the instrument by hand",
                                         resource=self.resource)

    def output_state(self, channel: int) -> bool:
        """Output state read back from the instrument."""
        with self.lock:
            return self._read_output(self._channel(channel))

    def safe_shutdown(self) -> None:
        """All outputs off and read back off; raises OutputStateUnknown if any could not be confirmed."""
        if self._closed:
            return
        problems: list[str] = []
        with self.lock:
            self.resync()
            for ch in self.output_channels:
                try:
                    self._write_output(ch, False)
                except InstrumentError as exc:
                    problems.append(f"output {ch}: {exc}")
            for ch in self.output_channels:
                try:
                    if self._read_output(ch):
                        problems.append(f"output {ch} still reads back ON")
                except InstrumentError as exc:
                    problems.append(f"output {ch} state unknown: {exc}")
                self._armed[ch] = False
        if problems:
            raise OutputStateUnknown(f"{self.name} at {self.resource}: outputs could not be confirmed off — "
                                     "check the instrument by hand", resource=self.resource, details=problems)

    def close(self) -> None:
        """Outputs off (read back), then close the connection; idempotent."""
        if self._closed:
            return
        try:
            self.safe_shutdown()
        finally:
            with contextlib.suppress(ConnectionFailed):
                self.close_connection()
            safety.unregister_stimulator(self)

    def abandon(self) -> None:
        """Close without sending anything and forget the instrument for the exit-time shutdown.

        Used when the instrument at the resource is not the one declared: commands meant for a stimulator must
        not reach some other device.
        """
        self.close_connection()
        safety.unregister_stimulator(self)

    def shutdown(self) -> None:
        """PyMeasure's shutdown hook: the same as :meth:`close` (outputs off and read back)."""
        self.close()

    # ---- validation helpers for subclasses
    def _check_pulse_train(self, *, amplitude_V: float, pulse_width_s: float, frequency_Hz: float,
                           pulses_per_burst: int, offset_V: float, limit_V: float | None, max_V: float,
                           max_Hz: float, min_width_s: float, min_amplitude_V: float, max_cycles: int) -> PulseTrain:
        """Validate a pulse train of either sign (nothing is sent): every value in the generator's range, the pulse
        shorter than its period, and both levels inside ``±limit_V``; returns it with its Vpp and centre."""
        res = self.resource
        limit = self._range("limit_V", max_V if limit_V is None else limit_V, 1e-3, max_V, " V")
        amp = self._range("amplitude_V", amplitude_V, -2 * max_V, 2 * max_V, " V")
        off = self._range("offset_V", offset_V, -max_V, max_V, " V")
        freq = self._range("frequency_Hz", frequency_Hz, 1e-6, max_Hz, " Hz")
        width = self._range("pulse_width_s", pulse_width_s, min_width_s, 1e6, " s")
        n = self._count("pulses_per_burst", pulses_per_burst, 1, max_cycles)
        if abs(amp) < min_amplitude_V:
            raise OutOfRange(f"amplitude_V={amp:g} V for {res} is below the {min_amplitude_V * 1e3:g} mV minimum",
                             resource=res)
        if width >= 1.0 / freq:
            raise OutOfRange(f"pulse_width_s={width:g} s for {res} must be shorter than the period "
                             f"{1.0 / freq:g} s (frequency_Hz={freq:g})", resource=res)
        high, low = max(off, off + amp), min(off, off + amp)
        if high > limit or low < -limit:
            raise OutOfRange(f"pulse levels {low:g}..{high:g} V for {res} exceed limit_V=±{limit:g} V; "
                             "nothing was sent", resource=res)
        return PulseTrain(limit, amp, off, freq, width, n, high - low, (high + low) / 2)

    def _range(self, name: str, value: float, lo: float, hi: float, unit: str = "") -> float:
        return check_range(self.resource, name, value, lo, hi, unit)

    def _count(self, name: str, value: int, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise OutOfRange(f"{name}={value!r} for {self.resource} must be a whole number in [{lo}, {hi}]",
                             resource=self.resource)
        return int(check_range(self.resource, name, value, lo, hi))
