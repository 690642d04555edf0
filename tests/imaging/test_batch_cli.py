"""Batches on local processes and Dask, and the photos commands end to end on a real SQLite store."""

from __future__ import annotations

import stat
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from toolkit.imaging import ALGORITHM_VERSION, BatchItem, analyze_batch
from toolkit.imaging.synthetic import portrait, simulate_visit


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("photos")
    base = portrait("grace_hopper")
    out = {"baseline": d / "baseline.png"}
    cv2.imwrite(str(out["baseline"]), cv2.cvtColor(base, cv2.COLOR_RGB2BGR))
    for seed, lift in ((1, 0.0), (2, 1.5)):
        img, _ = simulate_visit(base, lift_mm=lift, seed=seed, wrinkle_regions=())
        out[f"visit{seed}"] = d / f"visit{seed}.jpg"
        cv2.imwrite(str(out[f"visit{seed}"]), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return out


def _items(files: dict[str, Path]) -> list[BatchItem]:
    base = str(files["baseline"])
    return [BatchItem(photo=base, key="b"), BatchItem(str(files["visit1"]), base, key="v1"),
            BatchItem(str(files["visit2"]), base, key="v2")]


def test_process_pool_and_dask_match_serial(photo_files: dict[str, Path]) -> None:
    from distributed import LocalCluster

    serial = analyze_batch(_items(photo_files), executor="serial", progress=False)
    pooled = analyze_batch(_items(photo_files), executor="processes", workers=2, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dasked = analyze_batch(_items(photo_files), scheduler=cluster.scheduler_address, progress=False)
    for other in (pooled, dasked):
        assert [r.key for r in other] == ["b", "v1", "v2"]
        for a, b in zip(serial, other, strict=True):
            pd.testing.assert_frame_equal(a.frame, b.frame)
            assert b.algorithm_version == ALGORITHM_VERSION
    lift = serial[2].frame.set_index("region").lift_mm
    assert lift[["perioral", "marionette_l", "marionette_r"]].mean() > 1.0
    assert serial[0].frame.lift_mm.isna().all()


def test_batch_refuses_bad_settings() -> None:
    from toolkit.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="accepted: processes, dask, serial"):
        analyze_batch([], executor="threads")
    with pytest.raises(ConfigurationError, match="positive integer"):
        analyze_batch([], workers=0)
    with pytest.raises(ConfigurationError, match="batch item 0"):
        analyze_batch([42])
    with pytest.raises(ConfigurationError, match="tcp://host:port"):
        analyze_batch(["x.jpg"], scheduler="tcp://127.0.0.1:9", progress=False)


def test_ingest_then_analyze_writes_measurements(
    study_dir: Path, photo_files: dict[str, Path], data_root: Path, _toolkit
) -> None:
    r = _toolkit("photos", "ingest", str(photo_files["baseline"]), "--study", str(study_dir), "--subject", "S-001",
                 "--visit", "BASELINE")
    assert r.returncode == 0, r.stderr
    r = _toolkit("photos", "ingest", str(photo_files["visit2"]), "--study", str(study_dir), "--subject", "S-001",
                 "--visit", "S12")
    assert r.returncode == 0, r.stderr
    raw = sorted((data_root / "epmc-demo" / "photos" / "raw" / "S-001").rglob("*.png")) + sorted(
        (data_root / "epmc-demo" / "photos" / "raw" / "S-001").rglob("*.jpg"))
    assert len(raw) == 2 and all(stat.S_IMODE(p.stat().st_mode) == 0o444 for p in raw)

    # the same file twice, a file that is not a photo, an unknown visit: refused with reasons, nothing added
    junk = study_dir / "notes.txt"
    junk.write_text("not a photo")
    r = _toolkit("photos", "ingest", str(photo_files["baseline"]), str(junk), "--study", str(study_dir),
                 "--subject", "S-001", "--visit", "BASELINE")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "already stored" in r.stderr and "unsupported file type" in r.stderr
    r = _toolkit("photos", "ingest", str(photo_files["visit1"]), "--study", str(study_dir), "--subject", "S-001",
                 "--visit", "WEEK99")
    assert r.returncode == 2 and "WEEK99" in r.stderr
    assert not list((data_root / "epmc-demo" / "photos" / "raw" / "S-001").glob("WEEK99/*.jpg"))

    r = _toolkit("photos", "analyze", "--study", str(study_dir), "--serial", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "analysed 2 photo(s): 2 passed QC" in r.stdout
    # overlays kept where the report looks, named in visit order: the baseline's wrinkle map, the
    # follow-up's wrinkle map and displacement field
    derived = data_root / "epmc-demo" / "photos" / "derived" / "S-001"
    names = sorted(p.name for p in derived.iterdir())
    assert names == ["000_BASELINE_frontal_wrinkles.jpg", "012_S12_frontal_displacement.jpg",
                     "012_S12_frontal_wrinkles.jpg"], names
    assert "3 overlay image(s)" in r.stdout
    for p in derived.iterdir():
        img = cv2.imread(str(p))
        assert img is not None and min(img.shape[:2]) > 100

    from toolkit.store import open_store
    from toolkit.study import load_study

    with open_store(load_study(study_dir)) as store:
        m = store.measurements()
        assert not store.pending_photos()
    assert set(m.algorithm_version) == {ALGORITHM_VERSION}
    lift = m[(m.visit_id == "S12") & (m.metric == "lift_mm")].set_index("region").value
    assert lift[["perioral", "marionette_l", "marionette_r"]].mean() > 1.0
    assert m[(m.visit_id == "BASELINE") & (m.metric == "lift_mm")].value.isna().all()
    r = _toolkit("photos", "analyze", "--study", str(study_dir), "--no-progress")
    assert r.returncode == 0 and "no pending photos" in r.stdout


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()


def test_capture_from_a_video_file(
    study_dir: Path, photo_files: dict[str, Path], data_root: Path, tmp_path: Path, _toolkit
) -> None:
    r = _toolkit("photos", "ingest", str(photo_files["baseline"]), "--study", str(study_dir), "--subject", "S-001",
                 "--visit", "BASELINE")
    assert r.returncode == 0, r.stderr
    base = portrait("grace_hopper")
    # the subject walks into the frame: shifted first (poor alignment), then in place
    shifted = [np.roll(base, s, axis=1) for s in (200, 150, 100)]
    aligned = [simulate_visit(base, seed=s, wrinkle_regions=())[0] for s in (1, 2)]
    video = tmp_path / "session.avi"
    _write_video(video, shifted + aligned)
    previews = tmp_path / "previews"
    r = _toolkit("photos", "capture", "--study", str(study_dir), "--subject", "S-001", "--visit", "S4",
                 "--source", str(video), "--preview-dir", str(previews))
    assert r.returncode == 0, r.stderr
    assert "frame 1: alignment" in r.stdout and "saved frame 4" in r.stdout
    assert sorted(p.name for p in previews.glob("*.jpg"))[:1] == ["preview_0001.jpg"]
    saved = list((data_root / "epmc-demo" / "photos" / "raw" / "S-001" / "S4").glob("*.png"))
    assert len(saved) == 1 and stat.S_IMODE(saved[0].stat().st_mode) == 0o444

    # a video with no usable frame saves nothing, unless the operator overrides with a reason
    blank = tmp_path / "blank.avi"
    _write_video(blank, [np.full((240, 320, 3), 128, np.uint8)] * 3)
    r = _toolkit("photos", "capture", "--study", str(study_dir), "--subject", "S-001", "--visit", "S8",
                 "--source", str(blank), "--preview-dir", str(previews))
    assert r.returncode == 1 and "nothing saved" in r.stderr and "Traceback" not in r.stderr
    assert not (data_root / "epmc-demo" / "photos" / "raw" / "S-001" / "S8").exists() or not list(
        (data_root / "epmc-demo" / "photos" / "raw" / "S-001" / "S8").glob("*.png"))
    r = _toolkit("photos", "capture", "--study", str(study_dir), "--subject", "S-001", "--visit", "S8",
                 "--source", str(blank), "--override-reason", "camera fogged, subject could not return")
    assert r.returncode == 0, r.stderr
    from toolkit.store import open_store
    from toolkit.study import load_study

    with open_store(load_study(study_dir)) as store:
        rec = [p for p in store.photos("S-001") if p.visit_id == "S8"][0]
    assert rec.meta["override_reason"] == "camera fogged, subject could not return"
    r = _toolkit("photos", "capture", "--study", str(study_dir), "--subject", "S-001", "--visit", "S8",
                 "--source", str(tmp_path / "nope.avi"))
    assert r.returncode == 2 and "cannot open video source" in r.stderr


def test_overlays_that_cannot_be_written_lose_no_measurement(study_dir: Path, photo_files: dict[str, Path],
                                                             data_root: Path) -> None:
    from toolkit.imaging.pipeline import analyze_pending, ingest_photo
    from toolkit.store import open_store
    from toolkit.study import load_study

    study = load_study(study_dir)
    with open_store(study) as store:
        ingest_photo(store, study, photo_files["baseline"], subject_id="S-001", visit_id="BASELINE")
        ingest_photo(store, study, photo_files["visit1"], subject_id="S-001", visit_id="S12")
        # a file where the overlay folder should be: every overlay write fails
        blocker = Path(store.study_dir) / "photos" / "derived"
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_text("not a folder")
        counts = analyze_pending(store, study, executor="serial", progress=False)
        assert counts["analysed"] == 2 and counts["overlays"] == 0 and counts["overlays_failed"] == 3
        m = store.measurements()
        assert set(m.visit_id) == {"BASELINE", "S12"} and not store.pending_photos()
    assert blocker.read_text() == "not a folder"


def test_batch_returns_only_the_overlays_asked_for(photo_files: dict[str, Path]) -> None:
    base = str(photo_files["baseline"])
    items = [BatchItem(str(photo_files["visit1"]), base, key="all", overlays=True),
             BatchItem(str(photo_files["visit1"]), base, key="two", overlays=("wrinkles", "displacement")),
             BatchItem(str(photo_files["visit1"]), base, key="none")]
    res = {r.key: r for r in analyze_batch(items, executor="processes", workers=2, progress=False)}
    assert set(res["all"].overlays) == {"wrinkles", "displacement", "ghost"}
    assert set(res["two"].overlays) == {"wrinkles", "displacement"}
    assert res["none"].overlays == {}
    img = cv2.imdecode(np.frombuffer(res["two"].overlays["displacement"], np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[2] == 3
    # drawing overlays changes no number
    pd.testing.assert_frame_equal(res["all"].frame, res["none"].frame)
