"""Captures keep the scope's samples as it sent them: its integer codes and the preamble that scales them.

The codes in a stored file are compared with the bytes on the wire: the payload of a scripted ``:WAV:DATA?`` (or
``CURVe?``) reply for each scope family, and, after a session on the twin, the scope's record read again over a
raw PyVISA connection. Reading a file back gives the float samples the session measured, bit for bit. Samples that
no preamble reproduces (changed after the capture, or not from a scope) are stored as float64, as before.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from instruments.base import ScopeChannel, Trace
from instruments.drivers.scope_base import make_trace
from instruments.waveform import Preamble, encode_samples, physical_samples
from toolkit.delivery import run_session
from toolkit.delivery.captures import CaptureStore, load_capture, read_capture
from toolkit.delivery.live import measure_capture
from toolkit.errors import StoreError

from ._support import FAST, Subjects, short

#: (family, signed bytes, preamble of the voltage channel, of the current channel); the current is read across a
#: 10-ohm shunt. Values as the instruments report them (yinc, offsets and references of each family's formula).
FAMILIES = [
    ("rigol", False, Preamble("rigol", 0, 4.0e-8, -2.0e-4, 0.0, 0.8, 0.0, 127.0),
     Preamble("rigol", 0, 4.0e-8, -2.0e-4, 0.0, 2.0e-3, 0.0, 127.0)),
    ("keysight", False, Preamble("keysight", 0, 4.0e-8, -2.0e-4, 0.0, 0.3125, 1.5, 128.0),
     Preamble("keysight", 0, 4.0e-8, -2.0e-4, 0.0, 7.8125e-4, 0.0, 128.0)),
    ("tektronix", True, Preamble("tektronix", 0, 4.0e-8, -2.0e-4, 600.0, 0.4, 0.5, -10.0),
     Preamble("tektronix", 0, 4.0e-8, -2.0e-4, 600.0, 1.6e-3, 0.0, 0.0)),
]


def _trace(pre: Preamble, payload: bytes, channel: ScopeChannel, signed: bool):
    pre = Preamble(pre.family, len(payload), pre.xinc, pre.xorigin, pre.xref, pre.yinc, pre.yorigin, pre.yref)
    return make_trace(payload, pre, channel, signed=signed)


@pytest.mark.parametrize(("family", "signed", "pre_v", "pre_i"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_a_scope_capture_is_stored_as_the_bytes_it_sent_and_read_back_bit_for_bit(tmp_path, family, signed,
                                                                                  pre_v, pre_i) -> None:
    rng = np.random.default_rng(3)
    n = 60_000  # an electroporation pulse record
    dtype = np.int8 if signed else np.uint8
    wire_v = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, n, dtype=dtype).tobytes()
    wire_i = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, n, dtype=dtype).tobytes()
    v = _trace(pre_v, wire_v, ScopeChannel(1, 20.0, probe_attenuation=10.0), signed)
    i = _trace(pre_i, wire_i, ScopeChannel(2, 0.05, shunt_ohms=10.0), signed)
    store = CaptureStore(tmp_path, "S-001", 1, 1)
    saved = store.save("live", v.time_s, v.values, i.values,
                       {"voltage_meta": dict(v.meta), "current_meta": dict(i.meta), "scale": 1.0})
    with np.load(saved.absolute, allow_pickle=False) as npz:
        names = set(npz.files)
        # what the scope sent, byte for byte, and no float copy of it
        assert npz["volts_code"].tobytes() == wire_v and npz["amps_code"].tobytes() == wire_i
        meta = json.loads(str(npz["meta"]))
    assert names == {"volts_code", "amps_code", "meta"}
    assert set(meta["stored_as"]) == {"volts_V", "amps_A", "time_s"} and "shunt_ohms" in meta["stored_as"]["amps_A"]
    back = load_capture(saved.absolute, sha256=saved.sha256)
    for key, want in (("time_s", v.time_s), ("volts_V", v.values), ("amps_A", i.values)):
        assert back[key].dtype == np.float64 and np.array_equal(back[key], want), key
    assert back["meta"]["scale"] == 1.0
    # a byte per sample instead of the eight of float64 (three arrays of them before)
    assert saved.absolute.stat().st_size < 2 * n + 10_000


def test_samples_no_preamble_reproduces_are_stored_as_float64(tmp_path) -> None:
    payload = np.arange(256, dtype=np.uint8).tobytes()
    v = _trace(FAMILIES[0][2], payload, ScopeChannel(1, 20.0, probe_attenuation=10.0), False)
    store = CaptureStore(tmp_path, "S-001", 1, 1)
    changed = v.values * 1.001  # not what the scope sent: kept as given
    cases = {
        "changed": (v.time_s, changed, {"voltage_meta": dict(v.meta)}),
        "no preamble": (v.time_s, v.values, {}),
        "preamble without yinc": (v.time_s, v.values, {"voltage_meta": {k: x for k, x in v.meta.items()
                                                                         if k != "yinc"}}),
        "other times": (v.time_s + 1e-9, v.values, {"voltage_meta": dict(v.meta)}),
    }
    for what, (t, values, meta) in cases.items():
        saved = store.save("live", t, values, np.zeros_like(values), meta)
        with np.load(saved.absolute, allow_pickle=False) as npz:
            files = set(npz.files)
        back = load_capture(saved.absolute)
        assert np.array_equal(back["volts_V"], values) and np.array_equal(back["time_s"], t), what
        if what == "other times":  # the samples are the scope's; the times are not its own
            assert {"volts_code", "time_s"} <= files, (what, files)
        elif what == "changed":  # the samples are not the scope's; the times are its own
            assert "volts_V" in files and not {"volts_code", "time_s"} & files, (what, files)
        else:
            assert {"volts_V", "time_s"} <= files and "volts_code" not in files, (what, files)
    # the store writes how the samples are kept; a caller cannot
    with pytest.raises(ValueError, match="stored_as"):
        store.save("live", v.time_s, v.values, v.values, {"stored_as": {}})
    with pytest.raises(ValueError, match="volts_code"):
        store.save("live", v.time_s, v.values, v.values, {}, arrays={"volts_code": v.values})


def test_encoding_is_exact_or_refused() -> None:
    pre = Preamble("keysight", 5, 1e-6, 0.0, 0.0, 0.3125, 1.5, 128.0)
    raw = np.array([0, 1, 128, 200, 255], dtype=np.uint8)
    values = physical_samples(raw, pre)
    assert np.array_equal(encode_samples(values, pre), raw)
    # half a step off, a NaN, an empty record, float32 samples: no codes
    for bad in (values + 0.5 * pre.yinc, np.r_[values[:-1], np.nan], values[:0], values.astype(np.float32)):
        assert encode_samples(bad, pre) is None
    # 16-bit words when the codes do not fit a byte
    words = np.array([0, 1000, 65535], dtype=np.uint16)
    assert encode_samples(physical_samples(words, pre), pre).dtype == np.uint16


def test_a_coded_file_that_lost_its_preamble_or_is_cut_short_is_refused_naming_it(tmp_path) -> None:
    payload = np.arange(256, dtype=np.uint8).tobytes()
    v = _trace(FAMILIES[0][2], payload, ScopeChannel(1, 20.0, probe_attenuation=10.0), False)
    store = CaptureStore(tmp_path, "S-001", 1, 1)
    saved = store.save("live", v.time_s, v.values, v.values * 0, {"voltage_meta": dict(v.meta)})
    with np.load(saved.absolute, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    del meta["voltage_meta"]
    arrays["meta"] = np.array(json.dumps(meta))
    lost = tmp_path / "lost.npz"
    np.savez(lost, **arrays)
    with pytest.raises(StoreError, match=r"lost\.npz.*preamble"):
        read_capture(lost)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(saved.absolute.read_bytes()[:300])
    with pytest.raises(StoreError, match=r"cut\.npz.*cannot be read"):
        load_capture(cut)
    with pytest.raises(StoreError, match=r"missing\.npz"):
        read_capture(tmp_path / "missing.npz")


def test_a_session_stores_the_scope_record_as_it_is_on_the_wire(demo_study, demo_store, twin) -> None:
    import pyvisa

    # at each live capture, the record the scope holds, read again over a raw connection of its own
    scope = pyvisa.ResourceManager("@py").open_resource(twin.resources["scope"], read_termination="\n",
                                                        write_termination="\n", timeout=5000)
    on_wire: list[tuple[bytes, bytes]] = []

    def reread(event) -> None:
        if event.phase == "capture" and event.measures:
            blocks = []
            for ch in (1, 2):  # twin.yaml: the electrode voltage on CH1, the current on CH2
                scope.write(f":WAV:SOUR CHAN{ch}")
                blocks.append(scope.query_binary_values(":WAV:DATA?", datatype="B", header_fmt="ieee",
                                                        container=bytes))
            on_wire.append((blocks[0], blocks[1]))

    try:
        rec = run_session(short(demo_study, 2.0), Subjects(demo_store).add("E-001", "EP"), 1, store=demo_store,
                          twin=twin, settings=FAST, progress=reread)
    finally:
        scope.close()
    assert rec.outcome == "completed", rec.summary()
    stored = [(demo_store.resolve_path(p), digest) for p, digest in rec.treatments[0].waveforms]
    assert len(stored) >= 4
    for path, _ in stored:
        with np.load(path, allow_pickle=False) as npz:
            assert {"volts_code", "amps_code"} <= set(npz.files) and "volts_V" not in npz.files, path.name
            assert npz["volts_code"].dtype == np.uint8
        # 60 000 points a channel: ~120 kB, where float64 took 1.4 MB
        assert path.stat().st_size < 200_000, (path.name, path.stat().st_size)
    live = [(p, d) for p, d in stored if "live" in p.name]
    assert len(on_wire) == len(live) >= 2
    for (path, digest), (wire_v, wire_i) in zip(live, on_wire, strict=True):
        with np.load(path, allow_pickle=False) as npz:
            assert npz["volts_code"].tobytes() == wire_v and npz["amps_code"].tobytes() == wire_i, path.name
        # read back, they are the samples the session measured: its measures of them, made again, are the recorded
        capture = load_capture(path, sha256=digest)
        again = measure_capture(_trace_of(capture, "volts_V"), _trace_of(capture, "amps_A"), drive="voltage")
        # (as the record keeps them: through JSON, which gives every float back exactly)
        assert json.loads(json.dumps(again.as_dict(), default=str)) == capture["meta"]["measures"], path.name


def _trace_of(capture: dict, key: str) -> Trace:
    unit, where = ("V", "voltage_meta") if key == "volts_V" else ("A", "current_meta")
    return Trace(time_s=capture["time_s"], values=capture[key], unit=unit, channel=1,
                 timestamp=datetime.now(UTC), meta=capture["meta"][where])
