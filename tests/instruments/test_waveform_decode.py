"""Block parsing and preamble scaling against hand-computed values of each family's formula."""

from __future__ import annotations

import numpy as np
import pytest

from instruments.errors import BlockFormatError
from instruments.waveform import Preamble, parse_block, parse_preamble, sample_times, scale_samples


def test_parse_block_returns_payload_and_ignores_trailing_newline() -> None:
    assert bytes(parse_block(b"#15hello\n")) == b"hello"
    assert bytes(parse_block(b"#9000000003abc")) == b"abc"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "does not start"),
        (b"X15hello", "does not start"),
        (b"#0hello", "indefinite"),
        (b"#2x5hello", "malformed length"),
        (b"#210hello", "truncated: 5 of 10"),
    ],
)
def test_parse_block_rejects_malformed_blocks(data: bytes, fragment: str) -> None:
    with pytest.raises(BlockFormatError, match=fragment) as info:
        parse_block(data, resource="TCPIP0::h::1::SOCKET")
    assert "TCPIP0::h::1::SOCKET" in str(info.value)


def test_rigol_formula_and_time_axis() -> None:
    pre = parse_preamble("0,0,4,1,1.000000e-06,-2.000000e-06,0,4.000000e-02,5,127", "rigol")
    raw = np.array([132, 127, 0, 255], dtype=np.uint8)
    # volts = (raw - yorigin - yref) * yinc
    assert scale_samples(raw.tobytes(), pre) == pytest.approx([0.0, -0.2, -5.28, 4.92])
    # time = xorigin + i * xinc, not a linspace including the end point
    assert sample_times(pre) == pytest.approx([-2e-6, -1e-6, 0.0, 1e-6])


def test_keysight_formula_and_time_axis() -> None:
    pre = parse_preamble("+0,+0,+3,+1,+2.0E-06,-1.0E-03,+1,+3.125E-02,+1.5E+00,+128", "keysight")
    raw = np.array([128, 160, 96], dtype=np.uint8)
    # volts = (raw - yref) * yinc + yorigin
    assert scale_samples(raw.tobytes(), pre) == pytest.approx([1.5, 2.5, 0.5])
    # time = (i - xref) * xinc + xorigin
    assert sample_times(pre) == pytest.approx([-1.002e-3, -1.0e-3, -0.998e-3])


def test_tektronix_formula_signed_bytes() -> None:
    pre = parse_preamble("NR_PT=3;XINCR=1e-6;XZERO=0;PT_OFF=0;YMULT=0.04;YZERO=0.5;YOFF=-10", "tektronix")
    raw = np.array([-10, 0, 15], dtype=np.int8)
    # volts = (raw - YOFf) * YMUlt + YZEro
    assert scale_samples(raw.tobytes(), pre, signed=True) == pytest.approx([0.5, 0.9, 1.5])


@pytest.mark.parametrize("reply", ["1,2,3", "0,0,x,1,1,1,1,1,1,1", ""])
def test_malformed_preamble_is_a_block_format_error(reply: str) -> None:
    with pytest.raises(BlockFormatError, match="preamble"):
        parse_preamble(reply, "rigol", resource="scope")


def test_scaling_is_linear_in_raw_code() -> None:
    pre = Preamble("rigol", 256, 1e-6, 0.0, 0.0, 0.01, 0.0, 127.0)
    raw = np.arange(256, dtype=np.uint8)
    volts = scale_samples(raw.tobytes(), pre)
    assert np.allclose(np.diff(volts), 0.01)
    assert volts[127] == 0.0
