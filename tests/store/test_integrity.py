"""The audit head anchored outside the database; never starting over; the allocation ledger; backup/restore."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import text

from toolkit.errors import DataError, StoreError
from toolkit.store import open_store
from toolkit.store.audit import verify_audit
from toolkit.store.backup import backup_store, restore_store

from .conftest import enrol_eligible

PW = "test password 2026"


def _drop_guards(store):
    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))


def test_tail_truncation_is_detected_by_the_anchor(demo_study):
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        enrol_eligible(store, "S-002")
        assert verify_audit(store).ok
        _drop_guards(store)
        with store.engine.begin() as conn:  # remove S-002 and every audit entry that recorded it
            first = conn.scalar(text("SELECT min(seq) FROM audit_log WHERE row_key LIKE '%' AND new_values LIKE '%S-002%'"))
            pk = conn.scalar(text("SELECT id FROM subjects WHERE subject_id = 'S-002'"))
            conn.execute(text("DELETE FROM patch_tests WHERE subject_pk = :p"), {"p": pk})
            conn.execute(text("DELETE FROM consents WHERE subject_pk = :p"), {"p": pk})
            conn.execute(text("DELETE FROM eligibility_checks WHERE subject_pk = :p"), {"p": pk})
            conn.execute(text("DELETE FROM subjects WHERE id = :p"), {"p": pk})
            conn.execute(text("DELETE FROM audit_log WHERE seq >= :s"), {"s": first})
        report = verify_audit(store)
        assert report.first_broken is None and not report.data_problems  # the chain alone looks intact ...
        assert not report.ok and "database ends at" in report.anchor_problems[0]  # ... the anchor does not
        with pytest.raises(StoreError, match="does not match the audit anchor .*Nothing is written"):
            enrol_eligible(store, "S-003")


def test_rollback_to_an_older_copy_is_detected(demo_study, data_root):
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        db = store.url.database
    shutil.copy(db, data_root / "old.db")
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-002")
    shutil.copy(data_root / "old.db", db)  # an older copy put back in place
    with open_store(demo_study) as store:
        report = verify_audit(store)
        assert not report.ok and any("older copy" in p for p in report.anchor_problems)
        with pytest.raises(StoreError, match="does not match the audit anchor"):
            enrol_eligible(store, "S-003")


def test_a_missing_anchor_file_is_named(demo_study):
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        store.anchor_path.unlink()
        report = verify_audit(store)
    assert not report.ok and report.anchor_problems[0].startswith(f"the audit anchor file {store.anchor_path} is missing")


def test_an_altered_anchor_line_fails_its_signature(demo_study):
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        lines = store.anchor_path.read_text().splitlines()
        doc = json.loads(lines[-1])
        doc["user"] = "investigator"
        lines[-1] = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        store.anchor_path.write_text("\n".join(lines) + "\n")
        problems = verify_audit(store).anchor_problems
    assert any("signature of investigator does not verify" in p for p in problems)


def test_a_lost_database_is_never_silently_replaced(demo_study, randomized, data_root):
    randomized(demo_study)
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        store.allocate("S-001")
        db = store.url.database
    (data_root / "away").mkdir()
    for suffix in ("", "-wal", "-shm"):
        p = data_root / "epmc-demo" / f"study.db{suffix}"
        if p.exists():
            shutil.move(p, data_root / "away" / p.name)
    with pytest.raises(StoreError) as info:
        open_store(demo_study)
    message = str(info.value)
    assert f"the database {db} is missing" in message and "allocation ledger with 1 randomisation number" in message
    assert "toolkit data restore" in message
    assert not (data_root / "epmc-demo" / "study.db").exists()  # nothing was created


def test_the_ledger_never_hands_a_number_out_twice(demo_study, randomized, data_root):
    randomized(demo_study)
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        backup = backup_store(store)
        first = store.allocate("S-001").rand_no
    restore_store(demo_study, backup.folder, reason="test: back to before the allocation")
    with open_store(demo_study) as store:
        assert store.subject("S-001").allocation is None  # the database forgot it ...
        again = store.allocate("S-001").rand_no
        assert again != first  # ... the ledger did not
        report = verify_audit(store)
        assert report.ok, report.problems()


def test_backup_and_restore_verify_and_record_what_was_given_up(demo_study, data_root):
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        info = backup_store(store)
        enrol_eligible(store, "S-002")
        head_before = verify_audit(store).entries
    manifest = json.loads((info.folder / "backup.json").read_text())
    assert manifest["audit_head"]["seq"] == info.head_seq < head_before
    restore_store(demo_study, info.folder, reason="test restore")
    with open_store(demo_study) as store:
        assert [s.subject_id for s in store.subjects()] == ["S-001"]
        report = verify_audit(store)
        assert report.ok, report.problems()
        enrol_eligible(store, "S-003")  # writable again
        assert verify_audit(store).ok
    restore = [json.loads(x) for x in (data_root / "epmc-demo" / "audit-anchors.jsonl").read_text().splitlines()
               if '"restore"' in x][-1]
    assert restore["user"] == "tester" and restore["extra"]["entries_given_up"] > 0
    assert list((data_root / "epmc-demo").glob("study.db.replaced-*"))  # the replaced file is kept


def test_a_damaged_or_foreign_backup_is_refused(demo_study, splitface_study, data_root):
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        info = backup_store(store)
    with pytest.raises(DataError, match="is of study epmc-demo, not epmc-splitface"):
        restore_store(splitface_study, info.folder, reason="x")
    db = info.folder / "study.db"
    db.write_bytes(db.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(DataError, match="study.db does not match its SHA-256 .* nothing was restored"):
        restore_store(demo_study, info.folder, reason="x")
    with pytest.raises(DataError, match="not a readable backup manifest"):
        restore_store(demo_study, data_root, reason="x")


@pytest.mark.postgres
def test_backup_and_restore_on_postgres(demo_study, postgres_url, provision):
    provision(demo_study, postgres_url)
    with open_store(demo_study, url=postgres_url) as store:
        enrol_eligible(store, "P-001")
        info = backup_store(store)
        enrol_eligible(store, "P-002")
    assert (info.folder / "study.pgdump").stat().st_size > 0
    restore_store(demo_study, info.folder, reason="test restore on PostgreSQL", url=postgres_url)
    with open_store(demo_study, url=postgres_url) as store:
        assert [s.subject_id for s in store.subjects()] == ["P-001"]
        report = verify_audit(store)
        assert report.ok, report.problems()
