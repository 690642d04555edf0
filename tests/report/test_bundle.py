"""The report bundle: index, figures, tables, datasets, manifest, closed-loop check, tolerance, CLI."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from toolkit.errors import DataError
from toolkit.report import build_report
from toolkit.report.bundle import closed_loop_check, resolve_study
from toolkit.report.export import BROWSER_ENV
from toolkit.report.manifest import file_sha256


@pytest.fixture
def small(sample_study, data_root):
    """A study holding only ADSL, the results and truth: quick to build."""
    target = data_root / "SMALL-1"
    (target / "analysis").mkdir(parents=True)
    shutil.copy(sample_study / "analysis" / "adsl.csv", target / "analysis")
    shutil.copytree(sample_study / "analysis" / "results", target / "analysis" / "results")
    shutil.copy(sample_study / "truth.json", target)
    return target


def test_build_without_static_export(built) -> None:
    study, bundle = built
    root = study / "report"
    assert bundle.root == root and bundle.index.is_file()
    assert {p.name for p in root.iterdir()} == {"index.html", "manifest.json", "figures", "tables", "datasets"}
    kinds = {f.number: f.title for f in bundle.figures}
    assert "14.1.1" in kinds and kinds["14.1.1"] == "CONSORT flow diagram"
    assert any("Kaplan" in t for t in kinds.values()) and any("adverse" in t for t in kinds.values())
    assert any("waveform" in t.lower() for t in kinds.values()) and any("Photographs" in t for t in kinds.values())
    for item in bundle.figures:
        assert item.files == [f"figures/figure_{item.number.replace('.', '_')}.html"]
    numbers = [t.number for t in bundle.tables]
    assert numbers[:2] == ["14.1.1", "16.2.1"] and "14.3.1.1" in numbers
    for t in bundle.tables:
        assert sorted(p.rsplit(".", 1)[1] for p in t.files) == ["csv", "docx", "rtf"]
    assert (root / "datasets" / "adsl.xpt").read_bytes() == (study / "analysis" / "adsl.xpt").read_bytes()
    assert (root / "datasets" / "variable_metadata.csv").is_file()
    index = bundle.index.read_text(encoding="utf-8")
    for item in bundle.figures + bundle.tables:
        assert f"href='{item.files[0]}'" in index
    assert "not requested" in index
    assert index.count("class=\"plotly-graph-div\"") == len(bundle.figures)


def test_manifest_checksums_and_versions(small) -> None:
    bundle = build_report(small.name, static=False)
    manifest = json.loads(bundle.manifest.read_text())
    files = {f["path"]: f for f in manifest["files"]}
    on_disk = {p.relative_to(bundle.root).as_posix() for p in bundle.root.rglob("*") if p.is_file()}
    assert set(files) == on_disk - {"manifest.json"}
    for rel, entry in files.items():
        assert entry["sha256"] == file_sha256(bundle.root / rel)
        assert entry["bytes"] == (bundle.root / rel).stat().st_size
    import numpy
    import plotly

    sw = manifest["software"]
    assert sw["numpy"] == numpy.__version__ and sw["plotly"] == plotly.__version__
    assert {"python", "pandas", "statsmodels", "kaleido", "opencv", "toolkit"} <= set(sw)
    assert bundle.verify() == []
    assert len(files) > 8
    (bundle.root / "tables" / "table_14_1_1.csv").write_text("tampered")
    (bundle.root / "extra.txt").write_text("x")
    assert sorted(bundle.verify()) == ["changed: tables/table_14_1_1.csv", "not in manifest: extra.txt"]


def test_closed_loop_check_reports_coverage(built) -> None:
    study, bundle = built
    cl = bundle.closed_loop
    truth = json.loads((study / "truth.json").read_text())["effects"]
    assert len(cl) == len(truth) and cl["estimate"].notna().all()
    results = pd.read_csv(study / "analysis" / "results" / "contrasts.csv")
    for row in cl.itertuples():
        ref = results[(results["endpoint"] == row.endpoint) & (results["contrast"] == row.contrast)].iloc[0]
        assert row.estimate == pytest.approx(ref["estimate"])
        assert row.covered == (ref["ci_low"] <= row.truth <= ref["ci_high"])
    assert "Closed-loop check" in bundle.index.read_text()
    assert (bundle.root / "tables" / "closed_loop_check.csv").is_file()


def test_closed_loop_matching_rules() -> None:
    truth = pd.DataFrame([{"endpoint": "WRK", "contrast": "EP vs Sham", "visit": "", "value": -1.0},
                          {"endpoint": "WRK", "contrast": "MC - Sham", "visit": "", "value": 5.0},
                          {"endpoint": "LIFT", "contrast": "EP - Sham", "visit": "", "value": 0.0}])
    res = {"mmrm": pd.DataFrame({"PARAMCD": ["WRK", "WRK", "WRK"], "visit": ["W4", "W12", "W12"],
                                 "contrast": ["EP - Sham", "EP - Sham", "MC - Sham"],
                                 "estimate": [-0.2, -0.9, -0.5], "ci_low": [-1, -1.5, -1], "ci_high": [0.6, -0.3, 0]})}
    cl = closed_loop_check(truth, res).set_index("contrast")
    assert cl.loc["EP vs Sham", "estimate"] == -0.9 and cl.loc["EP vs Sham", "visit"] == "W12"
    assert cl.loc["EP vs Sham", "covered"] is True or cl.loc["EP vs Sham", "covered"] == True  # noqa: E712
    assert not cl.loc["MC - Sham", "covered"]
    assert cl.loc["EP - Sham", "covered"] is None  # LIFT has no estimate


def test_empty_study_builds_and_lists_what_is_missing(data_root) -> None:
    (data_root / "EMPTY-1").mkdir()
    bundle = build_report("EMPTY-1")
    assert bundle.figures == [] and bundle.tables == []
    text = " ".join(bundle.missing)
    for needle in ("adsl", "efficacy", "adtte", "adverse events", "photo panels", "waveform", "datasets"):
        assert needle in text, needle
    index = bundle.index.read_text()
    assert index.count("not available:") >= 7
    assert "no truth.json" in index
    assert bundle.verify() == []


def test_malformed_inputs_are_reported_not_fatal(small) -> None:
    study = small
    (study / "analysis" / "adtte.csv").write_text("USUBJID,TRT01A,AVAL,CNSR\nS1,EP,-3,0\n")
    (study / "analysis" / "results" / "broken.json").write_text("{not json")
    (study / "truth.json").write_text('{"effects": [{"value": 1}]}')
    bundle = build_report(study.name, static=False)
    text = "\n".join(bundle.missing)
    assert "negative times" in text and "broken.json: not valid JSON" in text
    assert bundle.closed_loop is None and "effects[0] needs 'contrast'" in text
    assert any(f.number == "14.1.1" for f in bundle.figures)  # the rest of the report is there


def test_a_damaged_capture_is_named_and_the_others_drawn(small) -> None:
    import numpy as np

    folder = small / "waveforms" / "S-001" / "1" / "delivery-1"
    folder.mkdir(parents=True)
    t = np.arange(400) * 1e-5
    for name in ("00001-live.npz", "00002-live.npz"):
        np.savez(folder / name, time_s=t, volts_V=np.where(t < 1e-3, 70.0, 0.0), amps_A=np.zeros_like(t),
                 meta=np.array("{}"))
    cut = folder / "00001-live.npz"
    cut.write_bytes(cut.read_bytes()[:200])  # cut short: not a zip any more
    bundle = build_report(small.name, static=False)
    text = "\n".join(bundle.missing)
    assert "00001-live.npz cannot be read as a capture" in text, text
    assert sum("waveform" in f.title.lower() for f in bundle.figures) == 1


def test_a_dataset_without_rows_in_xpt_is_read(small) -> None:
    """A study without adverse events, exported as XPT only: the report reads the empty dataset (columns, no
    rows) instead of failing the whole build."""
    from toolkit.report.inputs import read_table
    from toolkit.store.xpt import write_xpt

    empty = pd.DataFrame({"USUBJID": pd.Series([], dtype=str), "TRTA": pd.Series([], dtype=str),
                          "AEDECOD": pd.Series([], dtype=str), "AESEQ": pd.Series([], dtype=float)})
    path = write_xpt(empty, small / "analysis" / "adae.xpt", name="ADAE", label="Adverse Events Analysis",
                     labels={"USUBJID": "Subject", "TRTA": "Actual Treatment", "AEDECOD": "Term", "AESEQ": "Seq"})
    frame = read_table(path)
    assert frame.empty and list(frame.columns) == ["USUBJID", "TRTA", "AEDECOD", "AESEQ"]
    bundle = build_report(small.name, static=False)
    assert any(f.number == "14.1.1" for f in bundle.figures)


def test_rebuild_replaces_the_report_atomically(small) -> None:
    study = small
    first = build_report(study.name, static=False)
    marker = first.root / "figures" / "stale.html"
    marker.write_text("old")
    build_report(study.name, static=False)
    assert not marker.exists()
    assert not [p for p in study.iterdir() if p.name.startswith(".report")]


def test_static_build_without_browser_still_writes_html(small, monkeypatch) -> None:
    study = small
    monkeypatch.setenv(BROWSER_ENV, "/nonexistent/chromium")
    bundle = build_report(study.name, static=True)
    assert not bundle.static_export and bundle.figures
    assert "/nonexistent/chromium" in bundle.static_message and "apt-get install chromium" in bundle.static_message
    assert "apt-get install chromium" in bundle.index.read_text()
    assert not list((bundle.root / "figures").glob("*.png"))


@pytest.mark.browser
def test_static_build_with_browser_writes_png_svg_pdf(small) -> None:
    from .conftest import chromium

    if chromium() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    bundle = build_report(small.name)
    assert bundle.static_export and bundle.static_message is None
    consort = bundle.figures[0]
    assert [p.rsplit(".", 1)[1] for p in consort.files] == ["html", "png", "svg", "pdf"]
    manifest = {f["path"] for f in json.loads(bundle.manifest.read_text())["files"]}
    assert set(consort.files) <= manifest


def test_resolve_study_forms(data_root, tmp_path) -> None:
    (data_root / "S-1").mkdir()
    assert resolve_study("S-1") == ("S-1", data_root / "S-1")
    assert resolve_study(data_root / "S-1") == ("S-1", data_root / "S-1")
    with pytest.raises(DataError, match="no data for study 'S-2'"):
        resolve_study("S-2")
    with pytest.raises(DataError, match="not a study id"):
        resolve_study("bad id!")


def test_cli_report(small, capsys) -> None:
    from toolkit.cli import main

    with pytest.raises(SystemExit) as done:
        main(["report", "--study", small.name, "--no-static"])
    out = capsys.readouterr()
    assert done.value.code in (0, None), out.err
    assert "2 figures, 4 tables" in out.out and "closed-loop check: 6 of 6" in out.out
    assert "not available: adverse events" in out.out
    with pytest.raises(SystemExit) as failed:
        main(["report", "--study", "NO-SUCH"])
    err = capsys.readouterr().err
    assert failed.value.code == 2 and "no data for study 'NO-SUCH'" in err and "Traceback" not in err


def test_lsmeans_results_become_a_figure_and_table(small) -> None:
    ls = pd.DataFrame({"treatment": ["EP", "EP", "MC", "MC"], "visit": ["W4", "W8"] * 2,
                       "estimate": [-1.0, -2.0, -0.5, -1.0], "se": [0.2] * 4, "df": [50.0] * 4,
                       "ci_low": [-1.4, -2.4, -0.9, -1.4], "ci_high": [-0.6, -1.6, -0.1, -0.6]})
    ls.to_csv(small / "analysis" / "results" / "mmrm_lsmeans.csv", index=False)
    bundle = build_report(small.name, static=False)
    titles = {f.title: f for f in bundle.figures}
    assert "Model-based LS means by visit and arm" in titles
    assert any(t.title == "Mmrm lsmeans" for t in bundle.tables)
    csv = next(t for t in bundle.tables if t.title == "Mmrm lsmeans").files[2]
    body = pd.read_csv(bundle.root / csv)
    assert body["Estimate (SE)"].tolist()[:2] == ["-1.00 (0.200)", "-2.00 (0.200)"]
