"""Protocol tests of the Siglent drivers (SDG1000X/SDG2000X generators, SDS1000X-E/SDS2000X scopes).

The command/reply pairs follow the SDG Programming Guide PG02-E05C and the SDS1000/SDS2000X Programming Guide
EN02E (reply formats as printed there: ``C1:BSWV WVTP,PULSE,FRQ,100HZ,…``, ``C1:OUTP ON,LOAD,HZ,PLRT,NOR``,
``C1:WF DAT2,#9<length><codes>`` and two line feeds). Most run on a replaying adapter; the last ones run the
drivers through pyvisa-py over a loopback socket to a scripted instrument.
"""

from __future__ import annotations

import numpy as np
import pytest

from instruments.base import ScopeChannel
from instruments.drivers import driver_class, open_driver
from instruments.drivers.siglent_sdg import SiglentSDG1000X, SiglentSDG2000X
from instruments.drivers.siglent_sds import SiglentSDS1000XE, SiglentSDS2000X, timebase_steps
from instruments.errors import (
    BlockFormatError,
    InstrumentError,
    OutOfRange,
    OutputStateUnknown,
    ReadbackMismatch,
)
from instruments.protocol import ReplayAdapter

from ._scripted import ScriptedInstrument

RES = "TCPIP0::sdg::5025::SOCKET"


def _sdg(pairs, cls=SiglentSDG1000X):
    adapter = ReplayAdapter(pairs, RES)
    return cls(adapter, name="stimulator", resource=RES), adapter


def _bswv(ch: int, *, freq: str, width: str, amp: str, ofst: str, wave: str = "PULSE") -> str:
    return (f"C{ch}:BSWV WVTP,{wave},FRQ,{freq}HZ,PERI,1S,AMP,{amp}V,AMPVRMS,1Vrms,OFST,{ofst}V,HLEV,1V,LLEV,0V,"
            f"DUTY,10,WIDTH,{width},RISE,1.68e-08S,FALL,1.68e-08S,DLY,0")


def _btwv(ch: int, *, time: str, trsr: str = "MAN", mode: str = "NCYC", carrier: str = "PULSE") -> str:
    return (f"C{ch}:BTWV STATE,ON,TRSR,{trsr},TRMD,OFF,EDGE,RISE,TIME,{time},DLAY,2.4e-07S,GATE_NCYC,{mode},"
            f"CARR,WVTP,{carrier},FRQ,100HZ,AMP,5V,OFST,2.5V,WIDTH,0.001")


def _sdg_configure(ch: int, *, freq: str, width: str, vpp: str, centre: str, ncyc: str,
                   back_bswv: str | None = None, back_btwv: str | None = None) -> list:
    c = f"C{ch}"
    return [
        (f"{c}:OUTP LOAD,HZ", None),
        (f"{c}:BSWV WVTP,PULSE", None),
        (f"{c}:BSWV FRQ,{freq}", None),
        (f"{c}:BSWV WIDTH,{width}", None),
        (f"{c}:BSWV OFST,0", None),
        (f"{c}:BSWV AMP,{vpp}", None),
        (f"{c}:BSWV OFST,{centre}", None),
        (f"{c}:BTWV STATE,ON", None),
        (f"{c}:BTWV GATE_NCYC,NCYC", None),
        (f"{c}:BTWV TRSR,MAN", None),
        (f"{c}:BTWV TIME,{ncyc}", None),
        ("*OPC?", "1"),
        (f"{c}:BSWV?", back_bswv or _bswv(ch, freq=freq, width=width + "S", amp=vpp, ofst=centre)),
        (f"{c}:BTWV?", back_btwv or _btwv(ch, time=ncyc)),
    ]


@pytest.mark.parametrize(
    ("cls", "ch", "kwargs", "expect"),
    [
        # the largest pulse: 0..10 V at the shortest width and the highest pulse rate of an SDG1000X
        (SiglentSDG1000X, 1,
         {"amplitude_V": 10.0, "pulse_width_s": 32.6e-9, "frequency_Hz": 25e6, "pulses_per_burst": 1, "limit_V": 10},
         {"freq": "25000000", "width": "3.26e-08", "vpp": "10", "centre": "5", "ncyc": "1"}),
        # the most cycles per burst, the smallest amplitude
        (SiglentSDG1000X, 2,
         {"amplitude_V": 2e-3, "pulse_width_s": 1e-3, "frequency_Hz": 1.0, "pulses_per_burst": 1_000_000,
          "limit_V": 1e-2},
         {"freq": "1", "width": "0.001", "vpp": "0.002", "centre": "0.001", "ncyc": "1000000"}),
        # a negative pulse: baseline high for the rest of the period; an SDG2000X's shorter pulse
        (SiglentSDG2000X, 1,
         {"amplitude_V": -4.0, "pulse_width_s": 2e-4, "frequency_Hz": 1e3, "pulses_per_burst": 3, "limit_V": 5},
         {"freq": "1000", "width": "0.0008", "vpp": "4", "centre": "-2", "ncyc": "3"}),
    ],
)
def test_sdg_configure_pulse_train_at_the_limits(cls, ch: int, kwargs: dict, expect: dict) -> None:
    gen, adapter = _sdg(_sdg_configure(ch, **expect), cls)
    back = gen.configure_pulse_train(ch, **kwargs)
    adapter.assert_done()
    assert back["readback"]["burst_cycles"] == float(expect["ncyc"])
    assert back["readback"]["trigger_source"] == "MAN"


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (SiglentSDG1000X, {"amplitude_V": 10.5}, "exceed limit_V"),
        (SiglentSDG1000X, {"amplitude_V": 5.0, "limit_V": 4.9}, "limit_V"),
        (SiglentSDG1000X, {"amplitude_V": 1e-3}, "2 mV minimum"),
        (SiglentSDG1000X, {"pulses_per_burst": 1_000_001}, "pulses_per_burst"),
        (SiglentSDG1000X, {"pulses_per_burst": 0}, "pulses_per_burst"),
        (SiglentSDG1000X, {"pulse_width_s": 30e-9, "frequency_Hz": 1e6}, "pulse_width_s"),
        (SiglentSDG2000X, {"pulse_width_s": 16e-9, "frequency_Hz": 1e6}, "pulse_width_s"),
        (SiglentSDG1000X, {"frequency_Hz": 26e6, "pulse_width_s": 35e-9}, "frequency_Hz"),
        (SiglentSDG1000X, {"pulse_width_s": 10e-3}, "shorter than the period"),
        (SiglentSDG1000X, {"amplitude_V": float("nan")}, "amplitude_V"),
        (SiglentSDG1000X, {"limit_V": 11.0}, "limit_V"),
    ],
)
def test_sdg_out_of_range_sends_nothing(cls, kwargs: dict, field: str) -> None:
    gen, adapter = _sdg([], cls)
    base = {"amplitude_V": 5.0, "pulse_width_s": 1e-3, "frequency_Hz": 100.0, "pulses_per_burst": 5}
    with pytest.raises(OutOfRange, match=field) as info:
        gen.configure_pulse_train(1, **{**base, **kwargs})
    assert RES in str(info.value)
    assert adapter.sent == []


@pytest.mark.parametrize(
    ("back_bswv", "back_btwv", "message"),
    [
        # the generator limits an amplitude silently: only the read-back shows it
        (_bswv(1, freq="100", width="0.001S", amp="4.5", ofst="2.5"), None, "amplitude_Vpp read back as 4.5"),
        (_bswv(1, freq="100", width="0.002S", amp="5", ofst="2.5"), None, "pulse_width_s read back as 0.002"),
        (_bswv(1, freq="100", width="0.001S", amp="5", ofst="2.5", wave="SQUARE"), None, "wave read back as 'SQUARE'"),
        (None, _btwv(1, time="INF"), "burst_cycles read back as inf"),
        (None, _btwv(1, time="5", trsr="INT"), "trigger_source read back as 'INT'"),
    ],
)
def test_sdg_readback_mismatch_is_refused(back_bswv, back_btwv, message: str) -> None:
    pairs = _sdg_configure(1, freq="100", width="0.001", vpp="5", centre="2.5", ncyc="5", back_bswv=back_bswv,
                           back_btwv=back_btwv)
    gen, _ = _sdg(pairs)
    with pytest.raises(ReadbackMismatch, match=message):
        gen.configure_pulse_train(1, amplitude_V=5.0, pulse_width_s=1e-3, frequency_Hz=100.0, pulses_per_burst=5,
                                  limit_V=6.0)


def test_sdg_arm_output_trigger_and_close() -> None:
    gen, adapter = _sdg([
        ("C1:BTWV?", _btwv(1, time="5")),
        ("C1:OUTP ON", None), ("*OPC?", "1"), ("C1:OUTP?", "C1:OUTP ON,LOAD,HZ,PLRT,NOR"),
        ("C1:BTWV MTRIG", None), ("*OPC?", "1"),
        ("C1:OUTP OFF", None), ("C2:OUTP OFF", None),
        ("C1:OUTP?", "C1:OUTP OFF,LOAD,HZ,PLRT,NOR"), ("C2:OUTP?", "C2:OUTP OFF,LOAD,HZ,PLRT,NOR"),
    ])
    with pytest.raises(InstrumentError, match="not armed"):
        gen.output_on(1)  # refused before anything is sent
    gen.arm(1)
    gen.output_on(1)
    assert gen.trigger() is True
    gen.close()
    adapter.assert_done()
    gen.close()  # idempotent


def test_sdg_arm_refuses_an_endless_or_internally_triggered_burst() -> None:
    for reply in (_btwv(1, time="INF"), _btwv(1, time="5", trsr="INT"), "C1:BTWV STATE,OFF"):
        gen, _ = _sdg([("C1:BTWV?", reply)])
        with pytest.raises(InstrumentError, match="not a finite manually triggered burst"):
            gen.arm(1)


def test_sdg_output_that_stays_on_is_loud() -> None:
    gen, _ = _sdg([("C1:OUTP OFF", None), ("C2:OUTP OFF", None), ("C1:OUTP?", "C1:OUTP ON,LOAD,HZ,PLRT,NOR"),
                   ("C2:OUTP?", "C2:OUTP OFF,LOAD,HZ,PLRT,NOR")])
    with pytest.raises(OutputStateUnknown, match="check the instrument by hand") as info:
        gen.safe_shutdown()
    assert "output 1 still reads back ON" in str(info.value)


def test_sdg_switches_off_when_the_session_fails_midway() -> None:
    # an error inside the with-block (here: a reply that cannot be parsed) still ends with both outputs off
    gen, adapter = _sdg([
        ("C1:BTWV?", _btwv(1, time="5")),
        ("C1:OUTP ON", None), ("*OPC?", "1"), ("C1:OUTP?", "C1:OUTP ON,LOAD,HZ,PLRT,NOR"),
        ("C1:BSWV?", "C1:BSWV WVTP,PULSE,FRQ"),
        ("C1:OUTP OFF", None), ("C2:OUTP OFF", None),
        ("C1:OUTP?", "C1:OUTP OFF,LOAD,HZ,PLRT,NOR"), ("C2:OUTP?", "C2:OUTP OFF,LOAD,HZ,PLRT,NOR"),
    ])
    with pytest.raises(InstrumentError, match="KEY,value pairs"), gen:
        gen.arm(1)
        gen.output_on(1)
        gen._basic_wave(1)
    adapter.assert_done()


def test_sdg_microcurrent_needs_the_series_resistor() -> None:
    gen, adapter = _sdg([])
    with pytest.raises(InstrumentError, match="series_resistor_ohms"):
        gen.configure_current(1, amplitude_A=2e-4, waveform="square", frequency_Hz=10, compliance_V=9,
                              cycles_per_burst=10)
    assert adapter.sent == []


# ---- SDS oscilloscopes
SRES = "TCPIP0::sds::5025::SOCKET"


def _sds(pairs, cls=SiglentSDS1000XE):
    adapter = ReplayAdapter(pairs, SRES)
    return cls(adapter, name="scope", resource=SRES), adapter


CHANNELS = (ScopeChannel(1, 10.0, probe_attenuation=10.0, label="electrode"),
            ScopeChannel(2, 0.05, probe_attenuation=1.0, offset_V=0.1, label="shunt", shunt_ohms=10.0))


def _sds_configure(*, depth: str | None = "7K", back: dict[str, str] | None = None) -> list:
    b = {"tdiv": "1.00E-04S", "trdl": "4.50E-04S", "v1": "1.00E+01V", "a1": "10", "v2": "5.00E-02V", "a2": "1",
         **(back or {})}
    pairs = [
        ("CHDR OFF", None), ("STOP", None), ("TDIV 0.0001", None), ("TRDL 0.00045", None),
        ("C1:TRA ON", None), ("C1:ATTN 10", None), ("C1:VDIV 10", None), ("C1:OFST 0", None),
        ("C2:TRA ON", None), ("C2:ATTN 1", None), ("C2:VDIV 0.05", None), ("C2:OFST -0.1", None),
        ("C3:TRA OFF", None), ("C4:TRA OFF", None),
        ("TRSE EDGE,SR,C1,HT,OFF", None), ("C1:TRSL NEG", None), ("C1:TRLV -21", None),
    ]
    if depth is not None:
        pairs.append((f"MSIZ {depth}", None))
    return [*pairs, ("WFSU SP,0,NP,0,FP,0", None), ("*OPC?", "1"),
            ("TDIV?", b["tdiv"]), ("TRDL?", b["trdl"]),
            ("C1:VDIV?", b["v1"]), ("C1:ATTN?", b["a1"]), ("C2:VDIV?", b["v2"]), ("C2:ATTN?", b["a2"])]


def test_sds_configure_exact_protocol() -> None:
    scope, adapter = _sds(_sds_configure(depth="14K"))
    back = scope.configure(timebase_s_per_div=1e-4, channels=CHANNELS, trigger_channel=1, trigger_level_V=-21.0,
                           position_s=4.5e-4, record_points=7000, trigger_slope="falling")
    adapter.assert_done()
    assert back == {"timebase_s_per_div": 1e-4, "position_s": 4.5e-4, "ch1_volts_per_div": 10.0, "ch1_probe": 10.0,
                    "ch2_volts_per_div": 0.05, "ch2_probe": 1.0}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timebase_s_per_div": 2.78e-4}, "1-2-5 steps"),
        ({"timebase_s_per_div": 200.0}, "timebase_s_per_div"),
        ({"record_points": 6000}, "record_points=6000"),
        ({"record_points": 14_000}, "with 2 channels"),
        ({"trigger_slope": "either"}, "trigger_slope"),
        ({"trigger_channel": 3}, "trigger_channel"),
        ({"channels": (ScopeChannel(1, 1.0, probe_attenuation=3.0),)}, "probe_attenuation=3"),
        ({"channels": (ScopeChannel(5, 1.0),), "trigger_channel": 5}, "does not exist"),
    ],
)
def test_sds_refuses_bad_configuration_before_sending(kwargs: dict, field: str) -> None:
    scope, adapter = _sds([])
    base = {"timebase_s_per_div": 1e-4, "channels": CHANNELS, "trigger_channel": 1, "record_points": 7000}
    with pytest.raises(OutOfRange, match=field):
        scope.configure(**{**base, **kwargs})
    assert adapter.sent == []


def test_sds_readback_mismatch_is_refused() -> None:
    # the scope set a coarser scale than asked (its steps): the capture would not be what was planned
    scope, _ = _sds(_sds_configure(depth=None, back={"v2": "1.00E-01V"}))
    with pytest.raises(ReadbackMismatch, match="CH2 scale read back as 0.1"):
        scope.configure(timebase_s_per_div=1e-4, channels=CHANNELS, trigger_channel=1, trigger_level_V=-21.0,
                        position_s=4.5e-4, trigger_slope="falling")


def _wf(ch: int, codes: list[int]) -> bytes:
    data = np.array(codes, dtype=np.int8).tobytes()
    return f"C{ch}:WF DAT2,#9{len(data):09d}".encode("ascii") + data + b"\n"  # the replay adds the second \n


def test_sds_capture_scales_codes_with_the_guides_formula() -> None:
    # volts = code × VDIV/25 − OFST; time = −TDIV × 14/2 + TRDL + i/SARA (numbers worked out by hand)
    codes1 = [0, 25, -25, 127, -128]
    codes2 = [0, 5, 10, -5, 1]
    scope, adapter = _sds([
        *_sds_configure(depth=None),
        ("C1:VDIV?", "1.00E+01V"), ("C1:OFST?", "0.00E+00V"), ("TDIV?", "1.00E-04S"), ("TRDL?", "4.50E-04S"),
        ("SARA?", "1.00E+06Sa/s"), ("C1:WF? DAT2", _wf(1, codes1)),
        ("C2:VDIV?", "5.00E-02V"), ("C2:OFST?", "-1.00E-01V"), ("TDIV?", "1.00E-04S"), ("TRDL?", "4.50E-04S"),
        ("SARA?", "1.00E+06Sa/s"), ("C2:WF? DAT2", _wf(2, codes2)),
    ])
    scope.configure(timebase_s_per_div=1e-4, channels=CHANNELS, trigger_channel=1, trigger_level_V=-21.0,
                    position_s=4.5e-4, trigger_slope="falling")
    traces = scope.capture((1, 2))
    adapter.assert_done()
    np.testing.assert_allclose(traces[1].values, [0.0, 10.0, -10.0, 50.8, -51.2])
    # the shunt channel in amperes: (code × 0.002 + 0.1 V) / 10 Ω
    np.testing.assert_allclose(traces[2].values, [0.01, 0.011, 0.012, 0.009, 0.0102])
    np.testing.assert_allclose(traces[1].time_s, [-2.5e-4, -2.49e-4, -2.48e-4, -2.47e-4, -2.46e-4])
    assert traces[2].unit == "A"


@pytest.mark.parametrize(
    ("reply", "fragment"),
    [
        (b"C1:WF DAT2,#9000000009\x00\x01\x02\n", "truncated block"),
        (b"C1:WF ALL,#9000000001\x00\n", "answered"),
        (b"C1:WF DAT2,#0\x00\n", "malformed block header"),
        (b"C1:WF DAT2,#9000000001\x00\x00\n", "not followed by"),
    ],
)
def test_sds_malformed_waveform_is_refused(reply: bytes, fragment: str) -> None:
    scope, _ = _sds([
        *_sds_configure(depth=None),
        ("C1:VDIV?", "1.00E+01V"), ("C1:OFST?", "0V"), ("TDIV?", "1.00E-04S"), ("TRDL?", "0S"),
        ("SARA?", "1.00E+06Sa/s"), ("C1:WF? DAT2", reply),
    ])
    scope.configure(timebase_s_per_div=1e-4, channels=CHANNELS, trigger_channel=1, trigger_level_V=-21.0,
                    position_s=4.5e-4, trigger_slope="falling")
    with pytest.raises((BlockFormatError, InstrumentError), match=fragment):
        scope.capture((1,))


def test_sds_single_acquisition_and_forced_trigger() -> None:
    scope, adapter = _sds([("INR?", "8192"), ("TRMD SINGLE", None), ("*OPC?", "1"), ("INR?", "8192"),
                           ("FRTR", None), ("INR?", "INR 8193")])
    scope.single()
    assert scope.acquired() is False
    scope.force_trigger()
    assert scope.acquired() is True
    adapter.assert_done()


def test_sds_record_lengths_and_sampling_limits() -> None:
    assert SiglentSDS1000XE.record_depths(1) == (14_000, 140_000, 1_400_000, 14_000_000)
    assert SiglentSDS1000XE.record_depths(2) == (7_000, 70_000, 700_000, 7_000_000)
    assert SiglentSDS2000X.record_depths(2)[-1] == 70_000_000
    # 14 divisions of 100 µs sampled every 1 µs: 1400 points → the 7K depth
    assert SiglentSDS1000XE.record_points_for(1e-4, 1e-6) == 7_000
    with pytest.raises(OutOfRange, match="at most 5e\\+08 Sa/s"):
        SiglentSDS1000XE.record_points_for(1e-6, 1e-9)
    steps = timebase_steps()
    assert steps[0] == 1e-9 and steps[-1] == 100.0 and 2e-4 in steps and len(steps) == 34


def test_siglent_drivers_are_registered() -> None:
    assert driver_class("siglent_sdg1000x") is SiglentSDG1000X
    assert driver_class("siglent_sdg2000x") is SiglentSDG2000X
    assert driver_class("siglent_sds1000xe") is SiglentSDS1000XE
    assert driver_class("siglent_sds2000x") is SiglentSDS2000X


# ---- through pyvisa-py over loopback TCP
def test_sdg_over_pyvisa_py_configures_fires_and_switches_off() -> None:
    inst = ScriptedInstrument([
        ("*IDN?", "Siglent Technologies,SDG1062X,SDG1XCAQ3R0001,1.01.01.33R1B6"),
        *_sdg_configure(1, freq="100", width="0.001", vpp="5", centre="2.5", ncyc="5"),
        ("C1:BTWV?", _btwv(1, time="5")),
        ("C1:OUTP ON", None), ("*OPC?", "1"), ("C1:OUTP?", "C1:OUTP ON,LOAD,HZ,PLRT,NOR"),
        ("C1:BTWV MTRIG", None), ("*OPC?", "1"),
        ("C1:OUTP OFF", None), ("C2:OUTP OFF", None),
        ("C1:OUTP?", "C1:OUTP OFF,LOAD,HZ,PLRT,NOR"), ("C2:OUTP?", "C2:OUTP OFF,LOAD,HZ,PLRT,NOR"),
    ])
    gen = open_driver("siglent_sdg1000x", inst.resource, timeout_s=2.0, name="stimulator")
    try:
        assert gen.identify().startswith("Siglent Technologies,SDG1062X")
        gen.configure_pulse_train(1, amplitude_V=5.0, pulse_width_s=1e-3, frequency_Hz=100.0, pulses_per_burst=5,
                                  limit_V=6.0)
        gen.arm(1)
        gen.output_on(1)
        assert gen.trigger() is True
    finally:
        gen.close()
    inst.check()


def test_sds_over_pyvisa_py_reads_a_waveform_block() -> None:
    codes = list(range(-100, 100, 4))
    inst = ScriptedInstrument([
        *_sds_configure(depth=None),
        ("C1:VDIV?", "1.00E+01V"), ("C1:OFST?", "-2.00E+01V"), ("TDIV?", "1.00E-04S"), ("TRDL?", "4.50E-04S"),
        ("SARA?", "5.00E+08Sa/s"), ("C1:WF? DAT2", _wf(1, codes) + b"\n"),
    ])
    scope = open_driver("siglent_sds1000xe", inst.resource, timeout_s=2.0, name="scope")
    try:
        scope.configure(timebase_s_per_div=1e-4, channels=CHANNELS, trigger_channel=1, trigger_level_V=-21.0,
                        position_s=4.5e-4, trigger_slope="falling")
        trace = scope.capture((1,))[1]
    finally:
        scope.close()
    inst.check()
    np.testing.assert_allclose(trace.values, np.array(codes) * 0.4 + 20.0)
    assert trace.sample_interval_s == pytest.approx(2e-9)


def test_siglent_bench_file_plans_views_on_the_scopes_own_steps() -> None:
    # the shipped Siglent bench: the demo's EP arm is planned on 1-2-5 timebases and SDS depths, so what
    # `study validate --bench` accepts is what the scope will accept when the session configures it
    from pathlib import Path

    from instruments.bench import default_bench_path, load_bench
    from toolkit.delivery import DeliverySettings
    from toolkit.delivery.deliverable import plan_arm
    from toolkit.study import load_study

    bench = load_bench(default_bench_path("siglent-lab"))
    assert (bench.stimulator.driver, bench.scope.driver) == ("siglent_sdg1000x", "siglent_sds1000xe")
    study = load_study(Path(__file__).resolve().parents[2] / "studies" / "epmc-demo")
    plan = plan_arm(study, "EP", bench, DeliverySettings())
    for view in ("pulse", "train"):
        timebase = plan.scope[f"{view}_timebase_s"]
        assert timebase in timebase_steps()
        assert int(plan.scope[f"{view}_points"]) in SiglentSDS1000XE.record_depths(2)
        # the record still covers the view's window after the trigger
        assert plan.scope[f"{view}_after_trigger_s"] >= plan.scope[f"{view}_window_s"]
