"""A photo whose analysis failed QC gives no endpoint value, does not count as a measured photo, and its findings
are reported as not done, with the reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from toolkit.store import open_store
from toolkit.store.adam import _photo_visits, endpoint_values
from toolkit.store.datasets import StudyRecords
from toolkit.store.sdtm import xf_domain

from .conftest import enrol_eligible

FOLD = pd.DataFrame({"region": ["nasolabial_l", "nasolabial_r"], "metric": ["wrinkle_length_mm"] * 2,
                     "value": [40.0, 44.0]})
PASSED = {"passed": True, "codes": [], "reasons": []}
#: as the analysis stores it for a follow-up of another person: its numbers were computed, the photo failed
FAILED = {"passed": False, "codes": ["baseline_mismatch", "pose", "pose"],
          "reasons": ["the baseline shows another face (face-shape distance 0.031 inter-ocular distances)",
                      "head roll differs from baseline by -9.0° (limit ±5.0°)",
                      "the head is nodded 3.1° from the baseline (limit ±2°)"]}


def _two_subjects_one_failed(store, photo_file) -> dict[tuple[str, str], int]:
    """S-001 and S-002 photographed at baseline and S12, each measured; S-001's S12 photo failed QC."""
    ids = {}
    for sid in ("S-001", "S-002"):
        enrol_eligible(store, sid)
        store.allocate(sid)
        for visit in ("BASELINE", "S12"):
            path, sha = photo_file(f"{sid}-{visit}")
            ids[sid, visit] = store.add_photo(sid, visit_id=visit, path=path, sha256=sha,
                                              captured_at=datetime(2026, 3 if visit == "BASELINE" else 6, 2, 9, 30,
                                                                   tzinfo=UTC))
    store.add_measurement_runs([(pid, FOLD, FAILED if key == ("S-001", "S12") else PASSED)
                                for key, pid in ids.items()], algorithm_version="t")
    return ids


def test_a_photo_that_failed_qc_gives_no_endpoint_value(demo_study, randomized, photo_file) -> None:
    randomized(demo_study, 3)
    with open_store(demo_study) as store:
        ids = _two_subjects_one_failed(store, photo_file)
        rec = StudyRecords(store)
        assert rec.failed_photos == {ids["S-001", "S12"]: "baseline_mismatch, pose"}  # each check once
        # the findings keep what was measured on it ...
        assert set(rec.measurements["photo_id"]) == set(ids.values())
        # ... but the endpoint has no value at that visit, and the visit has no measured photo
        nlflen = next(ep for ep in rec.info.endpoints if ep.code == "NLFLEN")
        values = endpoint_values(rec, nlflen)
        got = set(zip(values["subject_id"], values["visit_id"], strict=True))
        assert got == {("S-001", "BASELINE"), ("S-002", "BASELINE"), ("S-002", "S12")}
        assert values["AVAL"].notna().all()
        assert _photo_visits(rec) == got
        # the findings: not done on that photo, with the reason; measured on the others
        xf = xf_domain(rec).frame
        mine = xf["XFREFID"].str.startswith(f"PHOTO {ids['S-001', 'S12']} ")
        assert mine.sum() == 2 and (~mine).sum() == 6
        assert (xf.loc[mine, "XFSTAT"] == "NOT DONE").all() and xf.loc[mine, "XFSTRESN"].isna().all()
        assert (xf.loc[mine, "XFREASND"] == "PHOTO FAILED QC: BASELINE_MISMATCH, POSE").all()
        assert xf.loc[~mine, "XFSTRESN"].notna().all() and xf.loc[~mine, "XFSTAT"].isna().all()
        assert xf.loc[~mine, "XFREASND"].isna().all()


@pytest.mark.parametrize("fmt", ["csv", "xpt"])
def test_the_report_lists_the_photos_that_failed_qc(demo_study, randomized, photo_file, fmt) -> None:
    """Exported, then read by the report as a regulatory writer gets it: a listing names the photo left out of
    the photo endpoints, its visit and the failed check in words, with the count of photos analysed."""
    from toolkit.report import build_report
    from toolkit.store.export import export_datasets

    randomized(demo_study, 3)
    with open_store(demo_study) as store:
        ids = _two_subjects_one_failed(store, photo_file)
        export_datasets(store, formats=fmt)
        study_id, data_dir = store.study_id, store.study_dir
    bundle = build_report(study_id, static=False)
    listing = next(t for t in bundle.tables if "failed quality control" in t.title)
    assert listing.number.startswith("16.2.")
    rows = pd.read_csv(bundle.root / next(f for f in listing.files if f.endswith(".csv")))
    assert rows.to_dict("records") == [{
        "Subject": f"{study_id}-S-001", "Visit": "After session 12", "Photograph": f"PHOTO {ids['S-001', 'S12']} frontal",
        "Captured": "2026-06-02T09:30:00", "Failed check(s)": "baseline mismatch; pose"}]
    index = bundle.index.read_text(encoding="utf-8")
    assert "1 of 4 analysed photograph(s) failed quality control" in index
    assert f"toolkit photos qc --study {study_id}" in index
    assert not [m for m in bundle.missing if "photo quality control" in m], bundle.missing
    assert (data_dir / "report" / "index.html").is_file()


def test_the_report_says_no_photo_failed_and_reports_an_unusable_xf(data_root) -> None:
    from toolkit.report import build_report

    folder = data_root / "QC-1" / "analysis"
    folder.mkdir(parents=True)
    xf = pd.DataFrame({"USUBJID": ["QC-1-S-001"] * 2, "XFCAT": "PHOTO METRIC", "XFREFID": ["PHOTO 1 frontal",
                       "PHOTO 2 frontal"], "XFREASND": None, "VISIT": ["Baseline", "After session 12"],
                       "VISITNUM": [0, 12], "XFSTRESN": [40.0, 38.0]})
    xf.to_csv(folder / "xf.csv", index=False)
    bundle = build_report("QC-1", static=False)
    listing = next(t for t in bundle.tables if "failed quality control" in t.title)
    rows = pd.read_csv(bundle.root / next(f for f in listing.files if f.endswith(".csv")))
    assert rows["Subject"].tolist() == ["(none)"]
    assert "0 of 2 analysed photograph(s) failed quality control" in bundle.index.read_text(encoding="utf-8")
    # findings exported before each code was written once: the listing names each check once
    xf.assign(XFREASND=[None, "PHOTO FAILED QC: POSE, BLUR, POSE"]).to_csv(folder / "xf.csv", index=False)
    bundle = build_report("QC-1", static=False)
    listing = next(t for t in bundle.tables if "failed quality control" in t.title)
    rows = pd.read_csv(bundle.root / next(f for f in listing.files if f.endswith(".csv")))
    assert rows["Failed check(s)"].tolist() == ["pose; blur"] and rows["Visit"].tolist() == ["After session 12"]
    # findings written by something else, without the reference of the photo: said, and the report still built
    xf.drop(columns="XFREFID").to_csv(folder / "xf.csv", index=False)
    bundle = build_report("QC-1", static=False)
    assert not [t for t in bundle.tables if "failed quality control" in t.title]
    assert any("photo quality control" in m and "XFREFID" in m for m in bundle.missing), bundle.missing
