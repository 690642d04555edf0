"""Refused ingests leave nothing behind, an unknown visit is said before a duplicate, and a file taken from
the raw store keeps its name."""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib
import pytest

from toolkit.errors import ToolkitError
from toolkit.imaging.pipeline import ingest_photo
from toolkit.imaging.raw_store import store_raw_photo

REPO = Path(__file__).resolve().parents[2]
HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@pytest.fixture
def study(tmp_path: Path, provision):
    from toolkit.store import open_store
    from toolkit.study import load_study

    st = load_study(REPO / "studies" / "epmc-demo")
    provision(st)
    with open_store(st) as store:
        store.enroll_subject("S-001", age=52, sex="F", fitzpatrick="II", strata={"age_group": "ge45"})
    return st


def test_refusals_leave_no_folders_and_name_the_visit_first(study, data_root: Path, tmp_path: Path) -> None:
    from toolkit.store import open_store

    raw = data_root / study.id / "photos" / "raw" / "S-001"
    with open_store(study) as store:
        with pytest.raises(ToolkitError, match="WEEK99"):
            ingest_photo(store, study, HOPPER, subject_id="S-001", visit_id="WEEK99")
        assert not (raw / "WEEK99").exists() and not raw.exists()  # no empty visit or subject folder
        ingest_photo(store, study, HOPPER, subject_id="S-001", visit_id="BASELINE")
        # the same file at an unknown visit: the visit is what is wrong first
        with pytest.raises(ToolkitError, match="WEEK99") as refused:
            ingest_photo(store, study, HOPPER, subject_id="S-001", visit_id="WEEK99")
        assert "already stored" not in str(refused.value)
        with pytest.raises(ToolkitError, match="already stored as photo #1") as dup:
            ingest_photo(store, study, HOPPER, subject_id="S-001", visit_id="S12")
        assert dup.value.fields == {"source": dup.value.message}
        assert sorted(p.name for p in raw.iterdir()) == ["BASELINE"]
        assert len(store.photos()) == 1


def test_a_file_from_the_raw_store_keeps_its_name(data_root: Path, tmp_path: Path) -> None:
    first = store_raw_photo(HOPPER, study_id="copy-a", subject_id="S-1", visit_id="V1")
    assert first.path.name == f"{first.sha256[:12]}-grace_hopper.jpg"
    again = store_raw_photo(first.path, study_id="copy-b", subject_id="S-1", visit_id="V1")
    assert again.path.name == first.path.name
    renamed = tmp_path / "other-name.jpg"
    shutil.copyfile(first.path, renamed)
    assert store_raw_photo(renamed, study_id="copy-c", subject_id="S-1", visit_id="V1").path.name == (
        f"{first.sha256[:12]}-other-name.jpg")


def test_an_iphone_heic_photo_is_refused_at_ingest_with_the_camera_setting(study, data_root: Path,
                                                                           tmp_path: Path) -> None:
    from toolkit.store import open_store

    heic = tmp_path / "IMG_0002.HEIC"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    with open_store(study) as store:
        with pytest.raises(ToolkitError, match=r"an HEIC photo, a format not read here.*'Most Compatible'"):
            ingest_photo(store, study, heic, subject_id="S-001", visit_id="BASELINE")
        assert not (data_root / study.id / "photos" / "raw" / "S-001").exists()
        assert store.photos() == []
