"""Protocol tests of the oscilloscope drivers: configure, acquire, read blocks, scale."""

from __future__ import annotations

import numpy as np
import pytest

from instruments.base import ScopeChannel
from instruments.drivers.keysight_infiniivision import KeysightInfiniiVision
from instruments.drivers.rigol_ds1000z import RigolDS1000Z
from instruments.errors import BlockFormatError, OutOfRange
from instruments.protocol import ReplayAdapter

OK = '0,"No error"'
CHANNELS = [ScopeChannel(1, volts_per_div=20.0, probe_attenuation=10.0),
            ScopeChannel(2, volts_per_div=0.05, shunt_ohms=10.0)]


def _rigol_configure() -> list:
    return [
        (":STOP", None), (":TIM:SCAL 0.001", None), (":TIM:OFFS 0.004", None),
        (":CHAN1:DISP ON", None), (":CHAN1:PROB 10", None), (":CHAN1:SCAL 20", None), (":CHAN1:OFFS -0", None),
        (":CHAN2:DISP ON", None), (":CHAN2:PROB 1", None), (":CHAN2:SCAL 0.05", None), (":CHAN2:OFFS -0", None),
        (":CHAN3:DISP OFF", None), (":CHAN4:DISP OFF", None),
        (":TRIG:EDGE:SOUR CHAN1", None), (":TRIG:EDGE:SLOP POS", None), (":TRIG:EDGE:LEV 50", None),
        (":ACQ:MDEP AUTO", None), (":WAV:MODE NORM", None), (":WAV:FORM BYTE", None),
        ("*OPC?", "1"), ("SYST:ERR?", OK),
        (":TIM:SCAL?", "1.000000e-03"),
        (":CHAN1:SCAL?", "2.000000e+01"), (":CHAN1:PROB?", "10"),
        (":CHAN2:SCAL?", "5.000000e-02"), (":CHAN2:PROB?", "1"),
    ]


def test_rigol_configure_single_capture_exact_protocol() -> None:
    ch1 = np.array([127, 152, 177, 127], dtype=np.uint8)  # 0, 20, 40, 0 V (yinc 0.8 V)
    ch2 = np.array([127, 127, 227, 127], dtype=np.uint8)  # 0, 0, 0.2 V across 10 Ω -> 20 mA
    adapter = ReplayAdapter([
        *_rigol_configure(),
        (":SING", None), ("*OPC?", "1"),
        (":TRIG:STAT?", "WAIT"), (":TRIG:STAT?", "STOP"),
        (":WAV:SOUR CHAN1", None),
        (":WAV:PRE?", "0,0,4,1,1.000000e-05,-6.000000e-03,0,8.000000e-01,0,127"),
        (":WAV:DATA?", b"#9000000004" + ch1.tobytes()),
        (":WAV:SOUR CHAN2", None),
        (":WAV:PRE?", "0,0,4,1,1.000000e-05,-6.000000e-03,0,2.000000e-03,0,127"),
        (":WAV:DATA?", b"#9000000004" + ch2.tobytes()),
    ], "TCPIP0::scope::5555::SOCKET")
    scope = RigolDS1000Z(adapter, name="scope", resource="TCPIP0::scope::5555::SOCKET")
    back = scope.configure(timebase_s_per_div=1e-3, channels=CHANNELS, trigger_level_V=50.0, position_s=4e-3)
    assert back["ch1_probe"] == 10.0
    scope.single()
    scope.wait_acquired(timeout_s=2.0, poll_s=0.0)
    traces = scope.capture((1, 2))
    adapter.assert_done()
    assert traces[1].unit == "V" and traces[2].unit == "A"
    assert traces[1].values == pytest.approx([0.0, 20.0, 40.0, 0.0])
    assert traces[2].values == pytest.approx([0.0, 0.0, 0.02, 0.0])
    assert traces[1].time_s == pytest.approx([-6e-3, -5.99e-3, -5.98e-3, -5.97e-3])
    assert traces[1].timestamp.tzinfo is not None
    assert traces[2].meta["shunt_ohms"] == 10.0 and traces[1].meta["yinc"] == 0.8


def test_keysight_scope_capture_uses_its_formula() -> None:
    raw = np.array([128, 160, 96], dtype=np.uint8)
    adapter = ReplayAdapter([
        (":STOP", None), (":TIM:SCAL 0.0001", None), (":TIM:POS 0", None),
        (":CHAN1:DISP ON", None), (":CHAN1:PROB 10", None), (":CHAN1:SCAL 1", None), (":CHAN1:OFFS 1.5", None),
        (":CHAN2:DISP OFF", None), (":CHAN3:DISP OFF", None), (":CHAN4:DISP OFF", None),
        (":TRIG:EDGE:SOUR CHAN1", None), (":TRIG:EDGE:SLOP NEG", None), (":TRIG:EDGE:LEV 0", None),
        (":WAV:POIN:MODE RAW", None), (":WAV:POIN 100", None), (":WAV:FORM BYTE", None),
        ("*OPC?", "1"), ("SYST:ERR?", '+0,"No error"'),
        (":TIM:SCAL?", "+1.0E-04"), (":CHAN1:SCAL?", "+1.0E+00"), (":CHAN1:PROB?", "+10"),
        (":SING", None), ("*OPC?", "1"), (":OPER:COND?", "+8"), (":OPER:COND?", "+0"),
        (":WAV:SOUR CHAN1", None),
        (":WAV:PRE?", "+0,+0,+3,+1,+2.0E-06,-1.0E-03,+1,+3.125E-02,+1.5E+00,+128"),
        (":WAV:DATA?", b"#13" + raw.tobytes()),
    ], "TCPIP0::dsox::5025::SOCKET")
    scope = KeysightInfiniiVision(adapter, name="scope", resource="TCPIP0::dsox::5025::SOCKET")
    scope.configure(timebase_s_per_div=1e-4, channels=[ScopeChannel(1, 1.0, offset_V=1.5, probe_attenuation=10)],
                    record_points=100, trigger_slope="falling")
    scope.single()
    scope.wait_acquired(timeout_s=2.0, poll_s=0.0)
    tr = scope.capture((1,))[1]
    adapter.assert_done()
    assert tr.values == pytest.approx([1.5, 2.5, 0.5])
    assert tr.time_s == pytest.approx([-1.002e-3, -1.0e-3, -0.998e-3])


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        (b"garbage!", "not a definite-length block"),
        (b"#9000000004\x01\x02", "truncated block"),
        (b"#9000000003\x01\x02\x03", "block holds 3 samples, preamble announces 4"),
        (b"#9abcdefghi\x01", "malformed block length"),
    ],
)
def test_malformed_or_truncated_block_is_refused(block: bytes, fragment: str) -> None:
    adapter = ReplayAdapter([
        *_rigol_configure(),
        (":WAV:SOUR CHAN1", None),
        (":WAV:PRE?", "0,0,4,1,1.000000e-05,-6.000000e-03,0,8.000000e-01,0,127"),
        (":WAV:DATA?", block),
    ], "TCPIP0::scope::5555::SOCKET")
    scope = RigolDS1000Z(adapter, name="scope", resource="TCPIP0::scope::5555::SOCKET")
    scope.configure(timebase_s_per_div=1e-3, channels=CHANNELS, trigger_level_V=50.0, position_s=4e-3)
    with pytest.raises(BlockFormatError, match=fragment) as info:
        scope.capture((1,))
    assert "TCPIP0::scope::5555::SOCKET" in str(info.value)


def test_scope_refuses_bad_configuration_before_sending() -> None:
    adapter = ReplayAdapter([], "TCPIP0::scope::5555::SOCKET")
    scope = RigolDS1000Z(adapter, name="scope", resource="TCPIP0::scope::5555::SOCKET")
    with pytest.raises(OutOfRange, match="channel 5"):
        scope.configure(timebase_s_per_div=1e-3, channels=[ScopeChannel(5, 1.0)], trigger_channel=5)
    with pytest.raises(OutOfRange, match="timebase_s_per_div"):
        scope.configure(timebase_s_per_div=100.0, channels=CHANNELS)
    # 50 000 points is no DS1000Z depth; with two channels on it offers 6k, 60k, 600k, 6M, 12M
    with pytest.raises(OutOfRange, match="6000, 60000, 600000"):
        scope.configure(timebase_s_per_div=1e-3, channels=CHANNELS, record_points=50_000)
    with pytest.raises(OutOfRange, match="trigger_slope"):
        scope.configure(timebase_s_per_div=1e-3, channels=CHANNELS, trigger_slope="either")
    with pytest.raises(OutOfRange, match="not configured"):
        scope.capture((1,))
    assert adapter.sent == []


def test_tektronix_capture_signed_bytes_exact_protocol() -> None:
    from instruments.drivers.tektronix_mso import TektronixMSO

    raw = np.array([-10, 0, 15], dtype=np.int8)
    adapter = ReplayAdapter([
        ("ACQuire:STATE OFF", None), ("HORizontal:SCAle 0.001", None), ("HORizontal:RECOrdlength 3", None),
        ("HORizontal:POSition 10", None),
        ("SELect:CH2 OFF", None), ("SELect:CH3 OFF", None), ("SELect:CH4 OFF", None),
        ("SELect:CH1 ON", None), ("CH1:PRObe:GAIN 0.1", None), ("CH1:SCAle 20", None), ("CH1:OFFSet 0", None),
        ("TRIGger:A:EDGE:SOUrce CH1", None), ("TRIGger:A:EDGE:SLOpe RISe", None), ("TRIGger:A:LEVel:CH1 5", None),
        ("DATa:ENCdg RIBinary", None), ("DATa:WIDth 1", None), ("DATa:STARt 1", None), ("DATa:STOP 3", None),
        ("*OPC?", "1"), ("SYST:ERR?", '0,"No error"'),
        ("HORizontal:SCAle?", "1.0E-3"), ("CH1:SCAle?", "20.0"), ("CH1:PRObe:GAIN?", "100.0E-3"),
        ("ACQuire:STOPAfter SEQuence", None), ("ACQuire:STATE ON", None), ("*OPC?", "1"),
        ("ACQuire:STATE?", "1"), ("ACQuire:STATE?", "0"),
        ("DATa:SOUrce CH1", None),
        ("WFMOutpre:NR_PT?", "3"), ("WFMOutpre:XINCR?", "1.0E-6"), ("WFMOutpre:XZERO?", "-1.0E-6"),
        ("WFMOutpre:PT_OFF?", "0"), ("WFMOutpre:YMULT?", "0.04"), ("WFMOutpre:YZERO?", "0.5"),
        ("WFMOutpre:YOFF?", "-10"),
        ("CURVe?", b"#13" + raw.tobytes()),
    ], "TCPIP0::tek::4000::SOCKET")
    scope = TektronixMSO(adapter, name="scope", resource="TCPIP0::tek::4000::SOCKET")
    # the trigger 4 ms right of centre on a 10 ms screen sits at 10 % of the record
    back = scope.configure(timebase_s_per_div=1e-3, channels=[ScopeChannel(1, 20.0, probe_attenuation=10)],
                           trigger_level_V=5.0, position_s=4e-3, record_points=3)
    assert back["ch1_probe"] == pytest.approx(10.0)
    scope.single()
    scope.wait_acquired(timeout_s=2.0, poll_s=0.0)
    tr = scope.capture((1,))[1]
    adapter.assert_done()
    # volts = (raw - YOFf) * YMUlt + YZEro; time = XZEro + (i - PT_Off) * XINcr
    assert tr.values == pytest.approx([0.5, 0.9, 1.5])
    assert tr.time_s == pytest.approx([-1e-6, 0.0, 1e-6])


@pytest.mark.parametrize("n", [600_000, 60_000])
def test_rigol_deep_record_is_read_in_250k_windows(n: int) -> None:
    raw = (np.arange(n) % 256).astype(np.uint8).tobytes()
    windows = []
    for start in range(1, n + 1, 250_000):
        stop = min(start + 249_999, n)
        block = b"#9" + str(stop - start + 1).zfill(9).encode() + raw[start - 1:stop]
        windows += [(f":WAV:STAR {start}", None), (f":WAV:STOP {stop}", None), (":WAV:DATA?", block)]
    # after several windows the start goes back to the first point (one window started there)
    reset = [(":WAV:STAR 1", None)] if n > 250_000 else []
    chans = [ScopeChannel(1, volts_per_div=1.0), ScopeChannel(2, volts_per_div=1.0)]
    adapter = ReplayAdapter([
        (":STOP", None), (":TIM:SCAL 0.001", None), (":TIM:OFFS 0", None),
        (":CHAN1:DISP ON", None), (":CHAN1:PROB 1", None), (":CHAN1:SCAL 1", None), (":CHAN1:OFFS -0", None),
        (":CHAN2:DISP ON", None), (":CHAN2:PROB 1", None), (":CHAN2:SCAL 1", None), (":CHAN2:OFFS -0", None),
        (":CHAN3:DISP OFF", None), (":CHAN4:DISP OFF", None),
        (":TRIG:EDGE:SOUR CHAN1", None), (":TRIG:EDGE:SLOP POS", None), (":TRIG:EDGE:LEV 0", None),
        (f":ACQ:MDEP {n}", None), (":WAV:MODE RAW", None), (":WAV:FORM BYTE", None),
        ("*OPC?", "1"), ("SYST:ERR?", OK), (":TIM:SCAL?", "1e-3"), (":CHAN1:SCAL?", "1"), (":CHAN1:PROB?", "1"),
        (":CHAN2:SCAL?", "1"), (":CHAN2:PROB?", "1"),
        (":WAV:SOUR CHAN1", None),
        (":WAV:PRE?", f"0,2,{n},1,2.0e-08,-6.0e-03,0,4.0e-02,0,127"),
        *windows, *reset,
    ], "TCPIP0::scope::5555::SOCKET")
    scope = RigolDS1000Z(adapter, name="scope", resource="TCPIP0::scope::5555::SOCKET")
    scope.configure(timebase_s_per_div=1e-3, channels=chans, record_points=n)
    tr = scope.capture((1,))[1]
    adapter.assert_done()
    assert len(tr) == n
    expected = ((np.arange(n) % 256) - 127) * 0.04
    assert np.allclose(tr.values, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("timebase", "interval", "points"),
    [
        (278e-6, 0.4e-6, 60_000),   # a 1 ms pulse view: 3.3 ms screen at 0.4 µs needs 8 334 → 60k
        (1e-3, 2e-6, 6_000),        # exactly 6 000 samples
        (1e-3, 1.99e-6, 60_000),    # one more than 6 000 needs the next depth
        (0.5, 0.99e-6, 12_000_000),  # 6 s screen just above 1 MSa/s: the deepest record (with the option)
    ],
)
def test_rigol_record_length_for_a_sample_interval(timebase: float, interval: float, points: int) -> None:
    scope = RigolDS1000Z(ReplayAdapter([]), name="scope", resource="R")
    assert scope.record_points_for(timebase, interval) == points
    assert scope.sample_interval_s(timebase, points) <= interval


def test_a_scope_too_slow_or_too_shallow_is_refused_naming_its_limits() -> None:
    scope = RigolDS1000Z(ReplayAdapter([]), name="scope", resource="R")
    with pytest.raises(OutOfRange, match="5e\\+08 Sa/s"):
        scope.record_points_for(1e-9, 1e-9)  # 1 GSa/s with two channels on: above the 500 MSa/s of two
    with pytest.raises(OutOfRange, match="12000000 points"):
        scope.record_points_for(1.0, 1e-7)  # 12 s at 10 MSa/s: 120 M points
    # a bench file may declare a slower scope (an older unit, a licence-limited one)
    with pytest.raises(OutOfRange, match="1e\\+06 Sa/s and 60000 points"):
        RigolDS1000Z.record_points_for(278e-6, 0.4e-6, max_sample_rate_Sa_s=1e6, max_record_points=60_000)


def _rigol_configured(extra: list) -> tuple[RigolDS1000Z, ReplayAdapter]:
    adapter = ReplayAdapter([*_rigol_configure(), *extra], "TCPIP0::scope::5555::SOCKET")
    scope = RigolDS1000Z(adapter, name="scope", resource="TCPIP0::scope::5555::SOCKET")
    scope.configure(timebase_s_per_div=1e-3, channels=CHANNELS, trigger_level_V=50.0, position_s=4e-3)
    return scope, adapter


def test_rigol_trigger_change_sends_level_and_slope_and_reads_both_back() -> None:
    scope, adapter = _rigol_configured([
        (":TRIG:EDGE:SLOP NEG", None), (":TRIG:EDGE:LEV -25", None),
        (":TRIG:EDGE:LEV?", "-2.500000e+01"), (":TRIG:EDGE:SLOP?", "NEG"), ("SYST:ERR?", OK),
    ])
    back = scope.set_trigger(trigger_level_V=-25.0, trigger_slope="falling")
    adapter.assert_done()
    assert back == {"trigger_level_V": -25.0, "trigger_slope": "falling"}


@pytest.mark.parametrize(("level_reply", "slope_reply", "fragment"), [
    ("-1.500000e+01", "NEG", "trigger level read back as -15.0, sent -25"),  # off by half a division
    ("-2.500000e+01", "POS", "trigger slope read back as 'POS', sent 'NEG'"),
    ("-2.500000e+01", "EDGE?", "trigger slope read back as '(not a slope)'"),
])
def test_rigol_trigger_change_refuses_a_level_or_slope_that_reads_back_otherwise(
        level_reply: str, slope_reply: str, fragment: str) -> None:
    from instruments.errors import ReadbackMismatch

    scope, _ = _rigol_configured([
        (":TRIG:EDGE:SLOP NEG", None), (":TRIG:EDGE:LEV -25", None),
        (":TRIG:EDGE:LEV?", level_reply), (":TRIG:EDGE:SLOP?", slope_reply), ("SYST:ERR?", OK),
    ])
    with pytest.raises(ReadbackMismatch, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        scope.set_trigger(trigger_level_V=-25.0, trigger_slope="falling")


def test_trigger_change_within_the_level_step_passes_and_bad_requests_send_nothing() -> None:
    # the DS1000Z sets the level in steps of a fraction of a division (CH1: 20 V/div)
    scope, adapter = _rigol_configured([
        (":TRIG:EDGE:SLOP POS", None), (":TRIG:EDGE:LEV 30", None),
        (":TRIG:EDGE:LEV?", "3.040000e+01"), (":TRIG:EDGE:SLOP?", "POSITIVE"), ("SYST:ERR?", OK),
    ])
    with pytest.raises(OutOfRange, match="trigger_slope='up'"):
        scope.set_trigger(trigger_level_V=30.0, trigger_slope="up")
    with pytest.raises(OutOfRange, match="trigger_level_V"):
        scope.set_trigger(trigger_level_V=float("nan"), trigger_slope="rising")
    assert scope.set_trigger(trigger_level_V=30.0, trigger_slope="rising")["trigger_level_V"] == 30.4
    adapter.assert_done()
    fresh = RigolDS1000Z(ReplayAdapter([], "TCPIP0::scope::5555::SOCKET"), name="scope",
                         resource="TCPIP0::scope::5555::SOCKET")
    with pytest.raises(OutOfRange, match="before configure"):
        fresh.set_trigger(trigger_level_V=1.0, trigger_slope="rising")
