"""Pulses filled with a bipolar carrier: the arbitrary waveform, its exact protocol on the 33500B, and finding the
pulses (by their envelope) in a capture whose truth is known."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from instruments.base import Trace
from instruments.carrier import carrier_arb
from instruments.drivers.keysight33500b import Keysight33500B
from instruments.errors import OutOfRange
from instruments.measures import find_pulses
from instruments.protocol import ReplayAdapter

OK = '+0,"No error"'
RES = "TCPIP0::gen::5025::SOCKET"


def test_carrier_arb_holds_whole_half_cycles_and_the_pulse() -> None:
    # 1.5 kHz in 1 ms pulses every 0.2 s: 1.5 cycles, i.e. half-cycles +, −, + of 1/3 ms each
    arb = carrier_arb(pulse_width_s=1e-3, carrier_Hz=1500, period_s=0.2, max_points=65_536,
                      max_sample_rate_Sa_s=160e6)
    assert arb.sample_rate_Sa_s == 12_000 and arb.points == 2400
    assert arb.carrier_Hz == 1500 and arb.pulse_width_s == pytest.approx(1e-3) and arb.period_s == pytest.approx(0.2)
    assert list(arb.samples[:12]) == [1] * 4 + [-1] * 4 + [1] * 4
    assert not arb.samples[12:].any()


def test_a_carrier_the_memory_cannot_hold_is_refused_naming_the_limits() -> None:
    with pytest.raises(OutOfRange, match=r"65536 samples at up to 1\.6e\+08 Sa/s"):
        Keysight33500B.carrier_waveform(pulse_width_s=1e-3, carrier_Hz=2e6, frequency_Hz=5.0)
    with pytest.raises(OutOfRange, match="not a pulse train"):
        carrier_arb(pulse_width_s=2e-3, carrier_Hz=1500, period_s=1e-3, max_points=65_536, max_sample_rate_Sa_s=1e8)


def _carrier_protocol(codes: str) -> list:
    ch = 1
    return [
        (f"SOUR{ch}:VOLT:LIM:STAT OFF", None),
        (f"OUTP{ch}:LOAD INF", None),
        (f"SOUR{ch}:BURS:STAT OFF", None),
        (f"SOUR{ch}:DATA:VOL:CLE", None),
        (f"SOUR{ch}:DATA:ARB:DAC EPCARRIER,{codes}", None),
        (f"SOUR{ch}:FUNC:ARB EPCARRIER", None),
        (f"SOUR{ch}:FUNC ARB", None),
        (f"SOUR{ch}:FUNC:ARB:SRAT 32000", None),
        (f"SOUR{ch}:FUNC:ARB:FILT OFF", None),
        (f"SOUR{ch}:VOLT:LIM:HIGH 6", None),
        (f"SOUR{ch}:VOLT:LIM:LOW -6", None),
        (f"SOUR{ch}:VOLT:OFFS 0", None),
        (f"SOUR{ch}:VOLT 10", None),
        (f"SOUR{ch}:VOLT:LIM:STAT ON", None),
        (f"SOUR{ch}:BURS:MODE TRIG", None),
        (f"SOUR{ch}:BURS:NCYC 3", None),
        (f"TRIG{ch}:SOUR BUS", None),
        (f"SOUR{ch}:BURS:STAT ON", None),
        ("*OPC?", "1"),
        ("SYST:ERR?", OK),
        (f"SOUR{ch}:FUNC?", "ARB"),
        (f"SOUR{ch}:FUNC:ARB?", '"INT:\\EPCARRIER"'),
        (f"SOUR{ch}:DATA:ATTR:POIN? EPCARRIER", "32"),
        (f"SOUR{ch}:FUNC:ARB:SRAT?", "+3.20000000E+04"),
        (f"SOUR{ch}:FUNC:ARB:FILT?", "OFF"),
        (f"SOUR{ch}:VOLT?", "+1.0E+01"),
        (f"SOUR{ch}:VOLT:OFFS?", "+0.0E+00"),
        (f"SOUR{ch}:VOLT:LIM:HIGH?", "+6.0E+00"),
        (f"SOUR{ch}:VOLT:LIM:LOW?", "-6.0E+00"),
        (f"SOUR{ch}:VOLT:LIM:STAT?", "1"),
        (f"SOUR{ch}:BURS:MODE?", "TRIG"),
        (f"SOUR{ch}:BURS:NCYC?", "+3.0E+00"),
        (f"TRIG{ch}:SOUR?", "BUS"),
        (f"SOUR{ch}:BURS:STAT?", "1"),
    ]


def test_keysight_carrier_train_exact_protocol() -> None:
    # 1 kHz pulses of 0.5 ms, each two cycles of a 4 kHz carrier at ±5 V: 32 points at 32 kSa/s
    codes = ",".join(["32767"] * 4 + ["-32767"] * 4 + ["32767"] * 4 + ["-32767"] * 4 + ["0"] * 16)
    adapter = ReplayAdapter(_carrier_protocol(codes), RES)
    gen = Keysight33500B(adapter, name="stimulator", resource=RES)
    back = gen.configure_carrier_train(1, amplitude_V=5.0, pulse_width_s=0.5e-3, carrier_Hz=4000, frequency_Hz=1000,
                                       pulses_per_burst=3, limit_V=6.0)
    adapter.assert_done()
    assert back["carrier_Hz"] == 4000 and back["readback"]["arb_points"] == 32


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amplitude_V": 6.5, "limit_V": 6.0}, "exceed limit_V"),
        ({"amplitude_V": 5.0, "carrier_Hz": 2e6, "frequency_Hz": 1.0}, "65536 samples"),
        ({"amplitude_V": 5.0, "pulses_per_burst": 100_001}, "pulses_per_burst"),
    ],
)
def test_keysight_carrier_out_of_range_sends_nothing(kwargs: dict, field: str) -> None:
    adapter = ReplayAdapter([], RES)
    gen = Keysight33500B(adapter, name="stimulator", resource=RES)
    args = {"pulse_width_s": 0.5e-3, "carrier_Hz": 4000, "frequency_Hz": 1000, "pulses_per_burst": 3,
            "limit_V": 10.0, **kwargs}
    with pytest.raises(OutOfRange, match=field):
        gen.configure_carrier_train(1, **args)
    assert adapter.sent == []


def _trace(values: np.ndarray, dt: float, t0: float) -> Trace:
    return Trace(time_s=t0 + np.arange(values.size) * dt, values=values, unit="V", channel=1,
                 timestamp=datetime.now(UTC))


def test_pulses_are_found_by_their_envelope_with_their_own_carrier() -> None:
    # three 1 ms pulses every 5 ms at ±60 V; the second one's carrier is 2 kHz instead of 1.5 kHz
    dt = 1e-6
    t = np.arange(-1e-3, 14e-3, dt)
    v = np.zeros_like(t)
    for k, carrier in enumerate((1500.0, 2000.0, 1500.0)):
        start = k * 5e-3
        inside = (t >= start) & (t < start + 1e-3)
        v[inside] = 60.0 * np.where(((t[inside] - start) * 2 * carrier).astype(int) % 2 == 0, 1.0, -1.0)
    v += np.random.default_rng(1).normal(0.0, 0.3, v.size)
    pulses = find_pulses(_trace(v, dt, t[0]))
    assert len(pulses) == 3 and all(p.complete for p in pulses)
    assert [round(p.start_s * 1e3, 2) for p in pulses] == [0.0, 5.0, 10.0]
    assert [p.width_s for p in pulses] == pytest.approx([1e-3] * 3, rel=0.01)
    assert [p.half_cycles for p in pulses] == [3, 4, 3]
    assert [p.carrier_Hz for p in pulses] == pytest.approx([1500.0, 2000.0, 1500.0], rel=0.01)
    assert [p.height_V for p in pulses] == pytest.approx([60.0] * 3, rel=0.02)
    # a monophasic pulse cut by the end of the record: one half-cycle, no carrier, incomplete
    mono = np.where(t >= 13.5e-3, 10.0, 0.0)
    (last,) = find_pulses(_trace(mono, dt, t[0]))
    assert last.carrier_Hz is None and last.half_cycles == 1 and not last.complete
