"""Protocol tests of the stimulator drivers: the exact command/reply pairs of each operation, no hardware."""

from __future__ import annotations

import pytest

from instruments.drivers.keithley6221 import Keithley6221
from instruments.drivers.keysight33500b import Keysight33500B
from instruments.drivers.rigol_dg1000z import RigolDG1000Z
from instruments.errors import (
    ConnectionFailed,
    InstrumentError,
    InstrumentReportedError,
    OutOfRange,
    OutputStateUnknown,
    ReadbackMismatch,
)
from instruments.protocol import ProtocolMismatch, ReplayAdapter

OK = '+0,"No error"'


def _ks(pairs):
    adapter = ReplayAdapter(pairs, "TCPIP0::gen::5025::SOCKET")
    return Keysight33500B(adapter, name="stimulator", resource="TCPIP0::gen::5025::SOCKET"), adapter


def _ks_configure(ch: int, *, lim: str, freq: str, width: str, vpp: str, offs: str, ncyc: str,
                  back: dict[str, str] | None = None) -> list:
    b = {"func": "PULS", "freq": freq, "width": width, "vpp": vpp, "offs": offs, "hi": lim, "lo": "-" + lim,
         "limstat": "1", "mode": "TRIG", "ncyc": ncyc, "trig": "BUS", "burst": "1", **(back or {})}
    return [
        (f"SOUR{ch}:VOLT:LIM:STAT OFF", None),
        (f"OUTP{ch}:LOAD INF", None),
        (f"SOUR{ch}:FUNC PULS", None),
        (f"SOUR{ch}:BURS:STAT OFF", None),
        (f"SOUR{ch}:VOLT:LIM:HIGH {lim}", None),
        (f"SOUR{ch}:VOLT:LIM:LOW -{lim}", None),
        (f"SOUR{ch}:FREQ {freq}", None),
        (f"SOUR{ch}:FUNC:PULS:WIDT {width}", None),
        (f"SOUR{ch}:VOLT:OFFS 0", None),
        (f"SOUR{ch}:VOLT {vpp}", None),
        (f"SOUR{ch}:VOLT:OFFS {offs}", None),
        (f"SOUR{ch}:VOLT:LIM:STAT ON", None),
        (f"SOUR{ch}:BURS:MODE TRIG", None),
        (f"SOUR{ch}:BURS:NCYC {ncyc}", None),
        (f"TRIG{ch}:SOUR BUS", None),
        (f"SOUR{ch}:BURS:STAT ON", None),
        ("*OPC?", "1"),
        ("SYST:ERR?", OK),
        (f"SOUR{ch}:FUNC?", b["func"]),
        (f"SOUR{ch}:FREQ?", b["freq"]),
        (f"SOUR{ch}:FUNC:PULS:WIDT?", b["width"]),
        (f"SOUR{ch}:VOLT?", b["vpp"]),
        (f"SOUR{ch}:VOLT:OFFS?", b["offs"]),
        (f"SOUR{ch}:VOLT:LIM:HIGH?", b["hi"]),
        (f"SOUR{ch}:VOLT:LIM:LOW?", b["lo"]),
        (f"SOUR{ch}:VOLT:LIM:STAT?", b["limstat"]),
        (f"SOUR{ch}:BURS:MODE?", b["mode"]),
        (f"SOUR{ch}:BURS:NCYC?", b["ncyc"]),
        (f"TRIG{ch}:SOUR?", b["trig"]),
        (f"SOUR{ch}:BURS:STAT?", b["burst"]),
    ]


def test_keysight_configure_pulse_train_exact_protocol() -> None:
    gen, adapter = _ks(_ks_configure(1, lim="6", freq="100", width="0.001", vpp="5", offs="2.5", ncyc="5"))
    back = gen.configure_pulse_train(1, amplitude_V=5.0, pulse_width_s=1e-3, frequency_Hz=100.0,
                                     pulses_per_burst=5, limit_V=6.0)
    adapter.assert_done()
    assert back["readback"]["burst_cycles"] == 5 and back["readback"]["limit_enabled"] is True


@pytest.mark.parametrize(
    ("kwargs", "expect"),
    [
        # the largest pulse the clamp allows: 0..10 V, limit at the instrument maximum
        ({"amplitude_V": 10.0, "pulse_width_s": 16e-9, "frequency_Hz": 1e6, "pulses_per_burst": 1, "limit_V": 10.0},
         {"lim": "10", "freq": "1000000", "width": "1.6e-08", "vpp": "10", "offs": "5", "ncyc": "1"}),
        # the most cycles per burst the 33500B accepts
        ({"amplitude_V": 1e-3, "pulse_width_s": 1e-3, "frequency_Hz": 1.0, "pulses_per_burst": 100_000, "limit_V": 1e-3},
         {"lim": "0.001", "freq": "1", "width": "0.001", "vpp": "0.001", "offs": "0.0005", "ncyc": "100000"}),
        # a negative pulse on channel 2 is an inverted PULS: baseline high for the rest of the period
        ({"amplitude_V": -4.0, "pulse_width_s": 2e-4, "frequency_Hz": 1e3, "pulses_per_burst": 3, "limit_V": 5.0},
         {"lim": "5", "freq": "1000", "width": "0.0008", "vpp": "4", "offs": "-2", "ncyc": "3"}),
    ],
)
def test_keysight_configure_at_the_limits(kwargs: dict, expect: dict) -> None:
    ch = 2 if kwargs["amplitude_V"] < 0 else 1
    gen, adapter = _ks(_ks_configure(ch, **expect))
    gen.configure_pulse_train(ch, **kwargs)
    adapter.assert_done()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amplitude_V": 10.5, "pulse_width_s": 1e-3, "frequency_Hz": 100, "pulses_per_burst": 1}, "exceed limit_V"),
        ({"amplitude_V": 5, "pulse_width_s": 1e-3, "frequency_Hz": 100, "pulses_per_burst": 1, "limit_V": 4.9}, "limit_V"),
        ({"amplitude_V": 5, "pulse_width_s": 1e-3, "frequency_Hz": 100, "pulses_per_burst": 100_001}, "pulses_per_burst"),
        ({"amplitude_V": 5, "pulse_width_s": 1e-3, "frequency_Hz": 100, "pulses_per_burst": 0}, "pulses_per_burst"),
        ({"amplitude_V": 5, "pulse_width_s": 1e-3, "frequency_Hz": 100, "pulses_per_burst": 2.5}, "pulses_per_burst"),
        ({"amplitude_V": 5, "pulse_width_s": 10e-3, "frequency_Hz": 100, "pulses_per_burst": 1}, "shorter than the period"),
        ({"amplitude_V": 5, "pulse_width_s": 1e-9, "frequency_Hz": 100, "pulses_per_burst": 1}, "pulse_width_s"),
        ({"amplitude_V": 5, "pulse_width_s": 1e-3, "frequency_Hz": 31e6, "pulses_per_burst": 1}, "frequency_Hz"),
        ({"amplitude_V": float("nan"), "pulse_width_s": 1e-3, "frequency_Hz": 100, "pulses_per_burst": 1}, "amplitude_V"),
        ({"amplitude_V": 5, "pulse_width_s": 1e-3, "frequency_Hz": 100, "pulses_per_burst": 1, "limit_V": 11}, "limit_V"),
    ],
)
def test_keysight_out_of_range_sends_nothing(kwargs: dict, field: str) -> None:
    gen, adapter = _ks([])  # any command at all would be a protocol mismatch
    with pytest.raises(OutOfRange, match=field) as info:
        gen.configure_pulse_train(1, **kwargs)
    assert "TCPIP0::gen::5025::SOCKET" in str(info.value)
    assert adapter.sent == []


def test_keysight_instrument_error_is_raised_with_the_queue() -> None:
    pairs = _ks_configure(1, lim="6", freq="100", width="0.001", vpp="5", offs="2.5", ncyc="5")[:17]
    pairs += [("SYST:ERR?", '-222,"Data out of range"'), ("SYST:ERR?", '-221,"Settings conflict"'),
              ("SYST:ERR?", OK)]
    gen, adapter = _ks(pairs)
    with pytest.raises(InstrumentReportedError) as info:
        gen.configure_pulse_train(1, amplitude_V=5.0, pulse_width_s=1e-3, frequency_Hz=100.0, pulses_per_burst=5,
                                  limit_V=6.0)
    assert info.value.errors == ['-222,"Data out of range"', '-221,"Settings conflict"']
    assert "stimulator at TCPIP0::gen::5025::SOCKET" in str(info.value)
    adapter.assert_done()


def test_keysight_readback_mismatch_is_refused() -> None:
    pairs = _ks_configure(1, lim="6", freq="100", width="0.001", vpp="5", offs="2.5", ncyc="5",
                          back={"vpp": "4.5"})
    gen, _ = _ks(pairs)
    with pytest.raises(ReadbackMismatch, match="amplitude_Vpp read back as 4.5"):
        gen.configure_pulse_train(1, amplitude_V=5.0, pulse_width_s=1e-3, frequency_Hz=100.0, pulses_per_burst=5,
                                  limit_V=6.0)


def test_keysight_output_on_requires_arm_and_reads_back() -> None:
    # arming reads back the three settings of a finite bus-triggered burst
    armed = [("SOUR1:BURS:MODE?", "TRIG"), ("TRIG1:SOUR?", "BUS"), ("SOUR1:BURS:STAT?", "1")]
    gen, adapter = _ks([*armed, ("OUTP1 ON", None), ("*OPC?", "1"), ("OUTP1?", "1"), ("SYST:ERR?", OK),
                        ("*TRG;SYST:ERR?", OK)])
    with pytest.raises(InstrumentError, match="not armed"):
        gen.output_on(1)
    gen.arm(1)
    gen.output_on(1)
    gen.trigger()
    adapter.assert_done()


def test_keysight_arm_refuses_continuous_output() -> None:
    gen, _ = _ks([("SOUR1:BURS:MODE?", "TRIG"), ("TRIG1:SOUR?", "IMM"), ("SOUR1:BURS:STAT?", "1")])
    with pytest.raises(InstrumentError, match="not a finite bus-triggered burst"):
        gen.arm(1)
    gen, _ = _ks([("SOUR1:BURS:MODE?", "TRIG"), ("TRIG1:SOUR?", "BUS"), ("SOUR1:BURS:STAT?", "0")])
    with pytest.raises(InstrumentError, match="not a finite bus-triggered burst"):
        gen.arm(1)


def test_keysight_close_switches_every_output_off_and_reads_back() -> None:
    gen, adapter = _ks([("OUTP1 OFF", None), ("OUTP2 OFF", None), ("OUTP1?", "0"), ("OUTP2?", "0")])
    gen.close()
    adapter.assert_done()
    gen.close()  # idempotent: nothing more is sent


def test_keysight_output_that_stays_on_is_loud() -> None:
    gen, _ = _ks([("OUTP1 OFF", None), ("OUTP2 OFF", None), ("OUTP1?", "1"), ("OUTP2?", "0")])
    with pytest.raises(OutputStateUnknown, match="check the instrument by hand") as info:
        gen.safe_shutdown()
    assert "output 1 still reads back ON" in str(info.value)


def test_keysight_errors_drains_the_queue() -> None:
    gen, adapter = _ks([("SYST:ERR?", '-113,"Undefined header"'), ("SYST:ERR?", OK)])
    assert gen.errors() == ['-113,"Undefined header"']
    adapter.assert_done()


def test_silent_instrument_is_a_connection_failure_naming_the_resource() -> None:
    gen, _ = _ks([("*IDN?", None)])
    with pytest.raises(ConnectionFailed, match="TCPIP0::gen::5025::SOCKET"):
        gen.identify()


def test_replay_adapter_catches_a_wrong_command() -> None:
    gen, _ = _ks([("*IDN?", "x")])
    with pytest.raises(ProtocolMismatch):
        gen.write("*RST")


# ---- Keithley 6221 (PyMeasure driver underneath)
def _k6221(pairs):
    adapter = ReplayAdapter(pairs, "TCPIP0::k6221::5025::SOCKET")
    return Keithley6221(adapter, name="current_source", resource="TCPIP0::k6221::5025::SOCKET"), adapter


@pytest.mark.parametrize(
    ("waveform", "amp", "offs", "dcyc"),
    [("biphasic", "0.0004", "0", "50"), ("square", "0.0002", "0.0002", "50"), ("dc", "0.0002", "0.0002", "100")],
)
def test_keithley_configure_current_exact_protocol(waveform: str, amp: str, offs: str, dcyc: str) -> None:
    src, adapter = _k6221([
        (":SOUR:WAVE:ABOR", None),
        (":SOUR:CURR:COMP 10", None),
        (":SOUR:WAVE:FUNC SQU", None),
        (":SOUR:WAVE:FREQ 100", None),
        (":SOUR:WAVE:AMPL " + amp, None),
        (":SOUR:WAVE:OFFS " + offs, None),
        (":SOUR:WAVE:DCYC " + dcyc, None),
        (":SOUR:WAVE:DUR:CYCL 20", None),
        ("*OPC?", "1"),
        ("SYST:ERR?", OK),
        (":SOUR:CURR:COMP?", "1.000000E+01"),
        (":SOUR:WAVE:FUNC?", "SQU"),
        (":SOUR:WAVE:FREQ?", "1.000000E+02"),
        (":SOUR:WAVE:AMPL?", amp),
        (":SOUR:WAVE:OFFS?", offs),
        (":SOUR:WAVE:DCYC?", dcyc),
        (":SOUR:WAVE:DUR:CYCL?", "2.000000E+01"),
    ])
    peak = 400e-6 if waveform != "biphasic" else 400e-6
    src.configure_current(1, amplitude_A=peak, waveform=waveform, frequency_Hz=100, compliance_V=10,
                          cycles_per_burst=20)
    adapter.assert_done()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amplitude_A": 0.2}, "amplitude_A"),
        ({"compliance_V": 106}, "compliance_V"),
        ({"compliance_V": 0.05}, "compliance_V"),
        ({"frequency_Hz": 2e5}, "frequency_Hz"),
        ({"waveform": "triangle"}, "waveform"),
        ({"cycles_per_burst": 0}, "cycles_per_burst"),
    ],
)
def test_keithley_out_of_range_sends_nothing(kwargs: dict, field: str) -> None:
    src, adapter = _k6221([])
    base = {"amplitude_A": 200e-6, "waveform": "biphasic", "frequency_Hz": 100.0, "compliance_V": 10.0, "cycles_per_burst": 5}
    with pytest.raises(OutOfRange, match=field):
        src.configure_current(1, **{**base, **kwargs})
    assert adapter.sent == []


def test_keithley_arm_trigger_and_shutdown() -> None:
    src, adapter = _k6221([
        (":SOUR:WAVE:DUR:CYCL?", "2.000000E+01"), (":SOUR:WAVE:ARM", None), ("SYST:ERR?", OK),
        ("OUTPut 1", None), ("*OPC?", "1"), ("OUTPut?", "1"), ("SYST:ERR?", OK),
        (":SOUR:WAVE:INIT;:SYST:ERR?", OK),
        ("OUTPut 0", None), ("OUTPut?", "0"),
    ])
    src.arm(1)
    src.output_on(1)
    assert src.trigger() is True
    src.close()
    adapter.assert_done()


def test_a_start_ignored_during_a_running_burst_is_reported_not_raised() -> None:
    # the wave is still running: the 6221 ignores the start (-213) and the driver says so
    src, adapter = _k6221([(":SOUR:WAVE:INIT;:SYST:ERR?", '-213,"Init ignored"'), ("SYST:ERR?", OK)])
    assert src.trigger() is False
    adapter.assert_done()
    gen, adapter = _ks([("*TRG;SYST:ERR?", '-211,"Trigger ignored"'), ("SYST:ERR?", OK)])
    assert gen.trigger() is False
    adapter.assert_done()


def test_any_other_error_at_a_burst_start_raises_with_the_whole_queue() -> None:
    gen, adapter = _ks([("*TRG;SYST:ERR?", '-211,"Trigger ignored"'), ("SYST:ERR?", '-222,"Data out of range"'),
                        ("SYST:ERR?", OK)])
    with pytest.raises(InstrumentReportedError) as err:
        gen.trigger()
    assert err.value.errors == ['-211,"Trigger ignored"', '-222,"Data out of range"']
    adapter.assert_done()


# ---- Rigol DG1000Z
def test_rigol_dg_configure_pulse_train_exact_protocol() -> None:
    adapter = ReplayAdapter([
        (":OUTP2:LOAD INF", None),
        (":SOUR2:APPL:PULS 1000,4,2,0", None),
        (":SOUR2:PULS:WIDT 0.0001", None),
        (":SOUR2:BURS:MODE TRIG", None),
        (":SOUR2:BURS:NCYC 10", None),
        (":SOUR2:BURS:TRIG:SOUR MAN", None),
        (":SOUR2:BURS ON", None),
        ("*OPC?", "1"),
        ("SYST:ERR?", '0,"No error"'),
        (":SOUR2:FREQ?", "1.000000E+03"),
        (":SOUR2:PULS:WIDT?", "1.000000E-04"),
        (":SOUR2:VOLT?", "4.000000E+00"),
        (":SOUR2:VOLT:OFFS?", "2.000000E+00"),
        (":SOUR2:BURS:NCYC?", "10"),
        (":SOUR2:BURS?", "ON"), (":SOUR2:BURS:MODE?", "TRIG"), (":SOUR2:BURS:TRIG:SOUR?", "MAN"),
        (":OUTP2 ON", None), ("*OPC?", "1"), (":OUTP2?", "ON"), ("SYST:ERR?", '0,"No error"'),
        (":SOUR2:BURS:TRIG;:SYST:ERR?", '0,"No error"'),
        (":OUTP1 OFF", None), (":OUTP2 OFF", None), (":OUTP1?", "OFF"), (":OUTP2?", "OFF"),
    ], "TCPIP0::dg::5555::SOCKET")
    gen = RigolDG1000Z(adapter, name="stimulator", resource="TCPIP0::dg::5555::SOCKET")
    gen.configure_pulse_train(2, amplitude_V=4.0, pulse_width_s=100e-6, frequency_Hz=1e3, pulses_per_burst=10,
                              limit_V=5.0)
    gen.arm(2)
    gen.output_on(2)
    gen.trigger()
    gen.close()
    adapter.assert_done()


def test_rigol_dg_limit_is_enforced_in_software() -> None:
    adapter = ReplayAdapter([], "TCPIP0::dg::5555::SOCKET")
    gen = RigolDG1000Z(adapter, name="stimulator", resource="TCPIP0::dg::5555::SOCKET")
    with pytest.raises(OutOfRange, match="exceed limit_V"):
        gen.configure_pulse_train(1, amplitude_V=6.0, pulse_width_s=1e-4, frequency_Hz=1e3, pulses_per_burst=1,
                                  limit_V=5.0)
    with pytest.raises(OutOfRange, match="channel 3"):
        gen.output_off(3)
    assert adapter.sent == []


def test_recording_against_the_twin_replays_identically(twin) -> None:
    from instruments.protocol import RecordingAdapter
    from instruments.transport import open_adapter

    rec = RecordingAdapter(open_adapter(twin.resources["stimulator"], timeout_s=2.0))
    live = Keysight33500B(rec, name="stimulator", resource=twin.resources["stimulator"])
    live.configure_pulse_train(1, amplitude_V=2.0, pulse_width_s=1e-3, frequency_Hz=50, pulses_per_burst=4,
                               limit_V=3.0)
    live.close()
    pairs = [(c, r) for c, r in rec.pairs]
    assert pairs[0] == ("SOUR1:VOLT:LIM:STAT OFF", None) and ("*OPC?", "1") in pairs
    replay = ReplayAdapter(pairs)
    again = Keysight33500B(replay, name="stimulator", resource="replay")
    again.configure_pulse_train(1, amplitude_V=2.0, pulse_width_s=1e-3, frequency_Hz=50, pulses_per_burst=4,
                                limit_V=3.0)
    again.close()
    replay.assert_done()


def test_shutdown_inside_an_interrupted_query_reads_its_own_reply() -> None:
    # a signal arrives between "*OPC?" being sent and its "1" being read; the shutdown must not take that
    # "1" for the state of output 1
    gen, adapter = _ks([("*OPC?", "1"), ("OUTP1 OFF", None), ("OUTP2 OFF", None), ("OUTP1?", "0"),
                        ("OUTP2?", "0")])
    gen.write("*OPC?")
    gen._reply_pending = True  # what ask() sets between its write and its read
    gen.safe_shutdown()
    adapter.assert_done()


_REVERSE = ":SOUR:WAVE:ABOR;:SOUR:WAVE:OFFS -0.0001;:SOUR:WAVE:ARM;:SOUR:WAVE:OFFS?;:SOUR:WAVE:DUR:CYCL?;:SYST:ERR?"


def test_keithley_wave_offset_change_is_one_exchange_read_back() -> None:
    src, adapter = _k6221([(_REVERSE, "-1.000000E-04;+1.000000E+01;" + OK)])
    assert src.set_wave_offset(1, -100e-6) == pytest.approx(-100e-6)
    adapter.assert_done()
    assert src._armed[1]  # re-armed: a trigger may follow


@pytest.mark.parametrize(
    ("reply", "error", "match"),
    [
        ("-1.000000E-04;+1.000000E+01;" + '-221,"Settings conflict; amplitude + offset above 105 mA"',
         InstrumentReportedError, "reported error"),
        ("+1.000000E-04;+1.000000E+01;" + OK, ReadbackMismatch, "offset_A read back"),
        ("-1.000000E-04;+9.9E+37;" + OK, InstrumentError, "not a finite"),
        ("-1.000000E-04", InstrumentError, "answered the wave offset change"),
    ],
)
def test_keithley_wave_offset_change_refuses_what_does_not_read_back(reply: str, error: type, match: str) -> None:
    pairs = [(_REVERSE, reply)]
    if error is InstrumentReportedError:
        pairs.append(("SYST:ERR?", OK))  # the rest of the queue is drained into the report
    src, adapter = _k6221(pairs)
    with pytest.raises(error, match=match) as info:
        src.set_wave_offset(1, -100e-6)
    adapter.assert_done()
    assert not src._armed[1]  # output_on is refused until the channel is armed again
    if error is InstrumentReportedError:
        assert "105 mA" in info.value.errors[0]


def test_keithley_wave_offset_out_of_range_sends_nothing() -> None:
    src, adapter = _k6221([])
    with pytest.raises(OutOfRange, match="offset_A"):
        src.set_wave_offset(1, 0.2)
    assert adapter.sent == []



def test_a_driver_with_a_dynamic_property_is_refused_and_attributes_read_as_on_any_object() -> None:
    """The safety layer reads attributes without PyMeasure's reserved-name check; that holds only while no
    driver declares a dynamic property, so one that does is refused when it is made, before any command."""
    from pymeasure.instruments import Instrument

    from instruments.drivers import driver_class

    class Dynamic(Keysight33500B):
        level = Instrument.control("LEV?", "LEV %g", "A level whose range may be reset at run time.",
                                   dynamic=True)

    adapter = ReplayAdapter([], "TCPIP0::gen::5025::SOCKET")
    with pytest.raises(TypeError, match="dynamic properties.*level_values"):
        Dynamic(adapter, name="stimulator", resource="TCPIP0::gen::5025::SOCKET")
    assert adapter.sent == []
    for name in ("keysight33500b", "keithley6221", "rigol_dg1000z", "siglent_sdg1000x", "rigol_ds1000z",
                 "keysight_infiniivision", "siglent_sds1000xe", "tektronix_mso"):
        cls = driver_class(name)
        assert cls.__getattribute__ is object.__getattribute__, name
        inst = cls(ReplayAdapter([], "TCPIP0::x::1::SOCKET"), name="x", resource="TCPIP0::x::1::SOCKET")
        assert inst._special_names == [], name
        getattr(inst, "abandon", inst.close_connection)()


_ARB_READBACK = (":SOUR:WAVE:FUNC?;:SOUR:WAVE:ARB:POIN?;:SOUR:WAVE:FREQ?;:SOUR:WAVE:AMPL?;:SOUR:WAVE:OFFS?;"
                 ":SOUR:WAVE:DUR:CYCL?;:SOUR:CURR:COMP?")
_ARB_SETUP = ":SOUR:WAVE:FUNC ARB0;:SOUR:WAVE:FREQ 0.5;:SOUR:WAVE:AMPL 0.0002;:SOUR:WAVE:OFFS 0;:SOUR:WAVE:DUR:CYCL 1"


def _arb_transcript(points: list[float], reply: str) -> list[tuple[str, str | None]]:
    chunks = [points[k:k + 100] for k in range(0, len(points), 100)]
    data = [(f":SOUR:WAVE:ARB:{'DATA' if k == 0 else 'APP'} " + ",".join(f"{p:.7g}" for p in c), None)
            for k, c in enumerate(chunks)]
    return [(":SOUR:WAVE:ABOR", None), (":SOUR:CURR:COMP 10", None), *data, (_ARB_SETUP, None), ("*OPC?", "1"),
            ("SYST:ERR?", OK), (_ARB_READBACK, reply)]


def test_keithley_arbitrary_waveform_exact_protocol_in_chunks_of_100_points() -> None:
    """+pulses then −pulses over one 2 s polarity period: 250 points go as DATA 100, APP 100, APP 50."""
    points = [1.0, 0.0] * 63 + [-1.0, 0.0] * 62
    src, adapter = _k6221(_arb_transcript(
        points, "ARB0;250;+5.000000E-01;+2.000000E-04;+0.000000E+00;+1.000000E+00;+1.000000E+01"))
    out = src.configure_arb_current(1, points=points, amplitude_A=200e-6, frequency_Hz=0.5, compliance_V=10)
    adapter.assert_done()
    assert out["points"] == 250 and out["readback"]["function"] == "ARB0"
    assert not src._armed[1]  # a new waveform must be armed (read back as a finite burst) before output


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        ("ARB0;39;+5.000000E-01;+2.000000E-04;+0.000000E+00;+1.000000E+00;+1.000000E+01", "points read back"),
        ("ARB0;40;+5.000000E-01;+4.000000E-04;+0.000000E+00;+1.000000E+00;+1.000000E+01", "amplitude_A read back"),
        ("SQU;40;+5.000000E-01;+2.000000E-04;+0.000000E+00;+1.000000E+00;+1.000000E+01", "function read back"),
        ("ARB0;40;+5.000000E-01;+2.000000E-04;+0.000000E+00;+9.9E+37;+1.000000E+01", "cycles read back"),
        ("ARB0;40", "unexpected reply"),
    ],
)
def test_keithley_arbitrary_waveform_refuses_what_does_not_read_back(reply: str, match: str) -> None:
    points = [1.0, 0.0] * 10 + [-1.0, 0.0] * 10
    src, adapter = _k6221(_arb_transcript(points, reply))
    with pytest.raises(InstrumentError, match=match):
        src.configure_arb_current(1, points=points, amplitude_A=200e-6, frequency_Hz=0.5, compliance_V=10)
    adapter.assert_done()
    assert not src._armed[1]


@pytest.mark.parametrize(
    ("points", "kwargs", "words"),
    [
        ([1.0, 0.0] * 32_768, {}, ["points: 65536", "accepted: 2 to 65,535"]),
        ([1.0], {}, ["points: 1", "accepted: 2 to 65,535"]),
        ([1.0, 1.5, -1.0], {}, ["points[1] = 1.5", "-1 to +1"]),
        ([0.5, -0.5], {}, ["points peak at 0.5", "amplitude_A is its peak"]),
        ([1.0, float("nan")], {}, ["points[1]", "finite"]),
        ([1.0, -1.0], {"frequency_Hz": 2e5}, ["frequency_Hz=200000 Hz", "0.001 to 100000 Hz"]),
        ([1.0, -1.0], {"frequency_Hz": 1e-4}, ["frequency_Hz=0.0001 Hz", "0.001 to 100000 Hz"]),
        ([1.0, -1.0], {"amplitude_A": 0.2}, ["amplitude_A"]),
        ([1.0, -1.0], {"compliance_V": 200}, ["compliance_V"]),
    ],
)
def test_keithley_arbitrary_waveform_out_of_range_sends_nothing(points, kwargs, words) -> None:
    src, adapter = _k6221([])
    base = {"amplitude_A": 200e-6, "frequency_Hz": 0.5, "compliance_V": 10.0}
    with pytest.raises(OutOfRange) as info:
        src.configure_arb_current(1, points=points, **{**base, **kwargs})
    for word in words:
        assert word in str(info.value)
    assert adapter.sent == []
