"""A photo whose analysis failed QC gives no endpoint value, does not count as a measured photo, and its findings
are reported as not done, with the reason."""

from __future__ import annotations

from datetime import UTC, date, datetime

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


#: as the analysis stores a follow-up with red dots that passed: measured, with warnings to look at
WARNED = {"passed": True, "codes": [], "reasons": [], "flag_codes": ["new_spots", "smile", "new_spots"],
          "flags": ["24 spots on the skin at this visit, 0 at baseline ...", "the subject smiles ..."]}


@pytest.mark.parametrize("fmt", ["csv", "xpt"])
def test_the_report_lists_the_photos_measured_with_warnings(demo_study, randomized, photo_file, fmt) -> None:
    """A photo that passed QC with warnings keeps its metrics; SUPPXF names its warnings by XFREFID, and the
    report lists it with the visit, so that new spots after a session reach the reader (a possible skin
    reaction), while a failed photo stays in its own listing only."""
    import pyreadstat

    from toolkit.report import build_report
    from toolkit.store.export import export_datasets

    randomized(demo_study, 3)
    with open_store(demo_study) as store:
        ids = _two_subjects_one_failed(store, photo_file)
        warned = ids["S-002", "S12"]
        store.add_measurement_runs([(warned, FOLD, WARNED)], algorithm_version="t2")
        # the photo was taken on 2026-06-02: one event ongoing then, one resolved the day before, one of S-001
        for subject, onset, resolved, term in (("S-002", date(2026, 5, 30), None, "Papules"),
                                               ("S-002", date(2026, 5, 20), date(2026, 6, 1), "Redness"),
                                               ("S-001", date(2026, 6, 1), None, "Itching")):
            store.add_adverse_event(subject, term=term, soc="Skin", severity="mild", serious=False,
                                    relation="possible", onset=onset, resolved=resolved)
        rec = StudyRecords(store)
        assert rec.flagged_photos == {warned: "new_spots, smile"}  # each once; the failed photo is not here
        assert rec.failed_photos == {ids["S-001", "S12"]: "baseline_mismatch, pose"}
        xf = xf_domain(rec).frame
        assert xf.loc[xf["XFREFID"] == f"PHOTO {warned} frontal", "XFSTRESN"].tolist() == [40.0, 44.0]
        written = export_datasets(store, formats=fmt)
        study_id = store.study_id
    supp_file = written[f"suppxf.{fmt}"]
    supp = pyreadstat.read_xport(supp_file)[0] if fmt == "xpt" else pd.read_csv(supp_file)
    assert supp[["USUBJID", "RDOMAIN", "IDVAR", "IDVARVAL", "QNAM", "QVAL"]].to_dict("records") == [{
        "USUBJID": f"{study_id}-S-002", "RDOMAIN": "XF", "IDVAR": "XFREFID", "IDVARVAL": f"PHOTO {warned} frontal",
        "QNAM": "PHQCWARN", "QVAL": "NEW_SPOTS, SMILE"}]
    bundle = build_report(study_id, static=False)
    listing = next(t for t in bundle.tables if "with quality-control warnings" in t.title)
    rows = pd.read_csv(bundle.root / next(f for f in listing.files if f.endswith(".csv")))
    assert rows.to_dict("records") == [{
        "Subject": f"{study_id}-S-002", "Visit": "After session 12", "Photograph": f"PHOTO {warned} frontal",
        "Captured": "2026-06-02T09:30:00", "Warning(s)": "new spots; smile"}]
    failed = next(t for t in bundle.tables if "failed quality control" in t.title)
    assert listing.number.startswith("16.2.") and listing.number != failed.number
    index = bundle.index.read_text(encoding="utf-8")
    assert "1 of 4 analysed photograph(s) passed quality control with warnings (new spots: 1, smile: 1)" in index
    assert "record any adverse event" in index
    # listed again beside the subject's adverse events ongoing that day: the papules, not the resolved redness
    spots = next(t for t in bundle.tables if "new spots on the skin" in t.title)
    rows = pd.read_csv(bundle.root / next(f for f in spots.files if f.endswith(".csv")))
    assert rows[["Subject", "Visit", "Adverse events ongoing that day"]].to_dict("records") == [{
        "Subject": f"{study_id}-S-002", "Visit": "After session 12",
        "Adverse events ongoing that day": "Papules (from 2026-05-30)"}]
    assert "with no adverse event recorded that day" not in index
    assert not [m for m in bundle.missing if "photo quality control" in m], bundle.missing


def test_no_warnings_listed_as_none_and_an_unusable_suppxf_is_said(data_root) -> None:
    from toolkit.report import build_report

    folder = data_root / "QC-2" / "analysis"
    folder.mkdir(parents=True)
    pd.DataFrame({"USUBJID": ["QC-2-S-001"] * 2, "XFCAT": "PHOTO METRIC", "XFREFID": ["PHOTO 1 frontal",
                  "PHOTO 2 frontal"], "XFREASND": None, "VISIT": ["Baseline", "After session 12"],
                  "VISITNUM": [0, 12], "XFSTRESN": [40.0, 38.0]}).to_csv(folder / "xf.csv", index=False)
    bundle = build_report("QC-2", static=False)
    listing = next(t for t in bundle.tables if "with quality-control warnings" in t.title)
    rows = pd.read_csv(bundle.root / next(f for f in listing.files if f.endswith(".csv")))
    assert rows["Subject"].tolist() == ["(none)"]
    assert "record any adverse event" not in bundle.index.read_text(encoding="utf-8")
    # a qualifier of another kind (continued text) is not a warning; one of a photo not in XF is not listed
    supp = pd.DataFrame({"USUBJID": ["QC-2-S-001"] * 3, "RDOMAIN": "XF", "IDVAR": ["XFSEQ", "XFREFID", "XFREFID"],
                         "IDVARVAL": ["1", "PHOTO 2 frontal", "PHOTO 9 frontal"],
                         "QNAM": ["XFREASN1", "PHQCWARN", "PHQCWARN"], "QVAL": ["more text", "SMILE", "BLUR"]})
    supp.to_csv(folder / "suppxf.csv", index=False)
    bundle = build_report("QC-2", static=False)
    listing = next(t for t in bundle.tables if "with quality-control warnings" in t.title)
    rows = pd.read_csv(bundle.root / next(f for f in listing.files if f.endswith(".csv")))
    assert rows[["Visit", "Warning(s)"]].to_dict("records") == [{"Visit": "After session 12", "Warning(s)": "smile"}]
    # new spots with no adverse event that day (one ended the day before the photo): said, to look at the photo
    pd.DataFrame({"USUBJID": ["QC-2-S-001"], "AETERM": ["Erythema"], "AESTDTC": ["2026-06-01"],
                  "AEENDTC": ["2026-06-01"]}).to_csv(folder / "ae.csv", index=False)
    xf = pd.read_csv(folder / "xf.csv").assign(XFDTC=["2026-03-02T09:30", "2026-06-02T10:30"])
    xf.to_csv(folder / "xf.csv", index=False)
    supp.assign(QVAL=["more text", "NEW_SPOTS", "BLUR"]).to_csv(folder / "suppxf.csv", index=False)
    bundle = build_report("QC-2", static=False)
    spots = next(t for t in bundle.tables if "new spots on the skin" in t.title)
    rows = pd.read_csv(bundle.root / next(f for f in spots.files if f.endswith(".csv")))
    assert rows["Adverse events ongoing that day"].tolist() == ["none recorded"]
    assert "1 of 1 such photograph(s) with no adverse event recorded that day" in bundle.index.read_text("utf-8")
    # adverse events written by something else: said, naming the file and the column
    pd.DataFrame({"USUBJID": ["QC-2-S-001"], "AETERM": ["Erythema"]}).to_csv(folder / "ae.csv", index=False)
    bundle = build_report("QC-2", static=False)
    assert any("ae.csv" in m and "AESTDTC" in m for m in bundle.missing), bundle.missing
    # SUPPXF written by something else: said, naming the file and the column, and the failed listing still made
    supp.drop(columns="QNAM").to_csv(folder / "suppxf.csv", index=False)
    bundle = build_report("QC-2", static=False)
    assert [t for t in bundle.tables if "failed quality control" in t.title]
    assert any("suppxf.csv" in m and "QNAM" in m for m in bundle.missing), bundle.missing
