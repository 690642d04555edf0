"""The Store API on SQLite and on PostgreSQL: a subject walked through the study, and refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from toolkit.errors import DataError, StoreError
from toolkit.store import open_store

from .conftest import age_group, baseline_photos, enrol_eligible


def test_subject_walk_through_on_each_backend(db_url, demo_study, randomized, photo_file, tmp_path):
    frame = randomized(demo_study, 6)
    with open_store(demo_study, url=db_url) as store:
        enrol_eligible(store, "S-001", age=50)
        rec = store.subject("S-001")
        assert rec.eligible and rec.allocation is None
        alloc = store.allocate("S-001")
        # the first unused row of the subject's stratum, in randomisation-number order
        ge45 = frame[frame["age_group"] == "ge45"].sort_values("rand_no")
        assert alloc.rand_no == int(ge45.iloc[0]["rand_no"])
        assert alloc.arm_id == ge45.iloc[0]["arm"]
        assert alloc.code == frame.attrs["allocation"]["blinding_codes"][alloc.arm_id]
        assert store.allocate("S-001") == alloc  # idempotent
        assert store.subject("S-001").allocation == alloc

        start = datetime(2026, 1, 8, 9, 0, tzinfo=UTC)
        did = store.start_delivery(
            "S-001", session_number=1, arm_id=alloc.arm_id, side=None, prescription={"duration_min": 20},
            bench={"name": "twin"}, instruments={"generator": "TWIN,33500B,SN1"}, settings={"volt_V": 70.0},
            started_at=start,
        )  # fmt: skip
        wave = tmp_path / "wave.npy"
        wave.write_bytes(b"\x93NUMPY fake capture")
        import hashlib

        digest = hashlib.sha256(wave.read_bytes()).hexdigest()
        store.finish_delivery(
            did, outcome="aborted", reason="subject asked to stop", dose={"charge_C": 1.5e-3, "duration_s": 300.0},
            verification=[{"check": "amplitude", "ok": True}], waveforms=[(wave, digest)],
            ended_at=start + timedelta(minutes=5),
        )  # fmt: skip
        again = store.start_delivery(
            "S-001", session_number=1, arm_id=alloc.arm_id, side=None, prescription={}, bench={}, instruments={},
            settings={}, resumed_from=did,
        )  # fmt: skip
        store.finish_delivery(again, outcome="completed", reason=None, dose={}, verification=[], waveforms=[])
        d = store.deliveries("S-001")
        assert list(d["status"]) == ["aborted", "completed"]
        assert d.iloc[1]["resumed_from"] == did
        assert d.iloc[0]["waveforms"] == [{"path": str(wave.resolve()), "sha256": digest}]
        assert d.iloc[0]["started_at"] == start
        assert d.iloc[0]["settings"] == {"volt_V": 70.0}

        path, sha = photo_file("s001-bl")
        pid = store.add_photo("S-001", visit_id="BASELINE", path=path, sha256=sha, meta={"camera": "X"})
        assert [p.photo_id for p in store.pending_photos()] == [pid]
        metrics = pd.DataFrame(
            {
                "region": ["nasolabial_l", "nasolabial_r"],
                "wrinkle_length_mm": [12.5, 11.0],
                "lift_mm": [0.0, 0.1],
            }
        )
        store.add_measurements(pid, metrics, algorithm_version="wrinkles 1.0", qc={"blur_ok": True})
        assert store.pending_photos() == []
        meas = store.measurements()
        assert len(meas) == 4
        assert (
            meas.set_index(["region", "metric"]).loc[("nasolabial_r", "wrinkle_length_mm"), "value"] == 11.0
        )

        ae = store.add_adverse_event(
            "S-001", term="Erythema", soc="Skin and subcutaneous tissue disorders", severity="moderate",
            serious=True, relation="possible", onset=date(2026, 1, 8),
        )  # fmt: skip
        assert [a.ae_id for a in store.unresolved_serious_aes("S-001")] == [ae]
        store.update_record(
            "adverse_events", ae, reason="resolution date from source", resolved=date(2026, 1, 12)
        )
        assert store.unresolved_serious_aes("S-001") == []
        store.add_assessment("S-001", visit_id="BASELINE", scale="WSRS", score=4, assessor="Dr B",
                             assessed_on=date(2026, 1, 7))
        store.add_deviation("S-001", description="visit S4 out of window", category="minor")


def test_reopen_keeps_records_and_definition(demo_study, randomized):
    randomized(demo_study, 3)
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        db = store.database
    assert Path(db).name == "study.db"
    # a store opened by id alone reads the study facts stored with the records
    with open_store("epmc-demo") as again:
        assert again.subject("S-001").age == 50
        assert [a.id for a in again.info.arms] == ["EP", "MC", "SHAM"]
        assert again.info.baseline_visit.id == "BASELINE"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sex": "X"}, "sex 'X' is not accepted; accepted: F, M, U"),
        ({"fitzpatrick": "VII"}, "Fitzpatrick skin type; accepted: I–VI"),
        ({"age": 12}, "age 12 is outside 18–120"),
        ({"strata": {"age_group": "old"}}, "strata do not match"),
        ({"age": 30, "strata": {"age_group": "ge45"}}, "contradicts the subject's age 30"),
    ],
)
def test_enrolment_refuses_bad_demographics(demo_study, kwargs, message):
    args = {"age": 50, "sex": "F", "fitzpatrick": "III", "strata": {"age_group": "ge45"}} | kwargs
    with open_store(demo_study) as store:
        with pytest.raises(DataError, match=message.replace("(", r"\(")):
            store.enroll_subject("S-001", **args)
        assert store.subjects() == []


def test_refusals_name_the_problem(demo_study, randomized, photo_file):
    with open_store(demo_study) as store:
        store.enroll_subject("S-001", age=50, sex="F", fitzpatrick="V", strata={"age_group": "ge45"})
        with pytest.raises(StoreError, match="already enrolled"):
            store.enroll_subject("S-001", age=50, sex="F", fitzpatrick="III", strata={"age_group": "ge45"})
        with pytest.raises(StoreError, match="'S-404' is not enrolled"):
            store.record_consent("S-404", signed_on=date(2026, 1, 1))
        with pytest.raises(StoreError, match="record consent before the patch test"):
            store.record_patch_test("S-001", passed=True, read_on=date(2026, 1, 2))
        store.record_consent("S-001", signed_on=date(2026, 1, 1))
        with pytest.raises(DataError, match="patch test read_on 2025-12-30 is before the consent signed on 2026-01-01"):
            store.record_patch_test("S-001", passed=True, read_on=date(2025, 12, 30))
        store.record_patch_test("S-001", passed=True, read_on=date(2026, 1, 2))
        # Fitzpatrick V is outside the demo study's I–IV, and no checklist was answered
        assert store.subject("S-001").unmet == ["eligibility checklist met", "Fitzpatrick type I/II/III/IV"]
        with pytest.raises(StoreError, match="cannot be randomised: not met: eligibility checklist met, Fitzpatrick"):
            store.allocate("S-001")
        enrol_eligible(store, "S-002")
        with pytest.raises(StoreError, match="run `toolkit study randomize`"):
            store.allocate("S-002")
        with pytest.raises(DataError, match="in the future"):
            store.record_consent("S-002", signed_on=date.today() + timedelta(days=3))
        path, sha = photo_file("x")
        with pytest.raises(DataError, match="SHA-256 is"):
            store.add_photo("S-002", visit_id="BASELINE", path=path, sha256="0" * 64)
        with pytest.raises(DataError, match="visit 'W99' is not a visit"):
            store.add_photo("S-002", visit_id="W99", path=path, sha256=sha)
        store.add_photo("S-002", visit_id="BASELINE", path=path, sha256=sha)
        with pytest.raises(StoreError, match="already stored as photo"):
            store.add_photo("S-002", visit_id="S4", path=path, sha256=sha)
        with pytest.raises(DataError, match="WSRS score 9 is outside"):
            store.add_assessment("S-002", visit_id="BASELINE", scale="WSRS", score=9, assessor="x",
                                 assessed_on=date(2026, 1, 7))
        with pytest.raises(DataError, match="scale 'FOO' is not a scale"):
            store.add_assessment("S-002", visit_id="BASELINE", scale="FOO", score=1, assessor="x",
                                 assessed_on=date(2026, 1, 7))
        with pytest.raises(DataError, match="resolved 2026-01-01 is before onset"):
            store.add_adverse_event(
                "S-002", term="t", soc="s", severity="mild", serious=False, relation="unlikely",
                onset=date(2026, 1, 5), resolved=date(2026, 1, 1),
            )  # fmt: skip
        with pytest.raises(DataError, match="severity 'grave' is not accepted"):
            store.add_adverse_event(
                "S-002",
                term="t",
                soc="s",
                severity="grave",
                serious=False,
                relation="unlikely",
                onset=date(2026, 1, 5),
            )


def test_allocation_is_stratified_and_exhaustible(demo_study, randomized):
    frame = randomized(demo_study, 3)  # one block of 3 per stratum
    with open_store(demo_study) as store:
        lt45 = frame[frame["age_group"] == "lt45"].sort_values("rand_no")
        got = []
        for i in range(len(lt45)):
            enrol_eligible(store, f"Y-{i}", age=35)
            got.append(store.allocate(f"Y-{i}").rand_no)
        assert got == list(lt45["rand_no"])
        enrol_eligible(store, "Y-9", age=35)
        with pytest.raises(StoreError, match="exhausted for stratum age_group=lt45"):
            store.allocate("Y-9")
        # the other stratum is untouched
        enrol_eligible(store, "O-1", age=60)
        assert store.allocate("O-1").stratum == "age_group=ge45"
        assert age_group(60) == "ge45"


def test_delivery_of_the_wrong_arm_is_refused(demo_study, randomized):
    randomized(demo_study, 3)
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        with pytest.raises(StoreError, match="not randomised"):
            store.start_delivery(
                "S-001", session_number=1, arm_id="EP", side=None, prescription={}, bench={}, instruments={},
                settings={},
            )  # fmt: skip
        arm = store.allocate("S-001").arm_id
        other = next(a for a in ("EP", "MC", "SHAM") if a != arm)
        with pytest.raises(StoreError, match=f"allocated to arm '{arm}', not '{other}'"):
            store.start_delivery(
                "S-001", session_number=1, arm_id=other, side=None, prescription={}, bench={}, instruments={},
                settings={},
            )  # fmt: skip
        did = store.start_delivery(
            "S-001",
            session_number=1,
            arm_id=arm,
            side=None,
            prescription={},
            bench={},
            instruments={},
            settings={},
        )
        with pytest.raises(DataError, match="needs a reason"):
            store.finish_delivery(did, outcome="aborted", reason=None, dose={}, verification=[], waveforms=[])
        with pytest.raises(DataError, match="outcome 'done' is not accepted"):
            store.finish_delivery(did, outcome="done", reason=None, dose={}, verification=[], waveforms=[])
        store.finish_delivery(
            did,
            outcome="output_state_unknown",
            reason="lost connection",
            dose={},
            verification=[],
            waveforms=[],
        )
        with pytest.raises(StoreError, match="already ended"):
            store.finish_delivery(
                did, outcome="completed", reason=None, dose={}, verification=[], waveforms=[]
            )
        assert store.deliveries().iloc[0]["status"] == "output_state_unknown"


def test_split_face_allocation_has_a_side_map(splitface_study, randomized):
    frame = randomized(splitface_study, 2)
    with open_store(splitface_study) as store:
        level = splitface_study.randomization.factors[0].levels[0]
        enrol_eligible(store, "S-001", strata={"fitzpatrick_group": level}, fitzpatrick="II")
        alloc = store.allocate("S-001")
        row = frame[frame["rand_no"] == alloc.rand_no].iloc[0]
        assert alloc.side_map == {row["side_EP"]: "EP", row["side_MC"]: "MC"}
        right_arm = alloc.side_map["right"]
        with pytest.raises(StoreError, match="on the left side"):
            store.start_delivery(
                "S-001", session_number=1, arm_id=right_arm, side="left", prescription={}, bench={},
                instruments={}, settings={},
            )  # fmt: skip
        store.start_delivery(
            "S-001", session_number=1, arm_id=right_arm, side="right", prescription={}, bench={}, instruments={},
            settings={},
        )  # fmt: skip


def test_batched_measurement_runs_are_all_or_nothing(demo_study, photo_file):
    with open_store(demo_study) as store:
        ids = baseline_photos(store, photo_file, 3)
        frame = pd.DataFrame({"region": ["forehead", "glabella"], "wrinkle_count": [3, 5]})
        with pytest.raises(StoreError, match="no photo #999"):
            store.add_measurement_runs([(ids[0], frame, {}), (999, frame, {})], algorithm_version="v1")
        assert len(store.pending_photos()) == 3 and store.measurements().empty
        runs = store.add_measurement_runs([(pid, frame, {"k": pid}) for pid in ids], algorithm_version="v1")
        assert len(runs) == 3 and store.pending_photos() == []
        assert store.measurements()["value"].tolist() == [3.0, 5.0] * 3
        # a re-analysis with a newer algorithm supersedes the old values
        store.add_measurements(ids[0], frame.assign(wrinkle_count=[4, 6]), algorithm_version="v2", qc={})
        latest = store.measurements()
        assert latest.loc[latest["photo_id"] == ids[0], "value"].tolist() == [4.0, 6.0]
        assert set(latest["algorithm_version"]) == {"v1", "v2"}
