"""The package-level path from photo files to measurements in a real SQLite store (used by CLI and demo)."""

from __future__ import annotations

import hashlib
import shutil
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from toolkit.errors import ToolkitError
from toolkit.imaging import ALGORITHM_VERSION
from toolkit.imaging.pipeline import (
    IngestedPhoto,
    analyze_pending,
    baseline_photo_for,
    ingest_photo,
    ingest_photo_record,
)
from toolkit.imaging.synthetic import portrait, simulate_visit

REPO = Path(__file__).resolve().parents[2]
LIFT_MM = 1.5


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pipeline-photos")
    base = portrait("grace_hopper")
    out = {"baseline": d / "baseline.png", "visit": d / "visit.jpg", "other": d / "other.jpg"}
    cv2.imwrite(str(out["baseline"]), cv2.cvtColor(base, cv2.COLOR_RGB2BGR))
    for key, seed, lift in (("visit", 2, LIFT_MM), ("other", 5, 0.0)):
        img, _ = simulate_visit(base, lift_mm=lift, seed=seed, wrinkle_regions=())
        cv2.imwrite(str(out[key]), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return out


@pytest.fixture
def study(tmp_path: Path, provision):
    from toolkit.store import open_store
    from toolkit.study import load_study

    dest = tmp_path / "epmc-demo"
    shutil.copytree(REPO / "studies" / "epmc-demo", dest)
    st = load_study(dest)
    provision(st)
    with open_store(st) as store:
        store.enroll_subject("S-001", age=52, sex="F", fitzpatrick="II", strata={"age_group": "ge45"})
    return st


def test_ingest_and_analyze_pending_on_sqlite(study, photo_files: dict[str, Path], data_root: Path) -> None:
    from toolkit.store import open_store

    with open_store(study) as store:
        rec = ingest_photo_record(store, study, photo_files["baseline"], subject_id="S-001", visit_id="BASELINE",
                                  meta={"operator": "RC"})
        assert isinstance(rec, IngestedPhoto)
        assert rec.path.is_relative_to(data_root / study.id / "photos" / "raw" / "S-001" / "BASELINE")
        assert stat.S_IMODE(rec.path.stat().st_mode) == 0o444
        assert rec.sha256 == hashlib.sha256(photo_files["baseline"].read_bytes()).hexdigest()
        visit_id = ingest_photo(store, study, photo_files["visit"], subject_id="S-001", visit_id="S12")
        assert visit_id != rec.photo_id

        # refused by the store: the raw copy is undone, the database unchanged
        with pytest.raises(ToolkitError, match="WEEK99"):
            ingest_photo(store, study, photo_files["other"], subject_id="S-001", visit_id="WEEK99")
        assert not list((data_root / study.id / "photos" / "raw" / "S-001").rglob("WEEK99/*"))
        with pytest.raises(ToolkitError, match="S-999"):
            ingest_photo(store, study, photo_files["other"], subject_id="S-999", visit_id="S12")
        with pytest.raises(ToolkitError, match="accepted: frontal, left45, right45"):
            ingest_photo(store, study, photo_files["other"], subject_id="S-001", visit_id="S12", view="top")
        assert len(store.photos()) == 2

        assert baseline_photo_for(store, study, "S-001", "S12") == rec.path
        assert baseline_photo_for(store, study, "S-001", "BASELINE") is None

        counts = analyze_pending(store, study, executor="serial", progress=False)
        assert counts == {"analysed": 2, "passed": 2, "failed": 0, "overlays": 3, "overlays_failed": 0}
        assert not store.pending_photos()
        m = store.measurements()
        again = analyze_pending(store, study, executor="serial", progress=False)
    assert again == {"analysed": 0, "passed": 0, "failed": 0, "overlays": 0, "overlays_failed": 0}
    assert set(m.algorithm_version) == {ALGORITHM_VERSION}
    assert set(m.visit_id) == {"BASELINE", "S12"}
    # the follow-up was registered to the baseline: lift of the lower face near the drawn truth
    lift = m[(m.visit_id == "S12") & (m.metric == "lift_mm")].set_index("region").value
    lower = float(np.mean(lift[["perioral", "marionette_l", "marionette_r"]]))
    assert 0.6 * LIFT_MM < lower < 1.4 * LIFT_MM
    assert m[(m.visit_id == "BASELINE") & (m.metric == "lift_mm")].value.isna().all()
    # measured wherever the region shows enough skin (behind Grace Hopper's spectacles it does not)
    wide = m.pivot_table(index=["visit_id", "region"], columns="metric", values="value", dropna=False)
    shown = wide.skin_fraction >= 0.35
    assert shown.sum() >= 14 and wide.wrinkle_length_mm[shown].notna().all()


def test_a_study_that_forbids_spectacles_fails_those_photos(tmp_path: Path, provision,
                                                            photo_files: dict[str, Path]) -> None:
    """Grace Hopper wears spectacles: by default a warning on photos that pass; a study whose ``study.yaml``
    lists ``spectacles`` under ``photo_qc.fail_on_flags`` fails them, with the flag's code and message, and
    ``photos qc`` lists them as failed."""
    from toolkit.imaging.qc_listing import qc_listing
    from toolkit.store import open_store
    from toolkit.study import load_study

    dest = tmp_path / "epmc-demo"
    shutil.copytree(REPO / "studies" / "epmc-demo", dest)
    text = (dest / "study.yaml").read_text(encoding="utf-8")
    assert text.count("  fail_on_flags: []") == 1
    (dest / "study.yaml").write_text(text.replace("  fail_on_flags: []", "  fail_on_flags: [spectacles]"),
                                     encoding="utf-8")
    st = load_study(dest)
    provision(st)
    with open_store(st) as store:
        store.enroll_subject("S-001", age=52, sex="F", fitzpatrick="II", strata={"age_group": "ge45"})
        ingest_photo(store, st, photo_files["baseline"], subject_id="S-001", visit_id="BASELINE")
        ingest_photo(store, st, photo_files["visit"], subject_id="S-001", visit_id="S12")
        # in worker processes, as `photos analyze` runs it: the policy travels with each photo
        counts = analyze_pending(store, st, executor="processes", workers=2, progress=False, overlays=False)
        listing = qc_listing(store, st)
    assert counts["analysed"] == 2 and counts["failed"] == 2, counts
    assert list(listing.status) == ["failed", "failed"]
    for codes, reasons, flag_codes in zip(listing.codes, listing.reasons, listing.flag_codes, strict=True):
        assert "spectacles" in codes and "spectacles" not in flag_codes
        assert any("spectacles" in r or "glasses" in r for r in reasons), reasons


def test_the_study_schema_knows_every_flag_the_analysis_raises() -> None:
    """``photo_qc.fail_on_flags`` accepts exactly the flag codes the imaging code raises (read from its source,
    so a new flag that is not added to ``PHOTO_QC_FLAGS`` fails here)."""
    import re

    from toolkit.study import PHOTO_QC_FLAGS

    raised = set()
    for path in (REPO / "toolkit" / "imaging").glob("*.py"):
        raised |= set(re.findall(r'\bqc\.flag\(\s*"([a-z_]+)"', path.read_text(encoding="utf-8")))
    assert raised == set(PHOTO_QC_FLAGS)
