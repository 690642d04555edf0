"""What the site's forms write: the screening checklist with consent, adverse events with session of onset,
action and outcome, corrections by the site with a reason, and the blinded rater's photo sets."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from toolkit.errors import DataError, StoreError
from toolkit.store import open_store
from toolkit.store.roles import AccessDenied

from .conftest import enrol_eligible

TEST_PASSWORD = "test password 2026"  # the test users' password (tests/conftest.py)

CONSENT = date(2026, 1, 5)


def _as(study, user):
    return open_store(study, user=user, password=TEST_PASSWORD)


def _enrol(store, sid="S-001", **over):
    args = {"age": 50, "sex": "F", "fitzpatrick": "III", "consent_signed_on": CONSENT,
            "checklist": store.info.eligibility.all_met(), "checked_on": CONSENT} | over
    return store.enroll_subject(sid, **args)


def test_enrolment_with_consent_and_checklist_is_one_transaction(demo_study):
    with _as(demo_study, "investigator") as store:
        answers = store.info.eligibility.all_met()
        bad = answers | {"epilepsy": True, "attends_course": False}
        del bad["metal_facial_implant"]
        with pytest.raises(DataError) as info:
            _enrol(store, checklist=bad)
        assert set(info.value.fields) == {"checklist.epilepsy", "checklist.attends_course",
                                          "checklist.metal_facial_implant"}
        assert info.value.fields["checklist.epilepsy"] == "exclusion applies: Epilepsy"
        assert info.value.fields["checklist.metal_facial_implant"].startswith("not answered: Metal implant")
        with pytest.raises(DataError) as info:
            _enrol(store, checked_on=CONSENT - timedelta(days=1))
        assert info.value.fields == {"checked_on": "the checklist (2026-01-04) cannot come before the consent "
                                                   "(2026-01-05): consent first"}
        with pytest.raises(DataError) as info:
            _enrol(store, age=29, fitzpatrick="V")
        assert set(info.value.fields) == {"age", "fitzpatrick"} and "30–65" in info.value.fields["age"]
        with pytest.raises(DataError) as info:
            _enrol(store, consent_signed_on=date.today() + timedelta(days=1))
        assert set(info.value.fields) == {"consent_signed_on"}
        assert store.subjects() == []  # nothing half-written
        rec = _enrol(store, publication=True)
        assert rec.consent_signed_on == CONSENT and rec.publication_consent is True
        assert rec.checklist == answers and rec.checked_on == CONSENT
        assert rec.strata == {"age_group": "ge45"}  # derived from the age
        assert "eligibility checklist met" in rec.eligibility
        with pytest.raises(StoreError) as info:
            _enrol(store)
        assert info.value.fields == {"subject_id": "subject 'S-001' is already enrolled in study epmc-demo"}


def test_a_checklist_needs_the_consent_first(demo_study, randomized):
    randomized(demo_study, 3)
    with _as(demo_study, "investigator") as store:
        store.enroll_subject("S-002", age=40, sex="M", fitzpatrick="II")
        with pytest.raises(StoreError, match="record the signed consent first"):
            store.record_checklist("S-002", store.info.eligibility.all_met())
        store.record_consent("S-002", signed_on=CONSENT)
        store.record_patch_test("S-002", passed=True, read_on=CONSENT + timedelta(days=2))
        with pytest.raises(StoreError, match="not met: eligibility checklist met"):
            store.allocate("S-002")
        store.record_checklist("S-002", store.info.eligibility.all_met(), checked_on=CONSENT)
        assert store.allocate("S-002").rand_no >= 1


def _delivered(store, sid, tmp_path, day):
    import hashlib

    arm = store.subject(sid).allocation.arm_id
    did = store.start_delivery(sid, session_number=1, arm_id=arm, side=None, prescription={"duration_min": 1},
                               bench={}, instruments={}, settings={})
    wave = tmp_path / f"{sid}.csv"
    wave.write_text("t,v\n0,1\n")
    store.finish_delivery(did, outcome="completed", reason=None, dose={"charge_C": 1e-3}, verification=[],
                          waveforms=[(wave, hashlib.sha256(wave.read_bytes()).hexdigest())])
    return day


def test_adverse_events_with_session_action_outcome_and_site_corrections(demo_study, randomized, tmp_path):
    randomized(demo_study, 3)
    today = date.today()
    with _as(demo_study, "investigator") as store:
        enrol_eligible(store, "S-001")
        store.allocate("S-001")
        _delivered(store, "S-001", tmp_path, today)
        base = {"term": "redness at electrode site", "severity": "mild", "serious": False, "relation": "possible",
                "onset": today}
        with pytest.raises(DataError) as info:
            store.add_adverse_event("S-001", **base, session_number=2)
        assert info.value.fields == {"session_number": "session of onset 2: subject S-001 has no session 2 on "
                                                       "record"}
        with pytest.raises(DataError) as info:
            store.add_adverse_event("S-001", **base | {"onset": today - timedelta(days=3)}, session_number=1)
        assert set(info.value.fields) == {"session_number"} and "after the onset" in str(info.value)
        with pytest.raises(DataError) as info:
            store.add_adverse_event("S-001", **base | {"onset": today},
                                    resolved=today - timedelta(days=1))
        assert set(info.value.fields) == {"resolved"}
        with pytest.raises(DataError) as info:
            store.add_adverse_event("S-001", **base, outcome="recovered/resolved")
        assert info.value.fields == {"resolved": "outcome 'recovered/resolved' needs the date the event ended"}
        with pytest.raises(DataError) as info:
            store.add_adverse_event("S-001", **base | {"term": "felt odd"})
        assert set(info.value.fields) == {"soc"}  # not in the dictionary: a SOC must be chosen
        ae = store.add_adverse_event("S-001", **base, session_number=1, action_taken="dose not changed",
                                     outcome="recovering/resolving")
        (rec,) = store.adverse_events("S-001")
        # the starter dictionary codes the verbatim term: its SOC is filled in
        assert rec.soc == "General disorders and administration site conditions"
        assert (rec.session_number, rec.action_taken, rec.outcome) == (1, "dose not changed", "recovering/resolving")
        sae = store.add_adverse_event("S-001", **base | {"term": "Syncope", "serious": True},
                                      soc="Nervous system disorders")
        assert [a.ae_id for a in store.unresolved_serious_aes("S-001")] == [sae]
        # the site corrects its own entry, with a reason, through the same checks
        with pytest.raises(StoreError) as info:
            store.update_record("adverse_events", ae, reason=" ", severity="moderate")
        assert set(info.value.fields) == {"reason"}
        with pytest.raises(DataError) as info:
            store.correct_adverse_event(ae, reason="end date from source", resolved=today - timedelta(days=1))
        assert set(info.value.fields) == {"resolved"}
        store.correct_adverse_event(sae, reason="resolved per hospital letter", resolved=today,
                                    outcome="recovered/resolved")
        assert store.unresolved_serious_aes("S-001") == []
    from toolkit.store.audit import audit_trail

    with _as(demo_study, "monitor") as store:
        (entry,) = [e for e in audit_trail(store, table="adverse_events") if e["action"] == "update"]
        assert entry["reason"] == "resolved per hospital letter" and entry["actor"] == "investigator"
        assert entry["new"]["outcome"] == "recovered/resolved"
    with _as(demo_study, "rater") as store, pytest.raises(AccessDenied,
                                                          match="may not correct stored records of adverse_events"):
        store.update_record("adverse_events", ae, reason="x", severity="severe")


def _rating_study(data_root):
    """The demo study with every scale set graded twice by each rater (re-rating fraction 1)."""
    from toolkit.study import load_study

    text = (demo_path() / "study.yaml").read_text()
    text = text.replace("    rater: blinded_evaluator\n", "    rater: blinded_evaluator\n    rerate_fraction: 1\n")
    folder = data_root.parent / "rating-study" / "epmc-demo"
    folder.mkdir(parents=True)
    (folder / "study.yaml").write_text(text)
    return load_study(folder)


def demo_path():
    from .conftest import DEMO

    return DEMO


def test_the_rater_grades_sets_blind_once_each_then_the_re_rating_subset(demo_study, randomized, photo_file,
                                                                          provision, data_root):
    study = _rating_study(data_root)
    provision(study)
    randomized(study, 3)
    with _as(study, "tester") as store:
        store.add_user("rater2", full_name="Second Rater", roles=["blinded_rater"], password=TEST_PASSWORD)
        for sid in ("S-001", "S-002"):
            enrol_eligible(store, sid)
            for visit in ("BASELINE", "S12"):
                path, sha = photo_file(f"{sid}-{visit}")
                store.add_photo(sid, visit_id=visit, path=path, sha256=sha)
    with _as(study, "rater") as store:
        queue = store.rating_queue()
        # WSRS at BASELINE and S12 for two subjects, GAIS (S12 against baseline) for two
        assert sorted((q.scale, q.photos) for q in queue) == [("GAIS", 2)] * 2 + [("WSRS", 1)] * 4
        assert not any(q.repeat for q in queue)
        images = store.rating_images(queue[0].set_id)
        assert all(b[:2] == b"\xff\xd8" and b"Exif" not in b[:4096] and b"S-00" not in b for b in images)
        first = queue[0]
        store.rate(first.set_id, score=3)
        with pytest.raises(StoreError) as info:
            store.rate(first.set_id, score=4)
        assert "already graded by Test Rater" in str(info.value) and set(info.value.fields) == {"set_id"}
        with pytest.raises(DataError, match="score 7 is outside"):
            store.rate(queue[1].set_id, score=7)
        progress = store.rating_progress()
        assert (progress["rated"], progress["sets"]) == (1, 6)
    # a second window of the same rater resumes where the first stopped
    with _as(study, "rater") as store:
        assert [q.set_id for q in store.rating_queue()] == [q.set_id for q in queue[1:]]
        for q in queue[1:]:
            store.rate(q.set_id, score=2 if q.scale == "WSRS" else 3)
        again = store.rating_queue()
        assert again and all(q.repeat for q in again) and len(again) == 6
        with pytest.raises(StoreError, match="is already graded by Test Rater: one rating"):
            store.rate(again[0].set_id, score=2)  # the first rating again, not the re-rating
        for q in again:
            store.rate(q.set_id, score=3 if q.set_id == first.set_id else 2, repeat=True)
        assert store.rating_queue() == []
    with _as(study, "rater2") as store:
        order = [q.set_id for q in store.rating_queue()]
        assert sorted(order) == sorted(q.set_id for q in queue) and order != [q.set_id for q in queue]
    with _as(study, "monitor") as store:
        ratings = store.rating_records()
        assert len(ratings) == 12 and set(ratings["repeat"]) == {0, 1}
        assert set(ratings.columns) == {"set_id", "scale", "rater", "repeat", "score"}
        with pytest.raises(AccessDenied, match="data_manager"):
            store.rating_set_key()  # which subject a set shows is for the data manager
    with _as(study, "rater") as store, pytest.raises(AccessDenied):
        store.rating_set_key()
    with _as(study, "datamanager") as store:
        key = store.rating_set_key().set_index("set_id")
        assert sorted(key.index) == sorted(q.set_id for q in queue)
        assert sorted(zip(key["scale"], key["subject_id"], key["visit_id"], key["photos"], strict=True)) == [
            ("GAIS", "S-001", "S12", 2), ("GAIS", "S-002", "S12", 2), ("WSRS", "S-001", "BASELINE", 1),
            ("WSRS", "S-001", "S12", 1), ("WSRS", "S-002", "BASELINE", 1), ("WSRS", "S-002", "S12", 1)]
        # in SDTM the blind re-grade is its own record, told apart by the photo set it graded
        from toolkit.store.datasets import StudyRecords
        from toolkit.store.sdtm import xf_domain

        xf = xf_domain(StudyRecords(store)).frame
        graded = xf[xf["XFCAT"] == "CLINICIAN SCALE"]
        assert len(graded) == 12 and not graded.duplicated(["USUBJID", "XFTESTCD", "VISITNUM", "XFREFID",
                                                            "XFEVAL"]).any()
        assert graded["XFREFID"].str.endswith(" REGRADE").sum() == 6
        assert set(graded["XFREFID"].str.split().str[2]) == set(key.index)


def test_two_windows_cannot_file_one_set_twice(demo_study, randomized, photo_file):
    randomized(demo_study, 3)
    with _as(demo_study, "investigator") as store:
        enrol_eligible(store, "S-001")
        path, sha = photo_file("one")
        store.add_photo("S-001", visit_id="BASELINE", path=path, sha256=sha)
    with _as(demo_study, "rater") as a, _as(demo_study, "rater") as b:
        (item,) = a.rating_queue()
        assert [q.set_id for q in b.rating_queue()] == [item.set_id]
        a.rate(item.set_id, score=3)
        with pytest.raises(StoreError, match="already graded"):
            b.rate(item.set_id, score=4)
        ratings = a.rating_records()
    assert list(ratings["score"]) == [3.0]
