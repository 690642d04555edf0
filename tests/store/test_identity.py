"""Users, roles and permissions enforced in the store; e-signatures; the database lock."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, update

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store import open_store
from toolkit.store.audit import verify_audit
from toolkit.store.identity import AuthenticationError
from toolkit.store.roles import AccessDenied

from .conftest import enrol_eligible

PW = "test password 2026"


def _as(study, user, url=None):
    return open_store(study, url=url, user=user, password=PW)


def _allocated(study, randomized, url=None, n=2):
    randomized(study)
    with _as(study, "investigator", url) as store:
        for i in range(1, n + 1):
            enrol_eligible(store, f"S-00{i}")
            store.allocate(f"S-00{i}")


def _finish(store, subject, arm, tmp_path, name="w.csv"):
    did = store.start_delivery(subject, session_number=1, arm_id=arm, side=None, prescription={"duration_min": 1},
                               bench={}, instruments={}, settings={})
    wave = store.study_dir / "waveforms" / subject / name
    wave.parent.mkdir(parents=True, exist_ok=True)
    wave.write_text(f"t,v\n0,{subject}\n")
    import hashlib

    store.finish_delivery(did, outcome="completed", reason=None, dose={"charge_C": 1e-3}, verification=[],
                          waveforms=[(wave, hashlib.sha256(wave.read_bytes()).hexdigest())])
    return did


def test_wrong_password_unknown_and_disabled_users_are_refused(demo_study):
    with pytest.raises(AuthenticationError, match="wrong password for user operator"):
        open_store(demo_study, user="operator", password="not the password")
    with pytest.raises(AuthenticationError, match="no user 'nobody'"):
        open_store(demo_study, user="nobody", password=PW)
    with _as(demo_study, "tester") as store:
        store.disable_user("monitor", reason="left the study team")
        with pytest.raises(StoreError, match="cannot disable yourself"):
            store.disable_user("tester", reason="x")
    with pytest.raises(AuthenticationError, match="user monitor is disabled .*left the study team"):
        _as(demo_study, "monitor")


def test_roles_are_checked_when_users_are_added(demo_study):
    with _as(demo_study, "tester") as store:
        with pytest.raises(DataError, match="blinded_rater must stay blind .* cannot be combined with operator"):
            store.add_user("rx", full_name="R X", roles=["blinded_rater", "operator"], password=PW)
        with pytest.raises(DataError, match="unknown role 'nurse'"):
            store.add_user("nx", full_name="N X", roles=["nurse"], password=PW)
        with pytest.raises(StoreError, match="at least 10 characters"):
            store.add_user("px", full_name="P X", roles=["monitor"], password="short")
    with _as(demo_study, "investigator") as store, pytest.raises(AccessDenied, match="needs the role administrator"):
        store.add_user("ix", full_name="I X", roles=["monitor"], password=PW)


def test_permissions_hold_in_the_store_not_only_the_command_line(demo_study, randomized, tmp_path):
    _allocated(demo_study, randomized)
    with _as(demo_study, "rater") as store:
        assert store.subject("S-001").allocation is None  # raters never see allocations ...
        with pytest.raises(AccessDenied, match="rater .* may not see delivery records"):
            store.deliveries()  # ... nor doses
        with pytest.raises(AccessDenied, match="may not see which blinded code is which arm"):
            store.arm_codes()
        with pytest.raises(AccessDenied, match="may not randomise subjects"):
            store.allocate("S-001")
    with _as(demo_study, "statistician") as store:
        with pytest.raises(AccessDenied, match="may not unblind the study: that needs the role unblinded_statistician"):
            store.unblind(reason="curious")
        from toolkit.store.export import analysis_dataset

        with pytest.raises(AccessDenied, match="may not see real arms of a study that is still blinded"):
            analysis_dataset(store, blinded=False)
    with _as(demo_study, "operator") as store:
        with pytest.raises(AccessDenied, match="may not correct stored records"):
            store.update_record("subjects", 1, reason="typo", age=51)
        _finish(store, "S-001", store.subject("S-001").allocation.arm_id, tmp_path)
    with _as(demo_study, "datamanager") as store:
        with pytest.raises(StoreError, match="a reason is required"):
            store.update_record("subjects", 1, reason="", age=51)
        store.update_record("subjects", 1, reason="age transcribed wrongly", age=51)
    with _as(demo_study, "monitor") as store:
        assert store.subject("S-001").age == 51
        with pytest.raises(AccessDenied, match="may not enrol subjects"):
            enrol_eligible(store, "S-009")


def test_actor_comes_from_the_login(demo_study, randomized):
    _allocated(demo_study, randomized, n=1)
    from toolkit.store.audit import audit_trail

    with _as(demo_study, "investigator") as store:
        actors = {e["actor"] for e in audit_trail(store, table="subjects")}
    assert actors == {"investigator"}


def test_completed_session_is_signed_and_a_copied_or_stale_signature_fails(demo_study, randomized, tmp_path):
    _allocated(demo_study, randomized)
    with _as(demo_study, "operator") as store:
        a, b = (store.subject(s).allocation.arm_id for s in ("S-001", "S-002"))
        d1 = _finish(store, "S-001", a, tmp_path)
        d2 = _finish(store, "S-002", b, tmp_path)
        sigs = store.signatures("deliveries")
        assert [(s.record_id, s.meaning, s.signer, s.printed_name) for s in sigs] == [
            (d1, "performed", "operator", "Test Operator"), (d2, "performed", "operator", "Test Operator")]
        assert verify_audit(store).ok
        with store.engine.begin() as conn:  # copy the first signature onto the second record, behind the store
            conn.execute(update(m.SignatureRow.__table__).where(m.SignatureRow.id == sigs[1].signature_id)
                         .values(signature=conn.scalar(select(m.SignatureRow.signature).where(
                             m.SignatureRow.id == sigs[0].signature_id))))
        problems = verify_audit(store).signature_problems
        assert any(f"signature #{sigs[1].signature_id}" in p and "does not verify" in p for p in problems)
    with _as(demo_study, "datamanager") as store:
        store.update_record("deliveries", d1, reason="dose recomputed", dose={"charge_C": 2e-3})
        problems = verify_audit(store).signature_problems
        assert any(f"signature #{sigs[0].signature_id}" in p and "changed after it was signed" in p for p in problems)


def test_a_signature_made_with_someone_elses_key_fails(demo_study, randomized, tmp_path):
    _allocated(demo_study, randomized, n=1)
    with _as(demo_study, "operator") as store:
        _finish(store, "S-001", store.subject("S-001").allocation.arm_id, tmp_path)
        with store.engine.begin() as conn:  # claim the signature for the investigator
            conn.execute(update(m.SignatureRow.__table__).values(signer="investigator"))
        problems = verify_audit(store).signature_problems
        assert problems and "not investigator's signing key" in problems[0]


def test_lock_freezes_data_and_unlock_needs_a_signed_reason(demo_study, randomized, tmp_path):
    _allocated(demo_study, randomized, n=1)
    with _as(demo_study, "unblinder") as store, pytest.raises(StoreError, match="before its database is locked"):
        store.unblind(reason="final analysis")
    with _as(demo_study, "investigator") as store, pytest.raises(AccessDenied, match="may not lock"):
        store.lock(reason="x")
    with _as(demo_study, "datamanager") as store:
        store.lock(reason="all queries resolved")
        assert store.is_locked
    with _as(demo_study, "investigator") as store:
        with pytest.raises(StoreError, match="study epmc-demo is locked .* by datamanager: all queries resolved"):
            store.add_adverse_event("S-001", term="Erythema", soc="Skin", severity="mild", serious=False,
                                    relation="possible", onset=date(2026, 1, 9))
        assert store.adverse_events() == []
    with _as(demo_study, "datamanager") as store:
        with pytest.raises(DataError, match="give a reason"):
            store.unlock(reason=" ")
        store.unlock(reason="late lab query")
        assert [e.action for e in store.lock_history()] == ["lock", "unlock"]
        assert [s.meaning for s in store.signatures("study_locks")] == ["locked", "unlocked"]
        assert verify_audit(store).ok


def test_site_users_are_confined_to_their_site(demo_study, provision, randomized):
    with _as(demo_study, "tester") as store:
        store.add_site("PAR", name="Paris")
        store.add_site("LYO", name="Lyon")
        store.add_user("par-inv", full_name="Paris Investigator", roles=["investigator"], password=PW, site="PAR")
        store.add_user("lyo-inv", full_name="Lyon Investigator", roles=["investigator"], password=PW, site="LYO")
        with pytest.raises(DataError, match="site 'NYC' is not a site of this database; sites: LYO, PAR"):
            store.add_user("x-inv", full_name="X", roles=["investigator"], password=PW, site="NYC")
    with _as(demo_study, "par-inv") as store:
        enrol_eligible(store, "P-001")
        assert store.subject("P-001").site == "PAR"
        with pytest.raises(AccessDenied, match="enrols subjects at site PAR only, not at LYO"):
            store.enroll_subject("P-002", age=50, sex="F", fitzpatrick="III", site="LYO")
    with _as(demo_study, "lyo-inv") as store:
        enrol_eligible(store, "L-001")
        assert [s.subject_id for s in store.subjects()] == ["L-001"]
        with pytest.raises(AccessDenied, match="works at site LYO and may not change records of subject P-001 of site PAR"):
            store.record_consent("P-001", signed_on=date(2026, 1, 6))
            store.record_checklist("P-001", store.info.eligibility.all_met(), checked_on=date(2026, 1, 6))


@pytest.mark.no_users
def test_the_first_user_must_be_an_administrator(data_root):
    from toolkit.study.loader import load_study

    from .conftest import SPLITFACE

    st = load_study(SPLITFACE)
    with open_store(st, url=f"sqlite:///{data_root / 'fresh.db'}", login=False) as store:
        with pytest.raises(StoreError, match="the first user must be an administrator"):
            store.add_user("op", full_name="O P", roles=["operator"], password=PW)
        with pytest.raises(AuthenticationError, match="log in"):
            store.enroll_subject("S-001", age=50, sex="F", fitzpatrick="III")
        store.add_user("boss", full_name="B Oss", roles=["administrator"], password=PW)
        assert store.identity.username == "boss"
        with pytest.raises(AccessDenied, match="boss \\(administrator\\) may not enrol"):
            store.enroll_subject("S-001", age=50, sex="F", fitzpatrick="III")
        with store.engine.begin() as conn:
            assert conn.execute(select(m.UserRow.username)).scalars().all() == ["boss"]


def test_the_blinded_rater_scores_photos_without_seeing_subject_visit_or_arm(demo_study, randomized, photo_file):
    _allocated(demo_study, randomized, n=1)
    with _as(demo_study, "operator") as store:
        path, sha = photo_file("r1")
        store.add_photo("S-001", visit_id="BASELINE", path=path, sha256=sha)
    with _as(demo_study, "rater") as store:
        (item,) = store.rating_queue()
        assert set(vars(item)) == {"set_id", "scale", "photos", "repeat"} and "S-001" not in item.set_id
        aid = store.rate(item.set_id, score=2)
    with _as(demo_study, "monitor") as store:
        from toolkit.store.audit import audit_trail

        (entry,) = [e for e in audit_trail(store, table="assessments") if e["key"] == {"id": aid}]
        assert entry["actor"] == "rater" and entry["new"]["assessor"] == "Test Rater"
    with _as(demo_study, "statistician") as store, pytest.raises(AccessDenied, match="may not rate photos"):
        store.rating_queue()
