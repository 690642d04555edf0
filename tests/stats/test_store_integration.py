"""`toolkit analyze --study` reading the BDS dataset from a real SQLite study store."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

EFFECT_MM = {"EP": -3.0, "MC": -2.0, "SHAM": 0.0}  # true change of the total fold length (NLFLEN) at S12


def _photo(tmp_path: Path, name: str) -> tuple[Path, str]:
    import matplotlib

    base = (Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").read_bytes()
    tag = name.encode()
    # a JPEG comment segment after SOI keeps the image valid and makes each file distinct
    payload = base[:2] + b"\xff\xfe" + (len(tag) + 2).to_bytes(2, "big") + tag + base[2:]
    path = tmp_path / "photos" / f"{name}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path, hashlib.sha256(payload).hexdigest()


def test_analyze_from_the_study_store(
    repo_root: Path, data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], provision
) -> None:
    from toolkit.cli import main
    from toolkit.store import open_store
    from toolkit.study import load_study
    from toolkit.study.allocation import randomize, write_allocation

    study = load_study(repo_root / "studies" / "epmc-demo")
    n = 18
    write_allocation(study, randomize(study, n, per_stratum=True))
    provision(study)
    rng = np.random.default_rng(5)
    with open_store(study) as store:
        for i in range(n):
            sid = f"S-{i + 1:03d}"
            age = 30 + (i * 7) % 35
            store.enroll_subject(sid, age=age, sex="F", fitzpatrick="III",
                                 strata={"age_group": "lt45" if age < 45 else "ge45"})  # fmt: skip
            store.record_consent(sid, signed_on=date(2026, 1, 5))
            store.record_checklist(sid, store.info.eligibility.all_met(), checked_on=date(2026, 1, 5))
            store.record_patch_test(sid, passed=True, read_on=date(2026, 1, 7))
            arm = store.allocate(sid).arm_id
            base = rng.normal(40.0, 4.0)
            for visit, frac in (("BASELINE", None), ("S4", 1 / 3), ("S12", 1.0)):
                value = base if frac is None else base + EFFECT_MM[arm] * frac + rng.normal(0, 0.8)
                path, sha = _photo(tmp_path, f"{sid}-{visit}")
                pid = store.add_photo(sid, visit_id=visit, path=path, sha256=sha)
                rows = [("nasolabial_l", "wrinkle_length_mm", value / 2), ("nasolabial_r", "wrinkle_length_mm", value / 2),
                        ("nasolabial_l", "wrinkle_depth_index", 12 * value), ("nasolabial_r", "wrinkle_depth_index", 12 * value),
                        ("jawline_l", "lift_mm", 1.0 + rng.normal(0, 0.3)), ("jawline_r", "lift_mm", 1.0)]  # fmt: skip
                frame = pd.DataFrame(rows, columns=["region", "metric", "value"])
                store.add_measurements(pid, frame, algorithm_version="test 1.0", qc={})
        store.lock(reason="analysis test: every record in")
        store.unblind(reason="analysis test")
    with pytest.raises(SystemExit) as done:
        main(["analyze", "--study", str(repo_root / "studies" / "epmc-demo")])
    captured = capsys.readouterr()
    # no sessions were delivered, so the per-protocol population is empty: that analysis is reported as
    # failed (exit 1) and every other analysis is written
    assert done.value.code == 1, captured.err
    assert "HEAD2HEAD" in captured.err and "PPROTFL" in captured.err and "Traceback" not in captured.err
    results = data_root / "epmc-demo" / "analysis" / "results"
    meta = json.loads((results / "results.json").read_text())
    assert list(meta["failures"]) == ["HEAD2HEAD"]
    contrasts = pd.read_csv(results / "PRIMARY_contrasts.csv").set_index("contrast")
    row = contrasts.loc["EP - SHAM"]
    assert row.ci_low < EFFECT_MM["EP"] < row.ci_high
    assert (results / "demographics.csv").is_file()
