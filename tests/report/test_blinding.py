"""While a study is blinded, no output reveals an arm: exports, the report, its figures, tables and manifest.

A small study is recorded through the store (three subjects, one per arm, each with a completed session whose
capture shows the arm's waveform: a 70 V electroporation pulse is unmistakable), then the blinded exports and
the report are built and every file they wrote is scanned for what would reveal an arm: arm names and ids in
data cells, device settings, doses and delivered waveforms.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def blinded_study(data_root: Path, provision):
    from toolkit.store import open_store
    from toolkit.study import load_study
    from toolkit.study.allocation import randomize, write_allocation

    study = load_study(REPO / "studies" / "epmc-demo")
    write_allocation(study, randomize(study, 12, per_stratum=True))
    provision(study)
    arms: dict[str, str] = {}
    with open_store(study) as store:
        k = 0
        while len(arms) < 3 and k < 12:
            k += 1
            sid = f"S-{k:03d}"
            store.enroll_subject(sid, age=50, sex="F", fitzpatrick="III")
            store.record_consent(sid, signed_on=date(2026, 1, 5), publication=True)
            store.record_checklist(sid, store.info.eligibility.all_met(), checked_on=date(2026, 1, 5))
            store.record_patch_test(sid, passed=True, read_on=date(2026, 1, 7))
            arm = store.allocate(sid).arm_id
            if arm in arms.values():
                continue
            arms[sid] = arm
            pres = study.arm(arm).prescription.model_dump(mode="json")
            did = store.start_delivery(sid, session_number=1, arm_id=arm, side=None, prescription=pres,
                                       bench={"name": "twin"}, instruments={}, settings={"amplitude_V": 70})
            t = np.linspace(0, 0.01, 500)
            volts = np.where((t % 0.002) < 0.001, 70.0 if arm == "EP" else 0.0, 0.0)
            amps = volts / 500 if arm == "EP" else (np.sign(np.sin(2 * np.pi * 100 * t)) * 2e-4 if arm == "MC" else 0 * t)
            path = store.study_dir / "waveforms" / sid / "1" / "capture.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, time_s=t, volts_V=volts, amps_A=amps)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            store.finish_delivery(did, outcome="completed", reason=None, dose={"charge_C": 1e-3 if arm != "SHAM" else 0.0},
                                  verification=[], waveforms=[(path, digest)])
    assert set(arms.values()) == {"EP", "MC", "SHAM"}
    return study, arms


def _texts(folder: Path) -> dict[Path, str]:
    out = {}
    for p in folder.rglob("*"):
        if not p.is_file() or p.suffix.lower() in (".png", ".jpg", ".jpeg", ".pdf", ".svg", ".js", ".parquet"):
            continue
        if p.suffix.lower() == ".docx":
            import docx

            out[p] = "\n".join(par.text for par in docx.Document(str(p)).paragraphs) + "\n".join(
                c.text for t in docx.Document(str(p)).tables for row in t.rows for c in row.cells)
        else:
            out[p] = p.read_bytes().decode("latin-1")
    return out


def _leaks(study, folders, data_root: Path) -> list[str]:
    """Every place in the files under ``folders`` that names an arm or shows a device setting or a dose."""
    from toolkit.store.study_view import StudyInfo

    needles = [re.compile(rf"\b{re.escape(a.name)}\b") for a in study.arms]
    settings = re.compile(r"amplitude_V|current_uA|pulse_width|carrier_Hz|Delivered waveform")
    # the protocol's title names the treatments compared; that reveals no subject's arm
    title = StudyInfo.from_study(study).title or ""
    leaks = []
    for folder in folders:
        for path, text in _texts(folder).items():
            text = text.replace(title, "") if title else text
            for rx in needles:
                if rx.search(text):
                    leaks.append(f"{path.relative_to(data_root)}: arm name {rx.pattern}")
            if settings.search(text):
                leaks.append(f"{path.relative_to(data_root)}: device setting or waveform {settings.search(text).group(0)}")
    return leaks


def test_blinded_outputs_reveal_no_arm(blinded_study, data_root: Path) -> None:
    from toolkit.report import build_report
    from toolkit.store import open_store
    from toolkit.store.export import export_datasets

    study, arms = blinded_study
    with open_store(study) as store:
        assert not store.is_unblinded
        written = export_datasets(store, formats=("csv", "xpt"))
    bundle = build_report(study.id, static=False)
    titles = " | ".join(f.title for f in bundle.figures)
    assert "waveform" not in titles.lower() and "dose" not in titles.lower(), titles
    assert any("withheld while the study is blinded" in m for m in bundle.missing)

    names = [a.name for a in study.arms]  # Electroporation, Microcurrent, Sham
    analysis = next(iter(written.values())).parent
    leaks = _leaks(study, (analysis, bundle.root), data_root)
    assert not leaks, "\n".join(leaks)
    # arm columns of every dataset hold codes only, and no dose is shown
    for name in ("dm", "ex", "adsl", "adeff"):
        f = analysis / f"{name}.csv"
        if not f.is_file():
            continue
        frame = pd.read_csv(f)
        for col in [c for c in frame.columns if c in ("ARM", "ARMCD", "ACTARM", "ACTARMCD", "TRT01P", "TRT01A", "TRTP",
                                                       "TRTA", "EXTRT")]:
            values = set(frame[col].dropna().astype(str))
            assert not values & ({a.id for a in study.arms} | set(names)), f"{name}.{col}: {values}"
        if "EXDOSE" in frame.columns:
            assert frame["EXDOSE"].isna().all()


def test_the_scan_finds_a_leak_when_there_is_one(blinded_study, data_root: Path) -> None:
    # the check above must be able to fail: unblinded, the same outputs name the arms and show waveforms
    from toolkit.report import build_report
    from toolkit.store import open_store
    from toolkit.store.export import export_datasets

    study, _ = blinded_study
    with open_store(study) as store:
        store.lock(reason="test")
        store.unblind(reason="test")
        written = export_datasets(store, formats=("csv",))
    bundle = build_report(study.id, static=False)
    assert any("waveform" in f.title.lower() for f in bundle.figures)
    leaks = _leaks(study, (next(iter(written.values())).parent, bundle.root), data_root)
    assert any("arm name" in x for x in leaks) and any("Delivered waveform" in x for x in leaks), leaks


def test_report_photos_carry_no_metadata_and_faces_need_consent(data_root: Path, provision) -> None:
    import base64
    import io

    import matplotlib
    from PIL import Image

    from toolkit.photo_metadata import identifying_metadata
    from toolkit.report import build_report
    from toolkit.store import open_store
    from toolkit.study import load_study

    study = load_study(REPO / "studies" / "epmc-demo")
    provision(study)
    with open_store(study) as store:
        for sid, publication in (("S-001", True), ("S-002", False)):
            store.enroll_subject(sid, age=50, sex="F", fitzpatrick="III")
            store.record_consent(sid, signed_on=date(2026, 1, 5), publication=publication)
            store.record_checklist(sid, store.info.eligibility.all_met(), checked_on=date(2026, 1, 5))
    face = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    exif = Image.Exif()
    exif[0xA431] = "SN-0042-SECRET"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}
    for sid in ("S-001", "S-002"):
        folder = data_root / study.id / "photos" / "derived" / sid
        folder.mkdir(parents=True)
        face.save(folder / "001_BASELINE_frontal_wrinkles.jpg", exif=exif)
    bundle = build_report(study.id, static=False)
    pages = {p.name: p.read_text(encoding="utf-8") for p in (bundle.root / "figures").glob("*.html")}
    panels = {n: t for n, t in pages.items() if "Photographs with overlays" in t}
    assert len(panels) == 2
    assert sum("face masked" in t for t in panels.values()) == 1  # S-002 declined publication
    for name, page in pages.items():
        assert "SN-0042-SECRET" not in page
        for blob in re.findall(r"data:image/(?:png|jpeg);base64,([A-Za-z0-9+/=]+)", page):
            data = base64.b64decode(blob)
            assert identifying_metadata(data) == [], name
            assert not Image.open(io.BytesIO(data)).getexif(), name
