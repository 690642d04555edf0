"""Keithley 6221 AC/DC current source as a :class:`~instruments.base.Stimulator` (microcurrent).

Built on PyMeasure's maintained ``pymeasure.instruments.keithley.Keithley6221`` (its ``waveform_*``,
``source_compliance`` and ``source_enabled`` controls and ``waveform_arm/start/abort``), wrapped by the safety
layer: PyMeasure's validators *truncate* out-of-range values silently, so every value is checked here first and
refused with :class:`~instruments.errors.OutOfRange`, and every setting is read back.

Waveforms (peak current ``A``): ``'biphasic'`` is a square from −A to +A (charge balanced); ``'square'`` a
unipolar square 0…A; ``'dc'`` a constant A (square at 100 % duty). Each :meth:`trigger` runs one wave burst of
``cycles_per_burst`` cycles (``SOUR:WAVE:DUR:CYCL``), so stimulation stops when triggers stop.

:meth:`configure_arb_current` plays a user-defined waveform instead (``ARB0``, the 6221's working arbitrary
waveform: 2 to 65 535 points normalised to −1…+1, sent 100 points per command with ``SOUR:WAVE:ARB:DATA`` then
``SOUR:WAVE:ARB:APPend``; repeated at 1 mHz – 100 kHz; peak current ``SOUR:WAVE:AMPL``). The delivery layer
uses it to hold both polarities of a microcurrent in one burst, so no command reverses the current between
bursts.
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
#: points of ``ARB0`` (Model 6220/6221 Reference Manual, ``SOUR:WAVE:ARB``) and per data command
ARB_POINTS = (2, 65_535)
_ARB_CHUNK = 100
#: repetition frequency of a wave, arbitrary ones included
WAVE_HZ = (1e-3, 1e5)


class Keithley6221(StimulatorDriver, _PyMeasure6221):
    """Keithley 6221 with the stimulator safety layer (one output, channel 1)."""

    output_channels = (1,)
    #: the configured waveform (kind, amplitude A, direct part A, duty), for polarity reversals
    _wave: tuple[str, float, float, float] | None = None

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

    def _wave_levels(self, polarity: int) -> tuple[float, float, float]:
        """(wave amplitude, offset, duty %) of the configured waveform at ``polarity``.

        The 6221's square runs between offset ± amplitude, high for the duty cycle: ``'square'`` 0…A is
        offset A/2 with amplitude A/2, high (A) for the duty cycle; reversed it is offset −A/2, its pulse
        (−A) now the low part, so the duty becomes 1 − duty: each −A pulse lasts as long as a +A one and the
        reversal balances the charge; ``'dc'`` is the same square held high (duty 100 %) — or, reversed,
        held low (duty 0 %); ``'biphasic'`` is ±A about the direct part ``dc_offset_A``, which reverses.
        """
        waveform, amp, dc, duty = self._wave
        if waveform == "biphasic":
            return amp, polarity * dc, 50.0
        if waveform == "square":
            return amp / 2, polarity * amp / 2, (duty if polarity > 0 else 1.0 - duty) * 100.0
        return amp / 2, polarity * amp / 2, 100.0 if polarity > 0 else 0.0

    def configure_current(self, channel: int, *, amplitude_A: float, waveform: CurrentWaveform,
                          frequency_Hz: float, compliance_V: float, cycles_per_burst: int, polarity: int = 1,
                          dc_offset_A: float = 0.0, duty_cycle: float = 0.5, load_ohms: float = 0.0
                          ) -> dict[str, Any]:
        """See :meth:`instruments.base.Stimulator.configure_current` (``load_ohms`` does not matter to a
        current source)."""
        self._channel(channel)
        res = self.resource
        if waveform not in ("dc", "square", "biphasic"):
            raise OutOfRange(f"waveform={waveform!r} for {res}; accepted: 'dc', 'square', 'biphasic'",
                             resource=res)
        if polarity not in (1, -1):
            raise OutOfRange(f"polarity={polarity!r} for {res}; accepted: 1, -1", resource=res)
        amp = self._range("amplitude_A", amplitude_A, 1e-9, MAX_A, " A")
        dc = self._range("dc_offset_A", dc_offset_A, -MAX_A, MAX_A, " A")
        if dc and waveform != "biphasic":
            raise OutOfRange(f"dc_offset_A={dc:g} A for {res}: a direct part is added to 'biphasic' only",
                             resource=res)
        if abs(dc) + amp > MAX_A:
            raise OutOfRange(f"dc_offset_A + amplitude_A = {abs(dc) + amp:g} A exceeds the {MAX_A:g} A {res} "
                             "delivers; nothing was sent", resource=res)
        duty = self._range("duty_cycle", duty_cycle, 0.0, 1.0)
        freq = self._range("frequency_Hz", frequency_Hz, *WAVE_HZ, " Hz")
        comp = self._range("compliance_V", compliance_V, 0.1, MAX_COMPLIANCE_V, " V")
        cycles = self._count("cycles_per_burst", cycles_per_burst, 1, 99_999_999)
        self._wave = (waveform, amp, dc, duty)
        wave_amp, offset, duty_pct = self._wave_levels(polarity)
        with self.lock:
            self.waveform_abort()
            self.source_compliance = comp
            self.waveform_function = "square"
            self.waveform_frequency = freq
            self.waveform_amplitude = wave_amp
            self.waveform_offset = offset
            self.waveform_dutycycle = duty_pct
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
                    "offset_A": offset, "duty_pct": duty_pct, "cycles": cycles}
            for key, value in sent.items():
                if isinstance(value, str):
                    self.compare(key, value, back[key])
                else:
                    self.compare(key, value, back[key], rel=1e-5, abs_=1e-12)
        return {"channel": channel, "amplitude_A": amp, "waveform": waveform, "frequency_Hz": freq,
                "compliance_V": comp, "cycles_per_burst": cycles, "polarity": polarity, "dc_offset_A": dc,
                "readback": back}

    #: this source holds a user-defined waveform (see :meth:`configure_arb_current`)
    arb_points = ARB_POINTS
    arb_frequency_Hz = WAVE_HZ

    @classmethod
    def check_arb(cls, points: Any, frequency_Hz: float, resource: str = "") -> tuple[float, ...]:
        """Validate an arbitrary waveform for ``ARB0`` without sending anything; returns the points as floats.

        Raises
        ------
        OutOfRange
            Fewer than 2 or more than 65 535 points, a point outside −1…+1 or not finite, a waveform whose
            largest magnitude is not 1 (the amplitude would not be its peak), or a repetition frequency outside
            1 mHz – 100 kHz.
        """
        import math

        values = tuple(float(p) for p in points)
        lo, hi = ARB_POINTS
        where = f" for {resource}" if resource else ""
        if not lo <= len(values) <= hi:
            raise OutOfRange(f"points: {len(values)} arbitrary-waveform points{where}; accepted: {lo} to {hi:,} "
                             "(ARB0 of the Keithley 6221); nothing was sent", resource=resource)
        bad = next((k for k, v in enumerate(values) if not (math.isfinite(v) and -1.0 <= v <= 1.0)), None)
        if bad is not None:
            raise OutOfRange(f"points[{bad}] = {values[bad]!r}{where}; accepted: finite values from -1 to +1 "
                             "(normalised to the amplitude); nothing was sent", resource=resource)
        peak = max(abs(v) for v in values)
        if not math.isclose(peak, 1.0, rel_tol=1e-9):
            raise OutOfRange(f"points peak at {peak:g}{where}; the waveform must be normalised to a peak of 1 so "
                             "that amplitude_A is its peak current; nothing was sent", resource=resource)
        f_lo, f_hi = WAVE_HZ
        if not f_lo <= frequency_Hz <= f_hi:
            raise OutOfRange(f"frequency_Hz={frequency_Hz:g} Hz for the arbitrary waveform{where}; accepted: "
                             f"{f_lo:g} to {f_hi:g} Hz; nothing was sent", resource=resource)
        return values

    def configure_arb_current(self, channel: int, *, points: Any, amplitude_A: float, frequency_Hz: float,
                              compliance_V: float, cycles_per_burst: int = 1) -> dict[str, Any]:
        """Play ``points`` (normalised −1…+1, peak 1) at ``amplitude_A`` peak, repeated at ``frequency_Hz``,
        ``cycles_per_burst`` times per :meth:`trigger`.

        Everything is validated before anything is sent (:meth:`check_arb`, amplitude 2 pA – 105 mA,
        compliance 0.1 – 105 V); then the working waveform ``ARB0`` is written (``SOUR:WAVE:ARB:DATA`` and
        ``:APPend``, 100 points each), selected, and the function, point count, frequency, amplitude, offset
        (0), burst length and compliance are read back and compared with what was sent.

        Returns
        -------
        dict
            ``channel``, ``amplitude_A``, ``frequency_Hz``, ``compliance_V``, ``cycles_per_burst``, ``points``
            (the number of points) and the raw ``readback``.

        Raises
        ------
        OutOfRange
            A value outside the instrument's range (nothing sent).
        ReadbackMismatch, InstrumentReportedError, GarbledReply
            A setting reads back differently, the instrument reported an error, or a reply is unreadable.
        """
        self._channel(channel)
        res = self.resource
        values = self.check_arb(points, frequency_Hz, res)
        amp = self._range("amplitude_A", amplitude_A, 2e-12, MAX_A, " A")
        comp = self._range("compliance_V", compliance_V, 0.1, MAX_COMPLIANCE_V, " V")
        cycles = self._count("cycles_per_burst", cycles_per_burst, 1, 99_999_999)
        chunks = [values[k:k + _ARB_CHUNK] for k in range(0, len(values), _ARB_CHUNK)]
        self._wave = None  # the waveform holds its own polarities: nothing to reverse between bursts
        with self.lock:
            self.waveform_abort()
            self.source_compliance = comp
            for k, chunk in enumerate(chunks):
                verb = "DATA" if k == 0 else "APP"
                self.write(f":SOUR:WAVE:ARB:{verb} " + ",".join(f"{v:.7g}" for v in chunk))
            self.write(f":SOUR:WAVE:FUNC ARB0;:SOUR:WAVE:FREQ {frequency_Hz:.9g};:SOUR:WAVE:AMPL {amp:.9g};"
                       f":SOUR:WAVE:OFFS 0;:SOUR:WAVE:DUR:CYCL {cycles:d}")
            self._finish_configure(channel, "configure_arb_current")
            reply = self.ask(":SOUR:WAVE:FUNC?;:SOUR:WAVE:ARB:POIN?;:SOUR:WAVE:FREQ?;:SOUR:WAVE:AMPL?;"
                             ":SOUR:WAVE:OFFS?;:SOUR:WAVE:DUR:CYCL?;:SOUR:CURR:COMP?")
            parts = reply.split(";")
            try:
                back = {"function": parts[0].strip().strip('"').upper(), "points": int(float(parts[1])),
                        "frequency_Hz": float(parts[2]), "amplitude_A": float(parts[3]), "offset_A": float(parts[4]),
                        "cycles": float(parts[5]), "compliance_V": float(parts[6])}
            except (IndexError, ValueError):
                raise GarbledReply(f"{self.name} at {res}: unexpected reply while reading the arbitrary waveform "
                                   f"back ({reply[:80]!r})", resource=res) from None
            self.compare("function", "ARB0", back["function"])
            self.compare("points", len(values), back["points"], rel=0, abs_=0)
            for key, sent in (("frequency_Hz", frequency_Hz), ("amplitude_A", amp), ("offset_A", 0.0),
                              ("cycles", cycles), ("compliance_V", comp)):
                self.compare(key, sent, back[key], rel=1e-5, abs_=1e-12)
        return {"channel": channel, "amplitude_A": amp, "frequency_Hz": frequency_Hz, "compliance_V": comp,
                "cycles_per_burst": cycles, "points": len(values), "readback": back}

    def set_polarity(self, channel: int, polarity: int) -> float:
        """Reverse the configured current between bursts: offset (and, for ``'dc'``, duty) in one round trip.

        Disarm, set, re-arm, then read back the offset, the duty, the burst length and the error queue — all
        in one program message, each part checked as in :meth:`set_wave_offset`.

        Returns
        -------
        float
            The offset read back, in amperes.
        """
        self._channel(channel)
        res = self.resource
        if polarity not in (1, -1):
            raise OutOfRange(f"polarity={polarity!r} for {res}; accepted: 1, -1", resource=res)
        if getattr(self, "_wave", None) is None:
            raise InstrumentError(f"{self.name} at {res}: configure_current before set_polarity", resource=res)
        _, offset, duty = self._wave_levels(polarity)
        return self._rewave(channel, [("OFFS", "offset_A", offset, 1e-12), ("DCYC", "duty_pct", duty, 1e-9)],
                            "reversing the current")[0]

    def _rewave(self, channel: int, changes: list[tuple[str, str, float, float]], what: str) -> list[float]:
        """Disarm, set each ``(mnemonic, name, value, abs tolerance)`` of ``SOUR:WAVE``, re-arm, and read each
        back with the burst length and the error queue, in one program message (one round trip).

        Returns the values read back; the channel stays disarmed unless every part checks out.
        """
        res = self.resource
        sets = "".join(f":SOUR:WAVE:{cmd} {value:g};" for cmd, _, value, _ in changes)
        queries = "".join(f":SOUR:WAVE:{cmd}?;" for cmd, _, _, _ in changes)
        n = len(changes)
        with self.lock:
            self._armed[channel] = False
            reply = self.ask(f":SOUR:WAVE:ABOR;{sets}:SOUR:WAVE:ARM;{queries}:SOUR:WAVE:DUR:CYCL?;:SYST:ERR?")
            # the error entry comes last: its quoted text may itself contain ';'
            parts = reply.split(";", n + 1)
            try:
                backs = [float(x) for x in parts[:n]]
                cycles = float(parts[n])
                code = int(parts[n + 1].split(",", 1)[0].strip().lstrip("+"))
            except (IndexError, ValueError):
                raise GarbledReply(f"{self.name} at {res} answered the {what} with {reply[:80]!r}",
                                   resource=res) from None
            if code != 0:
                raise InstrumentReportedError(f"{self.name} at {res} reported error(s) while {what}",
                                              resource=res, errors=[parts[n + 1], *self.errors()])
            for (_, name, value, abs_tol), back in zip(changes, backs, strict=True):
                self.compare(name, value, back, rel=1e-5, abs_=abs_tol)
            if not 1 <= cycles < 1e9:
                raise InstrumentError(f"{self.name} at {res}: wave duration is {cycles:g} cycles, not a finite "
                                      "burst", resource=res)
            self._armed[channel] = True
        return backs

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
        offset = self._range("offset_A", offset_A, -MAX_A, MAX_A, " A")
        return self._rewave(channel, [("OFFS", "offset_A", offset, 1e-12)], "wave offset change")[0]

    def _write_output(self, channel: int, on: bool) -> None:
        self.source_enabled = on

    def _read_output(self, channel: int) -> bool:
        return self.ask_bool("OUTPut?")
