"""The twin's SCPI over loopback TCP, reached through the real stack (pyvisa-py)."""

from __future__ import annotations

import threading

import pytest
import pyvisa

from instruments.twin import TwinBench
from instruments.twin.scpi import ScpiDevice, ScpiError, parse_number


@pytest.fixture
def gen(twin: TwinBench):
    rm = pyvisa.ResourceManager("@py")
    res = rm.open_resource(twin.resources["stimulator"], read_termination="\n", write_termination="\n",
                           timeout=2000)
    yield res
    res.close()


def test_long_short_forms_any_case_and_joined_commands(gen) -> None:
    gen.write("sour1:function:shape PULSE;:SOURce1:FREQuency 250;FUNC:PULS:WIDT 1e-4")
    assert gen.query("SOUR1:FUNC?") == "PULS"
    assert float(gen.query("source1:frequency?")) == 250.0
    # the path rule: "FUNC:PULS:WIDT" after ";" continued from SOURce1
    assert float(gen.query(":SOUR1:FUNC:PULS:WIDT?")) == pytest.approx(1e-4)
    assert gen.query("*OPC?;SYST:ERR?") == '1;0,"No error"'


@pytest.mark.parametrize(
    ("command", "code"),
    [("SOUR1:FROB 3", -113), ("SOUR1:FREQ 1e9", -222), ("SOUR1:FUNC TRIANGLEWAVE", -224),
     ("SOUR1:FREQ", -109), ("SOUR1:FREQ abc", -104), ("OUTP1 MAYBE", -224), ("SOUR1:VOLT 25", -222)],
)
def test_standard_error_codes(gen, command: str, code: int) -> None:
    gen.write(command)
    first = gen.query("SYST:ERR?")
    assert int(first.split(",")[0]) == code
    assert gen.query("SYST:ERR?") == '0,"No error"'


def test_voltage_limit_refuses_levels_outside_the_clamp(gen) -> None:
    gen.write("SOUR1:VOLT:LIM:HIGH 2;:SOUR1:VOLT:LIM:LOW -2;:SOUR1:VOLT 1;:SOUR1:VOLT:OFFS 0;:SOUR1:VOLT:LIM:STAT ON")
    assert gen.query("SYST:ERR?") == '0,"No error"'
    gen.write("SOUR1:VOLT 5")
    assert gen.query("SYST:ERR?").startswith("-221")
    assert float(gen.query("SOUR1:VOLT?")) == 1.0


def test_error_queue_overflow_reports_350() -> None:
    dev = ScpiDevice()
    for _ in range(30):
        dev.execute("NOPE")
    entries = [dev.execute("SYST:ERR?").decode() for _ in range(dev.queue_size)]
    assert entries[-1] == '-350,"Queue overflow"'
    assert dev.execute("SYST:ERR?") == b'0,"No error"'


def test_parse_number_min_max_def() -> None:
    assert parse_number("MAX", lo=1, hi=5) == 5
    assert parse_number("min", lo=1, hi=5) == 1
    with pytest.raises(ScpiError) as info:
        parse_number("6", lo=1, hi=5)
    assert info.value.code == -222


def test_several_clients_at_once(twin: TwinBench) -> None:
    rm = pyvisa.ResourceManager("@py")
    results: list[bool] = []

    def client(k: int) -> None:
        res = rm.open_resource(twin.resources["stimulator"], read_termination="\n", write_termination="\n",
                               timeout=3000)
        try:
            for _ in range(30):
                results.append(res.query("*IDN?").startswith("Keysight"))
        finally:
            res.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 120 and all(results)


def test_scope_block_is_an_ieee_definite_length_block(twin: TwinBench) -> None:
    rm = pyvisa.ResourceManager("@py")
    res = rm.open_resource(twin.resources["scope"], read_termination="\n", write_termination="\n", timeout=2000)
    try:
        res.write(":WAV:SOUR CHAN1;:WAV:FORM BYTE;:WAV:MODE NORM")
        data = res.query_binary_values(":WAV:DATA?", datatype="B", header_fmt="ieee", container=bytes)
        assert len(data) == 1200
        assert int(res.query(":WAV:PRE?").split(",")[2]) == 1200
    finally:
        res.close()


def test_a_channel_read_again_gives_the_same_record_until_the_next_acquisition(twin: TwinBench) -> None:
    # a real scope holds one record per channel: reading CH1, CH2 and CH1 again returns CH1's bytes twice (its
    # noise is part of the record, not drawn again at each read); a new acquisition is a new record
    rm = pyvisa.ResourceManager("@py")
    res = rm.open_resource(twin.resources["scope"], read_termination="\n", write_termination="\n", timeout=2000)

    def read(ch: int) -> bytes:
        res.write(f":WAV:SOUR CHAN{ch}")
        return res.query_binary_values(":WAV:DATA?", datatype="B", header_fmt="ieee", container=bytes)

    try:
        res.write(":WAV:FORM BYTE;:WAV:MODE NORM;:CHAN1:SCAL 0.01;:CHAN2:SCAL 0.01")
        res.write(":SING;:TFOR")
        res.query("*OPC?")
        first, other, again = read(1), read(2), read(1)
        assert first == again and len(set(first)) > 1  # noise of the record, kept
        assert other != first
        res.write(":SING;:TFOR")
        res.query("*OPC?")
        assert read(1) != first
    finally:
        res.close()


def test_an_internal_failure_becomes_an_execution_error() -> None:
    dev = ScpiDevice()

    def broken(s, a, q):
        raise ZeroDivisionError("simulated fault")

    dev.add("BROKen", broken)
    assert dev.execute("BROK;*OPC?") == b"1"
    assert dev.execute("SYST:ERR?").startswith(b'-200,"Execution error; ZeroDivisionError')


def test_resolved_headers_keep_suffixes_spellings_and_errors_apart() -> None:
    dev = ScpiDevice()
    seen: list[tuple[list[int], list[str]]] = []

    def level(s, a, q):
        seen.append((s, a))
        return "7" if q else None

    dev.add("[SOURce#:]LEVel", level)
    for _ in range(2):  # the second pass is served from the resolved-header table
        assert dev.execute("SOUR2:LEV 3;:source1:level?;LEV?") == b"7;7"
    assert seen[:3] == [([2], ["3"]), ([1], []), ([1], [])] and seen[3:] == seen[:3]
    seen[0][0].append(99)  # a handler changing its suffix list must not change the next dispatch
    dev.execute("SOUR2:LEV 4")
    assert seen[-1] == ([2], ["4"])
    for _ in range(2):
        assert dev.execute("SOUR2:LEVX 3;*OPC?") == b"1"
        assert dev.execute("SYST:ERR?").startswith(b"-113")
    dev.add("SOURce#:LEVX", lambda s, a, q: "x")  # a header added later is found
    assert dev.execute("SOUR2:LEVX?") == b"x"


def test_a_repeated_program_message_runs_as_the_first_time() -> None:
    """Messages a session sends again and again are parsed once; each run still follows the path rule,
    gets its own argument list, and reports its errors again."""
    dev = ScpiDevice()
    seen: list[tuple[list[int], list[str]]] = []

    def level(s, a, q):
        seen.append((s, list(a)))
        a.append("changed by the handler")
        return "7" if q else None

    dev.add("[SOURce#:]LEVel", level)
    dev.add("[SOURce#:]LEVel:STEP", level)
    for _ in range(3):
        assert dev.execute(":SOUR2:LEV:STEP 3;STEP?;BOGUS 1;:LEV?") == b"7;7"
        assert dev.execute("SYST:ERR?").startswith(b"-113")
    assert seen[:3] == [([2], ["3"]), ([2], []), ([1], [])]
    assert seen[3:6] == seen[:3] and seen[6:] == seen[:3]
    data = ":SOUR1:LEV " + ",".join(["1"] * 400)  # a data block: parsed every time, never kept
    dev.execute(data)
    assert data not in dev._parsed and ":SOUR2:LEV:STEP 3;STEP?;BOGUS 1;:LEV?" in dev._parsed


def test_open_adapter_switches_nagle_off_and_one_round_trip_triggers_a_burst() -> None:
    import socket

    from instruments.transport import RECEIVE_BYTES, no_delay, open_adapter, receive_in_large_reads

    with TwinBench() as twin:
        adapter = open_adapter(twin.resources["stimulator"], timeout_s=2.0)
        try:
            conn = adapter.connection
            sock = conn.visalib.sessions[conn.session].interface
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            # a 60 000-point scope block arrives in one read, not in 4 KiB pieces
            assert conn.visalib.sessions[conn.session].max_recv_size == RECEIVE_BYTES >= 60_002
            assert conn.chunk_size == RECEIVE_BYTES
            for cmd in ("FUNC PULS", "FREQ 5", "FUNC:PULS:WIDT 0.001", "VOLT 1", "VOLT:OFFS 0.5", "BURS:MODE TRIG",
                        "BURS:NCYC 5", "TRIG1:SOUR BUS", "BURS:STAT ON", "OUTP1 ON"):
                adapter.write(cmd)
            before = twin.model.deliveries
            adapter.write("*TRG;SYST:ERR?")
            assert adapter.read().strip() == '0,"No error"'  # answered once the trigger was executed
            assert twin.model.deliveries == before + 1
        finally:
            adapter.write("OUTP1 OFF")
            adapter.close()
    assert no_delay(object()) is False  # anything but a pyvisa-py socket is left alone
    assert receive_in_large_reads(object()) is False
