"""Bench files: the shipped ones validate; mistakes are BenchFileErrors naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from instruments.bench import ConnectedBench, default_bench_path, load_bench
from instruments.errors import BenchFileError, OutOfRange


@pytest.mark.parametrize("name", ["twin", "example-lab"])
def test_shipped_bench_files_validate(name: str) -> None:
    bench = load_bench(default_bench_path(name))
    assert bench.amplifier_gain == 20.0
    assert bench.probe_attenuation == 10.0
    assert bench.shunt_ohms == 10.0
    assert bench.dummy_load_ohms == 1000.0
    roles = dict(bench.instruments())
    assert set(roles) == {"stimulator", "scope", "current_source"}


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bench.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def _base_text() -> str:
    return default_bench_path("twin").read_text(encoding="utf-8")


def test_yaml_error_names_file_and_line(tmp_path: Path) -> None:
    p = _write(tmp_path, _base_text().replace("gain: 20", "gain: [20"))
    with pytest.raises(BenchFileError, match=r"not valid YAML at line \d+") as info:
        load_bench(p)
    assert str(p) in str(info.value)


def test_unknown_driver_lists_accepted_drivers(tmp_path: Path) -> None:
    p = _write(tmp_path, _base_text().replace("driver: keysight33500b", "driver: acme9000"))
    with pytest.raises(BenchFileError) as info:
        load_bench(p)
    text = str(info.value)
    assert "stimulator" in text and "acme9000" in text and "keysight33500b" in text and "rigol_dg1000z" in text


def test_scope_driver_cannot_be_a_stimulator(tmp_path: Path) -> None:
    p = _write(tmp_path, _base_text().replace("driver: rigol_ds1000z", "driver: keithley6221"))
    with pytest.raises(BenchFileError, match="scope: unknown oscilloscope driver 'keithley6221'"):
        load_bench(p)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("dummy_load_ohms: 1000", "dummy_load_ohms: -5", "dummy_load_ohms"),
        ("gain: 20", "gain: 0", "amplifier.gain"),
        ("calibration_due: 2099-12-31", "calibration_due: someday", "calibration_due"),
        ("resource: TCPIP0::127.0.0.1::5025::SOCKET", "resource: localhost", "stimulator.resource"),
        ("idn: 'RIGOL.*DS1\\d\\d4Z'", "idn: 'RIGOL(('", "scope.idn"),
        ("{channel: 2, probe_attenuation: 1, shunt_ohms: 10}", "{channel: 1, shunt_ohms: 10}", "channels"),
        ("{channel: 2, probe_attenuation: 1, shunt_ohms: 10}", "{channel: 2}", "shunt_ohms"),
        ("dummy_load_ohms: 1000", "dummy_load_ohms: 1000\ncolour: blue", "colour"),
    ],
)
def test_invalid_fields_are_named(tmp_path: Path, old: str, new: str, field: str) -> None:
    text = _base_text()
    assert old in text
    p = _write(tmp_path, text.replace(old, new))
    with pytest.raises(BenchFileError) as info:
        load_bench(p)
    assert field in str(info.value)
    assert str(p) in str(info.value)


def test_missing_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(BenchFileError, match="not found"):
        load_bench(tmp_path / "nope.yaml")
    with pytest.raises(BenchFileError, match="mapping"):
        load_bench(_write(tmp_path, "- a\n- b\n"))


def test_generator_amplitude_for_maps_through_the_amplifier_and_refuses_too_much() -> None:
    bench = load_bench(default_bench_path("twin"))
    cb = ConnectedBench(bench=bench, stimulator=None, scope=None)  # type: ignore[arg-type]
    assert cb.generator_amplitude_for(200.0) == pytest.approx(10.0)
    assert cb.generator_amplitude_for(-40.0) == pytest.approx(-2.0)
    with pytest.raises(OutOfRange, match="max_output_V"):
        cb.generator_amplitude_for(450.0)
