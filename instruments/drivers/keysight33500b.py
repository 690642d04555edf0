"""Keysight 33500B series (33511B/33522B…) function generator as a :class:`~instruments.base.Stimulator`.

Written on PyMeasure's ``Instrument``/``Channel`` machinery rather than on
``pymeasure.instruments.agilent.Agilent33500`` because that driver (0.16) does not fit a stimulator:
its amplitude and offset validators assume a 50 Ω load (≤ 10 Vpp, offset ±4.995 V) whereas the amplifier
input is high impedance (±10 V open circuit); it has no ``VOLT:LIM`` clamp nor ``TRIG:SOUR``; it formats
frequency and amplitude with ``%f`` (six decimals); and it leaves the output on at shutdown (pymeasure#513).

Every pulse train is a finite burst (``BURS:MODE TRIG``, ``BURS:NCYC n``, ``TRIG:SOUR BUS``), clamped by the
instrument (``VOLT:LIM:HIGH/LOW``, ``VOLT:LIM:STAT ON``), with ``OUTP:LOAD INF`` so the set levels are the
open-circuit levels seen by the amplifier.
"""

from __future__ import annotations

from typing import Any

from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from instruments.carrier import carrier_arb
from instruments.drivers.stimulator_base import StimulatorDriver
from instruments.errors import GarbledReply, InstrumentError, OutOfRange

__all__ = ["Keysight33500B", "Keysight33500BChannel"]

MAX_V = 10.0  # open-circuit output magnitude into high impedance
MIN_WIDTH_S = 16e-9
MAX_FREQ_HZ = 30e6
MAX_CYCLES = 100_000
#: arbitrary waveforms: samples sent as one ASCII list of DAC codes (the instrument holds 1 M), and the 33500B's
#: highest sample rate
MAX_ARB_POINTS = 65_536
MAX_ARB_RATE_SA_S = 160e6
#: name of the carrier waveform in volatile memory
CARRIER_ARB = "EPCARRIER"


class Keysight33500BChannel(Channel):
    """One output channel (``SOUR{ch}``, ``OUTP{ch}``, ``TRIG{ch}``)."""

    function = Channel.control(
        "SOUR{ch}:FUNC?", "SOUR{ch}:FUNC %s", """Control the waveform function (str: PULS, SQU, SIN, DC, ARB).""",
        validator=strict_discrete_set, values=("PULS", "SQU", "SIN", "DC", "ARB"))
    frequency_Hz = Channel.control(
        "SOUR{ch}:FREQ?", "SOUR{ch}:FREQ %.10g", """Control the frequency in hertz (float).""",
        validator=strict_range, values=(1e-6, MAX_FREQ_HZ))
    pulse_width_s = Channel.control(
        "SOUR{ch}:FUNC:PULS:WIDT?", "SOUR{ch}:FUNC:PULS:WIDT %.10g", """Control the pulse width in seconds.""",
        validator=strict_range, values=(MIN_WIDTH_S, 1e6))
    amplitude_Vpp = Channel.control(
        "SOUR{ch}:VOLT?", "SOUR{ch}:VOLT %.10g", """Control the amplitude in volts peak-to-peak.""",
        validator=strict_range, values=(1e-3, 2 * MAX_V))
    offset_V = Channel.control(
        "SOUR{ch}:VOLT:OFFS?", "SOUR{ch}:VOLT:OFFS %.10g", """Control the DC offset in volts.""",
        validator=strict_range, values=(-MAX_V, MAX_V))
    limit_high_V = Channel.control(
        "SOUR{ch}:VOLT:LIM:HIGH?", "SOUR{ch}:VOLT:LIM:HIGH %.10g", """Control the upper output clamp in volts.""",
        validator=strict_range, values=(-MAX_V, MAX_V))
    limit_low_V = Channel.control(
        "SOUR{ch}:VOLT:LIM:LOW?", "SOUR{ch}:VOLT:LIM:LOW %.10g", """Control the lower output clamp in volts.""",
        validator=strict_range, values=(-MAX_V, MAX_V))
    limit_enabled = Channel.control(
        "SOUR{ch}:VOLT:LIM:STAT?", "SOUR{ch}:VOLT:LIM:STAT %s", """Control the output clamp (bool).""",
        validator=strict_discrete_set, values={True: "ON", False: "OFF"}, map_values=True,
        get_process=lambda v: {1.0: "ON", 0.0: "OFF"}.get(v, v))
    burst_enabled = Channel.control(
        "SOUR{ch}:BURS:STAT?", "SOUR{ch}:BURS:STAT %s", """Control burst mode (bool).""",
        validator=strict_discrete_set, values={True: "ON", False: "OFF"}, map_values=True,
        get_process=lambda v: {1.0: "ON", 0.0: "OFF"}.get(v, v))
    burst_mode = Channel.control(
        "SOUR{ch}:BURS:MODE?", "SOUR{ch}:BURS:MODE %s", """Control the burst mode (str: TRIG or GAT).""",
        validator=strict_discrete_set, values=("TRIG", "GAT"))
    burst_cycles = Channel.control(
        "SOUR{ch}:BURS:NCYC?", "SOUR{ch}:BURS:NCYC %d", """Control the cycles per burst (int).""",
        validator=strict_range, values=(1, MAX_CYCLES), get_process=lambda v: int(v) if isinstance(v, float) else v)
    trigger_source = Channel.control(
        "TRIG{ch}:SOUR?", "TRIG{ch}:SOUR %s", """Control the trigger source (str: BUS, IMM, EXT).""",
        validator=strict_discrete_set, values=("BUS", "IMM", "EXT"))
    load = Channel.control(
        "OUTP{ch}:LOAD?", "OUTP{ch}:LOAD %s", """Control the declared load (str 'INF' or ohms).""")


class Keysight33500B(StimulatorDriver):
    """Keysight 33500B two-channel generator with the stimulator safety layer.

    Parameters
    ----------
    adapter : pymeasure Adapter
        Connection (``instruments.transport.open_adapter`` or a replaying adapter).
    name : str
        Role name used in messages.
    resource : str
        Resource string used in messages.
    """

    output_channels = (1, 2)
    supports_carrier = True
    ch_1 = Instrument.ChannelCreator(Keysight33500BChannel, 1)
    ch_2 = Instrument.ChannelCreator(Keysight33500BChannel, 2)

    @classmethod
    def carrier_waveform(cls, *, pulse_width_s: float, carrier_Hz: float, frequency_Hz: float, resource: str = ""):
        """The ARB this generator plays for a carrier pulse train (see :func:`instruments.carrier.carrier_arb`)."""
        return carrier_arb(pulse_width_s=pulse_width_s, carrier_Hz=carrier_Hz, period_s=1.0 / frequency_Hz,
                           max_points=MAX_ARB_POINTS, max_sample_rate_Sa_s=MAX_ARB_RATE_SA_S, resource=resource)

    def configure_carrier_train(self, channel: int, *, amplitude_V: float, pulse_width_s: float, carrier_Hz: float,
                                frequency_Hz: float, pulses_per_burst: int, limit_V: float | None = None
                                ) -> dict[str, Any]:
        """Pulses filled with a ±``amplitude_V`` square carrier, played as an arbitrary waveform of one period.

        The ARB (``DATA:ARB:DAC``, codes ±32767 and 0) is loaded into volatile memory and played with its
        sample-and-hold output (``FUNC:ARB:FILT OFF``: every carrier edge a step); one ARB cycle is one
        pulse period, ``BURS:NCYC`` of them make a bus-triggered burst, clamped by ``VOLT:LIM``. Everything is
        read back, including the number of points loaded.
        """
        ch = self._channel(channel)
        res = self.resource
        limit = self._range("limit_V", MAX_V if limit_V is None else limit_V, 1e-3, MAX_V, " V")
        amp = self._range("amplitude_V", amplitude_V, 1e-3, MAX_V, " V")
        freq = self._range("frequency_Hz", frequency_Hz, 1e-6, MAX_FREQ_HZ, " Hz")
        n = self._count("pulses_per_burst", pulses_per_burst, 1, MAX_CYCLES)
        if amp > limit:
            raise OutOfRange(f"carrier levels ±{amp:g} V for {res} exceed limit_V=±{limit:g} V; nothing was sent",
                             resource=res)
        arb = self.carrier_waveform(pulse_width_s=pulse_width_s, carrier_Hz=carrier_Hz, frequency_Hz=freq,
                                    resource=res)
        codes = ",".join(str(int(round(x * 32767))) for x in arb.samples)
        c = self._ch(ch)
        with self.lock:
            c.limit_enabled = False
            c.load = "INF"
            c.burst_enabled = False
            self.write(f"SOUR{ch}:DATA:VOL:CLE")
            self.write(f"SOUR{ch}:DATA:ARB:DAC {CARRIER_ARB},{codes}")
            self.write(f"SOUR{ch}:FUNC:ARB {CARRIER_ARB}")
            c.function = "ARB"
            self.write(f"SOUR{ch}:FUNC:ARB:SRAT {arb.sample_rate_Sa_s:.10g}")
            self.write(f"SOUR{ch}:FUNC:ARB:FILT OFF")
            c.limit_high_V = limit
            c.limit_low_V = -limit
            c.offset_V = 0.0
            c.amplitude_Vpp = 2 * amp
            self._clamp_and_arm_burst(c, n)
            self._finish_configure(ch, "configure_carrier_train")
            back = {
                "function": c.function,
                "arb": self.ask(f"SOUR{ch}:FUNC:ARB?").strip('"'),
                "arb_points": int(self.ask_float(f"SOUR{ch}:DATA:ATTR:POIN? {CARRIER_ARB}")),
                "sample_rate_Sa_s": self.ask_float(f"SOUR{ch}:FUNC:ARB:SRAT?"),
                "filter": self.ask(f"SOUR{ch}:FUNC:ARB:FILT?"),
                **self._read_levels_and_burst(c),
            }
            if not back["arb"].upper().endswith(CARRIER_ARB):
                self.compare("arb", CARRIER_ARB, back["arb"])
            self._compare_sent({"function": "ARB", "arb_points": arb.points, "sample_rate_Sa_s": arb.sample_rate_Sa_s,
                                "filter": "OFF", **self._levels_and_burst(2 * amp, 0.0, limit, n)}, back)
        return {"channel": ch, "amplitude_V": amp, "pulse_width_s": arb.pulse_width_s, "carrier_Hz": arb.carrier_Hz,
                "frequency_Hz": 1.0 / arb.period_s, "pulses_per_burst": n, "limit_V": limit, "readback": back}

    def _ch(self, channel: int) -> Keysight33500BChannel:
        return self.ch_1 if self._channel(channel) == 1 else self.ch_2

    def configure_pulse_train(self, channel: int, *, amplitude_V: float, pulse_width_s: float,
                              frequency_Hz: float, pulses_per_burst: int, offset_V: float = 0.0,
                              limit_V: float | None = None) -> dict[str, Any]:
        """See :meth:`instruments.base.Stimulator.configure_pulse_train`."""
        c = self._ch(channel)
        limit, amp, off, freq, width, n, vpp, centre = self._check_pulse_train(
            amplitude_V=amplitude_V, pulse_width_s=pulse_width_s, frequency_Hz=frequency_Hz,
            pulses_per_burst=pulses_per_burst, offset_V=offset_V, limit_V=limit_V, max_V=MAX_V, max_Hz=MAX_FREQ_HZ,
            min_width_s=MIN_WIDTH_S, min_amplitude_V=1e-3, max_cycles=MAX_CYCLES)
        with self.lock:
            # clamp first so no intermediate state can exceed it; a negative pulse is an inverted PULS
            c.limit_enabled = False
            c.load = "INF"
            c.function = "PULS"
            c.burst_enabled = False
            c.limit_high_V = limit
            c.limit_low_V = -limit
            c.frequency_Hz = freq
            c.pulse_width_s = width if amp > 0 else 1.0 / freq - width
            c.offset_V = 0.0  # so no intermediate amplitude/offset pair leaves the ±10 V range
            c.amplitude_Vpp = vpp
            c.offset_V = centre
            self._clamp_and_arm_burst(c, n)
            self._finish_configure(channel, "configure_pulse_train")
            back = self._read_settings(c)
            self._compare_sent({"function": "PULS", "frequency_Hz": freq, "pulse_width_s": c_width(amp, width, freq),
                                **self._levels_and_burst(vpp, centre, limit, n)}, back)
        return {"channel": channel, "amplitude_V": amp, "offset_V": off, "pulse_width_s": width,
                "frequency_Hz": freq, "pulses_per_burst": n, "limit_V": limit, "readback": back}

    @staticmethod
    def _clamp_and_arm_burst(c: Keysight33500BChannel, n: int) -> None:
        """Clamp on, then a finite burst of ``n`` cycles started by ``*TRG`` (the last settings sent)."""
        c.limit_enabled = True
        c.burst_mode = "TRIG"
        c.burst_cycles = n
        c.trigger_source = "BUS"
        c.burst_enabled = True

    @staticmethod
    def _levels_and_burst(vpp: float, centre: float, limit: float, n: int) -> dict[str, Any]:
        """What levels, clamp and burst must read back as (see :meth:`_read_levels_and_burst`)."""
        return {"amplitude_Vpp": vpp, "offset_V": centre, "limit_high_V": limit, "limit_low_V": -limit,
                "limit_enabled": True, "burst_mode": "TRIG", "burst_cycles": n, "trigger_source": "BUS",
                "burst_enabled": True}

    @staticmethod
    def _read_levels_and_burst(c: Keysight33500BChannel) -> dict[str, Any]:
        return {"amplitude_Vpp": c.amplitude_Vpp, "offset_V": c.offset_V, "limit_high_V": c.limit_high_V,
                "limit_low_V": c.limit_low_V, "limit_enabled": c.limit_enabled, "burst_mode": c.burst_mode,
                "burst_cycles": c.burst_cycles, "trigger_source": c.trigger_source, "burst_enabled": c.burst_enabled}

    def _compare_sent(self, sent: dict[str, Any], back: dict[str, Any]) -> None:
        """Every setting read back as sent (switches as ON/OFF, names exactly, numbers within 1 ppm)."""
        for key, value in sent.items():
            got = back[key]
            if isinstance(value, bool):
                self.compare(key, "ON" if value else "OFF", "ON" if got is True else str(got))
            elif isinstance(value, str):
                self.compare(key, value, got)
            else:
                self.compare(key, value, got, rel=1e-6, abs_=1e-9)

    def _read_settings(self, c: Keysight33500BChannel) -> dict[str, Any]:
        try:
            return {"function": c.function, "frequency_Hz": c.frequency_Hz, "pulse_width_s": c.pulse_width_s,
                    **self._read_levels_and_burst(c)}
        except (KeyError, ValueError, IndexError) as exc:
            raise GarbledReply(f"{self.name} at {self.resource}: unexpected reply while reading settings back "
                               f"({exc})", resource=self.resource) from None

    def _check_armed(self, channel: int) -> None:
        # the three settings that make a finite bus-triggered burst, read back (configure read back the rest)
        c = self._ch(channel)
        try:
            state = {"burst_mode": c.burst_mode, "trigger_source": c.trigger_source, "burst_enabled": c.burst_enabled}
        except (KeyError, ValueError, IndexError) as exc:
            raise GarbledReply(f"{self.name} at {self.resource}: unexpected reply while reading the burst state "
                               f"back ({exc})", resource=self.resource) from None
        if state != {"burst_enabled": True, "burst_mode": "TRIG", "trigger_source": "BUS"}:
            raise InstrumentError(f"{self.name} at {self.resource}: channel {channel} is not a finite "
                                  f"bus-triggered burst (read back {state}); configure it first",
                                  resource=self.resource)

    def trigger(self) -> bool:
        """``*TRG`` (one burst on each armed channel whose output is on) and ``SYST:ERR?``, in one round trip.

        Not ``*OPC?``: on the 33500B it answers only when the burst is complete. Returns False when the
        instrument ignored the trigger because a burst was still running (-211).
        """
        with self.lock:
            return self._start_bursts("*TRG")

    def _write_output(self, channel: int, on: bool) -> None:
        self.write(f"OUTP{channel} {'ON' if on else 'OFF'}")

    def _read_output(self, channel: int) -> bool:
        return self.ask_bool(f"OUTP{channel}?")


def c_width(amplitude_V: float, width_s: float, frequency_Hz: float) -> float:
    """Width programmed for a pulse of sign ``amplitude_V`` (a negative pulse is the complement)."""
    return width_s if amplitude_V > 0 else 1.0 / frequency_Hz - width_s
