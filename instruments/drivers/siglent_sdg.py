"""Siglent SDG1000X and SDG2000X function generators as :class:`~instruments.base.Stimulator` objects.

Command set from the SDG Programming Guide PG02-E05C (the SDG1000X and SDG2000X columns of its tables):

* basic wave (3.4): ``C<n>:BSWV WVTP,PULSE``, ``FRQ,<Hz>``, ``AMP,<Vpp>``, ``OFST,<V>``, ``WIDTH,<s>``; the query
  ``C<n>:BSWV?`` answers every parameter with its unit (``FRQ,100HZ``, ``AMP,2V``, ``WIDTH,0.001S``);
* burst (3.7): ``C<n>:BTWV STATE,ON`` first, then ``GATE_NCYC,NCYC``, ``TRSR,MAN`` and ``TIME,<cycles>``;
  ``C<n>:BTWV MTRIG`` sends the manual trigger; ``C<n>:BTWV?`` answers the burst and then its carrier
  (``…,TIME,5,…,GATE_NCYC,NCYC,CARR,WVTP,PULSE,…``);
* output (3.3): ``C<n>:OUTP ON|OFF``, ``C<n>:OUTP LOAD,HZ`` (high impedance: the set levels are the open-circuit
  levels the amplifier sees); the query answers ``C1:OUTP ON,LOAD,HZ,PLRT,NOR``;
* ``*OPC?`` answers ``1`` once the previous commands are executed (3.1.2).

The guide documents no error queue (no ``SYST:ERR?``), and the generator limits some settings silently (an
amplitude above its range is set to the maximum: the emulator github.com/erikbryant/siglent_emulator models
this), so every setting is read back and compared, and :meth:`errors` has nothing to drain. Nor is there an
instrument-side voltage clamp in the SDG1000X/SDG2000X columns: ``limit_V`` is enforced here, before anything
is sent, and by the read-back of the levels. A manual trigger during a running burst cannot be told apart
from an accepted one (no error is reported): the delivery's pacing never sends one before the previous burst
has ended.

Limits (datasheets; checked before sending): high-impedance levels up to ±10 V (20 Vpp), pulses up to 25 MHz
with a width of at least 32.6 ns (SDG1000X) or 16.3 ns (SDG2000X), at most 1 000 000 cycles per burst.
"""

from __future__ import annotations

from typing import Any

from instruments.drivers.siglent_replies import key_values, leading_number, split_carrier
from instruments.drivers.stimulator_base import StimulatorDriver
from instruments.errors import GarbledReply, InstrumentError

__all__ = ["SiglentSDG1000X", "SiglentSDG2000X"]

MAX_V = 10.0  # open circuit (high-impedance load)
MAX_CYCLES = 1_000_000


class SiglentSDG1000X(StimulatorDriver):
    """Siglent SDG1000X two-channel generator (SDG1032X/SDG1062X) with the stimulator safety layer."""

    output_channels = (1, 2)
    #: the programming guide documents no ``*TST?``
    has_self_test = False
    #: highest pulse frequency (Hz) and shortest pulse width (s)
    max_pulse_Hz = 25e6
    min_width_s = 32.6e-9

    def configure_pulse_train(self, channel: int, *, amplitude_V: float, pulse_width_s: float,
                              frequency_Hz: float, pulses_per_burst: int, offset_V: float = 0.0,
                              limit_V: float | None = None) -> dict[str, Any]:
        """See :meth:`instruments.base.Stimulator.configure_pulse_train`.

        A negative ``amplitude_V`` is a pulse below the baseline: the wave's high level is the baseline for the
        rest of the period (its programmed width is the period minus the pulse).
        """
        ch = self._channel(channel)
        limit, amp, off, freq, width, n, vpp, centre = self._check_pulse_train(
            amplitude_V=amplitude_V, pulse_width_s=pulse_width_s, frequency_Hz=frequency_Hz,
            pulses_per_burst=pulses_per_burst, offset_V=offset_V, limit_V=limit_V, max_V=MAX_V,
            max_Hz=self.max_pulse_Hz, min_width_s=self.min_width_s, min_amplitude_V=2e-3, max_cycles=MAX_CYCLES)
        programmed_width = width if amp > 0 else 1.0 / freq - width
        c = f"C{ch}"
        with self.lock:
            self.write(f"{c}:OUTP LOAD,HZ")
            self.write(f"{c}:BSWV WVTP,PULSE")
            self.write(f"{c}:BSWV FRQ,{freq:.10g}")
            self.write(f"{c}:BSWV WIDTH,{programmed_width:.10g}")
            # centred first, so no intermediate amplitude/offset pair leaves the ±10 V range
            self.write(f"{c}:BSWV OFST,0")
            self.write(f"{c}:BSWV AMP,{vpp:.10g}")
            self.write(f"{c}:BSWV OFST,{centre:.10g}")
            self.write(f"{c}:BTWV STATE,ON")
            self.write(f"{c}:BTWV GATE_NCYC,NCYC")
            self.write(f"{c}:BTWV TRSR,MAN")
            self.write(f"{c}:BTWV TIME,{n:d}")
            self._finish_configure(ch, "configure_pulse_train")
            wave = self._basic_wave(ch)
            burst = self._burst(ch)
            back = {**wave, **burst}
            for key, value in (("wave", "PULSE"), ("burst_state", "ON"), ("burst_mode", "NCYC"),
                               ("trigger_source", "MAN"), ("carrier", "PULSE")):
                self.compare(key, value, back[key])
            for key, value in (("frequency_Hz", freq), ("pulse_width_s", programmed_width), ("amplitude_Vpp", vpp),
                               ("offset_V", centre), ("burst_cycles", n)):
                self.compare(key, value, back[key], rel=1e-6, abs_=1e-9)
        return {"channel": ch, "amplitude_V": amp, "offset_V": off, "pulse_width_s": width,
                "frequency_Hz": freq, "pulses_per_burst": n, "limit_V": limit, "readback": back}


    # ---- read-back
    def _basic_wave(self, ch: int) -> dict[str, Any]:
        """``C<n>:BSWV?`` as the settings it holds (numbers without their units)."""
        reply = self.ask(f"C{ch}:BSWV?")
        kv = key_values(reply, what=f"C{ch}:BSWV?", resource=self.resource)
        try:
            return {"wave": kv["WVTP"].upper(),
                    "frequency_Hz": self._number(kv["FRQ"], f"C{ch}:BSWV? FRQ"),
                    "pulse_width_s": self._number(kv["WIDTH"], f"C{ch}:BSWV? WIDTH"),
                    "amplitude_Vpp": self._number(kv["AMP"], f"C{ch}:BSWV? AMP"),
                    "offset_V": self._number(kv["OFST"], f"C{ch}:BSWV? OFST")}
        except KeyError as exc:
            raise GarbledReply(f"{self.name} at {self.resource}: C{ch}:BSWV? lacks {exc} in {reply[:100]!r}",
                               resource=self.resource) from None

    def _burst(self, ch: int) -> dict[str, Any]:
        """``C<n>:BTWV?`` as the burst settings and the carrier's wave type."""
        reply = self.ask(f"C{ch}:BTWV?")
        head, carrier = split_carrier(reply)
        kv = key_values(head, what=f"C{ch}:BTWV?", resource=self.resource)
        state = kv.get("STATE", "").upper()
        if state != "ON":
            # with the burst off the instrument answers its state alone
            return {"burst_state": state or "?", "burst_mode": "", "trigger_source": "", "burst_cycles": 0,
                    "carrier": ""}
        cwave = key_values(carrier, what=f"C{ch}:BTWV? CARR", resource=self.resource) if carrier else {}
        time = kv.get("TIME", "")
        try:
            cycles = float("inf") if time.upper() == "INF" else self._number(time, f"C{ch}:BTWV? TIME")
            return {"burst_state": state, "burst_mode": kv["GATE_NCYC"].upper(),
                    "trigger_source": kv["TRSR"].upper(), "burst_cycles": cycles,
                    "carrier": cwave.get("WVTP", "").upper()}
        except KeyError as exc:
            raise GarbledReply(f"{self.name} at {self.resource}: C{ch}:BTWV? lacks {exc} in {reply[:100]!r}",
                               resource=self.resource) from None

    def _number(self, text: str, what: str) -> float:
        return leading_number(text, what=what, resource=f"{self.name} at {self.resource}")

    def _check_armed(self, channel: int) -> None:
        b = self._burst(channel)
        state = (b["burst_state"], b["burst_mode"], b["trigger_source"])
        finite = 1 <= b["burst_cycles"] <= MAX_CYCLES
        if state != ("ON", "NCYC", "MAN") or not finite:
            raise InstrumentError(f"{self.name} at {self.resource}: channel {channel} is not a finite manually "
                                  f"triggered burst (read back {state}, {b['burst_cycles']:g} cycles); configure "
                                  "it first", resource=self.resource)

    def errors(self) -> list[str]:
        """Nothing to drain: the SDG documents no error queue (settings are verified by reading them back)."""
        return []

    def trigger(self) -> bool:
        """A manual trigger (``C<n>:BTWV MTRIG``) to each armed channel, dated by the ``*OPC?`` that follows.

        Returns True: the SDG does not report a trigger it ignored (see the module docstring); False only when
        no channel is armed.
        """
        with self.lock:
            armed = [ch for ch in self.output_channels if self._armed.get(ch)]
            if not armed:
                self.opc()
                return False
            for ch in armed:
                self.write(f"C{ch}:BTWV MTRIG")
            self.opc()
            return True

    def _write_output(self, channel: int, on: bool) -> None:
        self.write(f"C{channel}:OUTP {'ON' if on else 'OFF'}")

    def _read_output(self, channel: int) -> bool:
        reply = self.ask(f"C{channel}:OUTP?")
        body = reply.strip()
        if " " in body.split(",", 1)[0]:
            body = body.split(" ", 1)[1]
        state = body.split(",", 1)[0].strip().upper()
        if state not in ("ON", "OFF"):
            raise GarbledReply(f"{self.name} at {self.resource} answered C{channel}:OUTP? with {reply[:60]!r}, "
                               "expected ON or OFF first", resource=self.resource)
        return state == "ON"


class SiglentSDG2000X(SiglentSDG1000X):
    """Siglent SDG2000X two-channel generator (SDG2042X/SDG2082X/SDG2122X): the same commands, shorter pulses."""

    min_width_s = 16.3e-9
