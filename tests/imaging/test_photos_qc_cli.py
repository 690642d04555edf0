"""``toolkit photos qc``: every photo of a real SQLite study with its QC status, reasons, flags and notes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from toolkit.imaging.synthetic import portrait


@pytest.fixture
def analysed_study(study_dir: Path, tmp_path: Path, _toolkit) -> Path:
    """S-001: a passing baseline and a follow-up of another face; S-002: a blank baseline; one photo pending."""
    from toolkit.store import open_store
    from toolkit.study import load_study

    with open_store(load_study(study_dir)) as store:
        store.enroll_subject("S-002", age=52, sex="M", fitzpatrick="II", strata={"age_group": "ge45"})
    files = {"grace": tmp_path / "grace.jpg", "astronaut": tmp_path / "astronaut.jpg", "blank": tmp_path / "blank.png"}
    cv2.imwrite(str(files["grace"]), cv2.cvtColor(portrait("grace_hopper"), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(files["astronaut"]), cv2.cvtColor(portrait("astronaut"), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(files["blank"]), np.full((300, 300, 3), 128, np.uint8))
    for name, subject, visit in (("grace", "S-001", "BASELINE"), ("astronaut", "S-001", "S12"),
                                 ("blank", "S-002", "BASELINE")):
        r = _toolkit("photos", "ingest", str(files[name]), "--study", str(study_dir), "--subject", subject,
                     "--visit", visit)
        assert r.returncode == 0, r.stderr
    r = _toolkit("photos", "analyze", "--study", str(study_dir), "--serial", "--no-progress", "--no-overlays")
    assert r.returncode == 0, r.stderr
    assert "analysed 3 photo(s): 1 passed QC, 2 failed QC" in r.stdout
    # the summary says where the reasons are
    assert f"toolkit photos qc --study {study_dir} --failed-only" in r.stdout
    # a photo saved at capture despite failing its capture QC, not analysed yet
    from toolkit.imaging.pipeline import ingest_photo_record

    late = tmp_path / "late.png"
    cv2.imwrite(str(late), cv2.cvtColor(portrait("grace_hopper", long_side_px=400), cv2.COLOR_RGB2BGR))
    study = load_study(study_dir)
    with open_store(study) as store:
        ingest_photo_record(store, study, late, subject_id="S-002", visit_id="S4",
                            meta={"source": "capture", "override_reason": "subject could not return"},
                            qc={"passed": False, "codes": ["blur"], "reasons": ["face blurred (score 12 < 20)"]})
    return study_dir


def test_qc_lists_every_photo_with_status_and_reasons_and_the_failures_alone(analysed_study: Path, tmp_path: Path, _toolkit) -> None:
    r = _toolkit("photos", "qc", "--study", str(analysed_study))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Photo QC, study epmc-demo" in out
    assert out.count("passed") >= 1 and out.count("failed") >= 2 and "not analysed yet" in out
    assert "no face found" in out and "S-002" in out
    assert "4 photo(s): 1 passed QC, 2 failed QC, 1 not analysed yet" in out

    csv = tmp_path / "qc.csv"
    r = _toolkit("photos", "qc", "--study", str(analysed_study), "--csv", str(csv))
    assert r.returncode == 0, r.stderr
    listing = pd.read_csv(csv, keep_default_na=False)
    assert list(listing.columns) == ["subject_id", "visit_id", "view", "photo_id", "file", "status", "codes",
                                     "reasons", "flag_codes", "flags", "notes", "algorithm_version", "analysed_at"]
    # per subject, in the study's visit order
    assert list(zip(listing.subject_id, listing.visit_id, listing.status, strict=True)) == [
        ("S-001", "BASELINE", "passed"), ("S-001", "S12", "failed"), ("S-002", "BASELINE", "failed"),
        ("S-002", "S4", "not analysed yet")]
    rows = listing.set_index(["subject_id", "visit_id"])
    assert rows.loc[("S-002", "BASELINE"), "codes"] == "no_face"
    assert rows.loc[("S-002", "BASELINE"), "reasons"] == "no face found"
    # the follow-up of another face fails on its comparison with the baseline, with every reason listed
    follow = rows.loc[("S-001", "S12")]
    assert len(follow.codes.split(" | ")) == len(follow.reasons.split(" | ")) >= 2
    # a flag without a failure is listed as a flag, and analysis notes are kept
    assert rows.loc[("S-001", "BASELINE"), "codes"] == ""
    assert rows.loc[("S-001", "BASELINE"), "flag_codes"] != "" and rows.loc[("S-001", "BASELINE"), "flags"] != ""
    pending = rows.loc[("S-002", "S4")]
    assert pending.algorithm_version == "" and pending.analysed_at == ""
    assert "capture QC failed (face blurred (score 12 < 20))" in pending.notes
    assert "saved by override: subject could not return" in pending.notes
    assert all(listing.algorithm_version[listing.status != "not analysed yet"] != "")

    # only the failures, on screen and in the CSV
    csv = tmp_path / "failed.csv"
    r = _toolkit("photos", "qc", "--study", str(analysed_study), "--failed-only", "--csv", str(csv))
    assert r.returncode == 0, r.stderr
    table = r.stdout.split("4 photo(s)")[0]
    assert "(failed only)" in table and "no face found" in table and "BASELINE" in table
    assert "not analysed yet" not in table and "late" not in table
    assert "2 row(s) written to" in r.stdout
    failed = pd.read_csv(csv, keep_default_na=False)
    assert set(failed.status) == {"failed"} and len(failed) == 2


def test_qc_bad_input_and_empty_study(study_dir: Path, tmp_path: Path, _toolkit) -> None:
    r = _toolkit("photos", "qc", "--study", str(study_dir))
    assert r.returncode == 0 and "no photos stored for study epmc-demo" in r.stdout
    target = tmp_path / "missing-folder" / "qc.csv"
    r = _toolkit("photos", "qc", "--study", str(study_dir), "--csv", str(target))
    assert r.returncode == 2 and "Traceback" not in r.stderr and str(target) in r.stderr
    assert not target.parent.exists()
    r = _toolkit("photos", "qc", "--study", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
