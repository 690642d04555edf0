"""The audit trail: who/when/what/why, reasons required, append-only, and tampering detected."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from toolkit.errors import CheckFailed, DataError, StoreError
from toolkit.store import models as m
from toolkit.store import open_store
from toolkit.store.audit import GENESIS_HASH, audit_trail, entry_hash, verify_audit

from .conftest import DEMO, baseline_photos, enrol_eligible, run_cli


def _walk(store, photo_file, tmp_path):
    enrol_eligible(store, "S-001")
    path, sha = photo_file("a")
    store.add_photo("S-001", visit_id="BASELINE", path=path, sha256=sha)
    return path


def test_every_change_is_recorded_with_who_when_what_why(db_url, demo_study):
    with open_store(demo_study, url=db_url) as store:
        before = datetime.now().astimezone()
        enrol_eligible(store, "S-001")
        ae = store.add_adverse_event(
            "S-001", term="Tingling", soc="Nervous system disorders", severity="mild", serious=False,
            relation="related", onset=date(2026, 1, 9),
        )  # fmt: skip
        with pytest.raises(StoreError, match="a reason is required to change a row of 'adverse_events'"):
            store.update_record("adverse_events", ae, reason="", severity="moderate")
        with pytest.raises(StoreError, match="a reason is required to delete a row of 'adverse_events'"):
            store.delete_record("adverse_events", ae, reason="  ")
        store.update_record("adverse_events", ae, reason="grading corrected", severity="moderate")
        store.delete_record("adverse_events", ae, reason="entered for the wrong subject")

        trail = audit_trail(store, table="adverse_events")
        assert [e["action"] for e in trail] == ["insert", "update", "delete"]
        ins, upd, dele = trail
        assert ins["new"]["term"] == "Tingling" and ins["old"] is None
        assert upd["old"] == {"severity": "mild"} and upd["new"] == {"severity": "moderate"}
        assert upd["reason"] == "grading corrected"
        assert dele["old"]["severity"] == "moderate" and dele["new"] is None
        assert {e["actor"] for e in trail} == {"tester"}  # the logged-in user, never free text
        assert all(e["key"] == {"id": ae} for e in trail)
        stamp = datetime.fromisoformat(ins["at"])
        assert stamp.utcoffset().total_seconds() == 0 and stamp >= before
        # the refused changes left nothing behind
        assert store.adverse_events() == []
        report = verify_audit(store)
        assert report.ok, report.problems()
        assert report.entries == len(audit_trail(store))


def test_chain_hashes_are_recomputable_from_outside(demo_study):
    """Recompute the chain with hashlib alone, following the documented rule."""
    import hashlib

    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        with store.connect() as conn:
            rows = conn.execute(text("SELECT * FROM audit_log ORDER BY seq")).mappings().all()
    prev = GENESIS_HASH
    for row in rows:
        content = {
            "action": row["action"], "actor": row["actor"], "at": row["at"], "key": row["row_key"],
            "new": row["new_values"], "old": row["old_values"], "reason": row["reason"], "seq": row["seq"],
            "table": row["table_name"],
        }  # fmt: skip
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256((prev + "\n" + canonical).encode()).hexdigest()
        assert row["prev_hash"] == prev and row["hash"] == digest == entry_hash(prev, content)
        prev = digest
    assert len(rows) >= 4


def test_audit_rows_cannot_be_changed_through_the_database(db_url, demo_study):
    with open_store(demo_study, url=db_url) as store:
        enrol_eligible(store, "S-001")
        for stmt in (
            update(m.AuditEntry.__table__).values(actor="mallory"),
            delete(m.AuditEntry.__table__).where(m.AuditEntry.seq == 2),
        ):
            with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
                conn.execute(stmt)
        assert verify_audit(store).ok


def test_orm_bulk_update_of_study_rows_is_refused(demo_study):
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        with (
            pytest.raises(StoreError, match="bypass the row-level audit trail"),
            store.session(reason="x") as s,
        ):
            s.execute(update(m.SubjectRow).values(age=99))
        assert store.subject("S-001").age == 50


def test_anonymous_changes_are_refused(demo_study):
    with open_store(demo_study, login=False) as store:
        assert store.actor is None
        with pytest.raises(StoreError, match="to enrol subjects in study epmc-demo, log in"):
            store.enroll_subject("S-001", age=50, sex="F", fitzpatrick="III", strata={"age_group": "ge45"})
        with pytest.raises(StoreError, match="log in"), store.session() as s:
            s.add(m.DeviationRow(subject_pk=1, description="x", category="minor"))
        assert store.users()  # reading the user list needs no login
    with pytest.raises(StoreError, match="a free-text actor is not accepted"):
        open_store(demo_study, actor="Dr Who")


def _sqlite_file(store):
    return store.url.database


def test_tampered_audit_entry_is_named_by_verify(demo_study, photo_file, tmp_path):
    with open_store(demo_study) as store:
        _walk(store, photo_file, tmp_path)
        total = verify_audit(store).entries
        db = _sqlite_file(store)
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER audit_log_no_update")
    con.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    con.commit()
    con.close()
    with open_store(demo_study) as store:
        report = verify_audit(store)
        assert not report.ok
        assert report.first_broken.seq == 3
        assert "altered" in report.first_broken.problem
        assert report.entries == total


def test_deleted_audit_entry_breaks_the_chain_there(demo_study, photo_file, tmp_path):
    with open_store(demo_study) as store:
        _walk(store, photo_file, tmp_path)
        db = _sqlite_file(store)
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER audit_log_no_delete")
    con.execute("DELETE FROM audit_log WHERE seq = 5")
    con.commit()
    con.close()
    with open_store(demo_study) as store:
        report = verify_audit(store)
        assert report.first_broken.seq == 6 and "sequence gap" in report.first_broken.problem


def test_rewritten_chain_still_disagrees_with_the_tables(demo_study, photo_file, tmp_path):
    """A forger who edits a value and rehashes every later entry is caught by the table replay."""
    with open_store(demo_study) as store:
        _walk(store, photo_file, tmp_path)
        db = _sqlite_file(store)
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    con.execute("DROP TRIGGER audit_log_no_update")
    con.execute("UPDATE subjects SET age = 31")  # data changed behind the store's back
    con.commit()
    con.close()
    with open_store(demo_study) as store:
        report = verify_audit(store)
        assert report.first_broken is None
        assert report.data_problems == ['subjects {"id":1}: age differ from the audit trail']


def test_changed_photo_file_is_detected_and_cli_exits_1(demo_study, photo_file, tmp_path, capsys):
    with open_store(demo_study) as store:
        path = _walk(store, photo_file, tmp_path)
    code, out, _ = run_cli(["audit", "verify", "--study", str(DEMO)], capsys)
    assert code == 0 and "chain intact; 1 stored files match" in out
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # one flipped byte in the raw photo
    path.write_bytes(bytes(data))
    code, _, err = run_cli(["audit", "verify", "--study", str(DEMO)], capsys)
    assert code == CheckFailed.exit_code == 1
    assert "photo #1" in err and "the raw file was modified" in err and "Traceback" not in err
    path.unlink()
    with open_store(demo_study) as store:
        assert verify_audit(store).file_problems == [f"photo #1 {path}: file is missing"]


def test_waveform_file_change_is_detected(demo_study, randomized, tmp_path):
    import hashlib

    randomized(demo_study, 3)
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        arm = store.allocate("S-001").arm_id
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
        wave = store.study_dir / "waveforms" / "s1.csv"
        wave.parent.mkdir(parents=True)
        wave.write_text("t,v\n0,1\n")
        sha = hashlib.sha256(wave.read_bytes()).hexdigest()
        store.finish_delivery(
            did, outcome="completed", reason=None, dose={}, verification=[], waveforms=[(wave, sha)]
        )
        assert verify_audit(store).ok
        wave.write_text("t,v\n0,2\n")
        problems = verify_audit(store).file_problems
        assert len(problems) == 1 and problems[0].startswith("waveform #1") and "s1.csv" in problems[0]


def test_postgres_refuses_truncate_of_the_audit_log(postgres_url, demo_study, provision):
    provision(demo_study, postgres_url)
    with open_store(demo_study, url=postgres_url) as store:
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_log"))
        assert verify_audit(store).entries >= 1


def test_tampering_on_postgres_is_detected(postgres_url, demo_study, provision):
    provision(demo_study, postgres_url)
    with open_store(demo_study, url=postgres_url) as store:
        enrol_eligible(store, "S-001")
        with store.engine.begin() as conn:
            # only a superuser can switch the guard off; verify must still catch what happens next
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            conn.execute(text("UPDATE audit_log SET reason = 'forged' WHERE seq = 2"))
        report = verify_audit(store)
        assert report.first_broken.seq == 2 and "altered" in report.first_broken.problem


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.text(), min_size=6, max_size=6),
    optional=st.lists(st.one_of(st.none(), st.text()), min_size=3, max_size=3),
    seq=st.integers(min_value=1, max_value=10**12),
)
def test_the_written_out_entry_text_is_the_canonical_json(texts, optional, seq):
    from toolkit.store.audit import content_text
    from toolkit.store.canonical import CANONICAL_ENCODER

    at, actor, action, table, key, _ = texts
    old, new, reason = optional
    content = {"seq": seq, "at": at, "actor": actor, "action": action, "table": table, "key": key, "old": old,
               "new": new, "reason": reason}
    assert content_text(seq, at, actor, action, table, key, old, new, reason) == CANONICAL_ENCODER.encode(content)


def test_a_bulk_insert_is_one_entry_that_still_records_every_row(demo_study, photo_file):
    import pandas as pd

    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        path, sha = photo_file("p1")
        pid = store.add_photo("S-001", visit_id="BASELINE", path=path, sha256=sha)
        frame = pd.DataFrame({"region": ["forehead", "glabella", "chin"], "metric": ["a", "a", "a"],
                              "value": [1.0, 2.0, float("nan")]})
        store.add_measurements(pid, frame, algorithm_version="v1", qc={})
        (entry,) = audit_trail(store, table="measurements")
        assert entry["action"] == "insert_columns"
        assert [(r["region"], r["value"]) for r in entry["new"]] == [("forehead", 1.0), ("glabella", 2.0), ("chin", None)]
        assert [k["region"] for k in entry["key"]] == ["forehead", "glabella", "chin"]
        assert verify_audit(store).ok
        with store.engine.begin() as conn:  # change one value behind the store's back
            conn.execute(text("UPDATE measurements SET value = 5.0 WHERE region = 'glabella'"))
        problems = verify_audit(store).data_problems
        assert len(problems) == 1 and '"region":"glabella"' in problems[0] and "value differ" in problems[0]
        with store.engine.begin() as conn:  # a row added behind its back, one removed
            conn.execute(text("UPDATE measurements SET value = 2.0 WHERE region = 'glabella'"))
            conn.execute(text("DELETE FROM measurements WHERE region = 'chin'"))
            conn.execute(text("INSERT INTO measurements (run_id, region, metric, value) "
                              "SELECT run_id, 'nose', 'a', 9.0 FROM measurements LIMIT 1"))
        problems = verify_audit(store).data_problems
        assert len(problems) == 2 and any('"region":"nose"' in p and "no audit trail entry" in p for p in problems)
        assert any('"region":"chin"' in p and "deleted without an audit entry" in p for p in problems)
        db = _sqlite_file(store)
    con = sqlite3.connect(db)  # the entry itself altered: its hash no longer matches
    con.execute("DROP TRIGGER audit_log_no_update")
    con.execute("UPDATE audit_log SET new_values = replace(new_values, '2.0', '2.5') WHERE action = 'insert_columns'")
    con.commit()
    con.close()
    with open_store(demo_study) as store:
        broken = verify_audit(store, check_tables=False).first_broken
        assert broken.table == "measurements" and "altered" in broken.problem


def test_rows_bulk_inserted_through_the_orm_are_one_entry_per_statement_and_verify(demo_study, photo_file):
    """The older row-by-row batch entry (``insert_rows``, the ORM bulk INSERT) still replays and verifies."""
    from sqlalchemy import insert

    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        path, sha = photo_file("p1")
        pid = store.add_photo("S-001", visit_id="BASELINE", path=path, sha256=sha)
        with store.session() as s:
            run = m.MeasurementRunRow(photo_id=pid, algorithm_version="v0", qc={})
            s.add(run)
            s.flush()
            s.execute(insert(m.MeasurementRow), [{"run_id": run.id, "region": r, "metric": "a", "value": 1.0, "unit": None}
                                                 for r in ("forehead", "chin")])
        (entry,) = audit_trail(store, table="measurements")
        assert entry["action"] == "insert_rows" and [r["region"] for r in entry["new"]] == ["forehead", "chin"]
        assert verify_audit(store).ok
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE measurements SET value = 3.0 WHERE region = 'chin'"))
        (problem,) = verify_audit(store).data_problems
        assert '"region":"chin"' in problem and "value differ" in problem


def test_a_batch_of_photos_is_audited_and_anchored_like_one_photo(demo_study, photo_file):
    """An analysis batch is one transaction: one anchor line, every run and row in the trail; one bad photo
    refuses the whole batch and writes nothing (no rows, no entries, no anchor)."""
    import pandas as pd

    with open_store(demo_study) as store:
        ids = baseline_photos(store, photo_file, 4)
        good = pd.DataFrame({"region": ["forehead", "glabella"], "wrinkle_count": [3, 5]})
        lines = store.anchor_path.read_text().splitlines()
        n_entries = len(audit_trail(store))
        bad_frames = [
            pd.DataFrame({"region": ["forehead", "forehead"], "metric": ["a", "a"], "value": [1.0, 2.0]}),
            pd.DataFrame({"region": ["forehead"], "wrinkle_count": ["many"]}),
            "not a frame",
        ]
        for bad in bad_frames:
            with pytest.raises(DataError, match=f"photo #{ids[2]}"):
                store.add_measurement_runs([(ids[0], good, {}), (ids[1], good, {}), (ids[2], bad, {})],
                                           algorithm_version="v1")
        with pytest.raises(StoreError, match="no photo #999"):
            store.add_measurement_runs([(ids[0], good, {}), (999, good, {})], algorithm_version="v1")
        assert store.anchor_path.read_text().splitlines() == lines and len(audit_trail(store)) == n_entries
        assert store.measurements().empty and len(store.pending_photos()) == 4

        store.add_measurement_runs([(pid, good, {"k": pid}) for pid in ids], algorithm_version="v1")
        after = store.anchor_path.read_text().splitlines()
        assert after[: len(lines)] == lines and len(after) == len(lines) + 1  # one anchor for the whole batch
        trail = audit_trail(store)
        new = trail[n_entries:]
        assert [e["table"] for e in new] == ["measurement_runs"] * 4 + ["measurements"]
        assert {e["actor"] for e in new} == {store.actor}
        assert len(new[-1]["new"]) == 8 and {r["run_id"] for r in new[-1]["new"]} == {e["key"]["id"] for e in new[:4]}
        assert json.loads(after[-1])["seq"] == trail[-1]["seq"]
        report = verify_audit(store)
        assert report.ok and report.anchors_checked == len(after)
        with store.engine.begin() as conn:  # one value of one photo in the batch changed behind the store's back
            conn.execute(text("UPDATE measurements SET value = 4 WHERE metric = 'wrinkle_count' AND value = 5 "
                              "AND run_id = (SELECT max(id) FROM measurement_runs)"))
        (problem,) = verify_audit(store).data_problems
        assert problem.startswith("measurements ") and "value differ" in problem


def test_one_changed_row_or_entry_in_the_middle_of_a_100k_chain_is_found(demo_study, photo_file):
    """Verification reads the whole trail: one change among 100,000 entries is named, whichever it is."""
    from toolkit.store.audited_inserts import insert_records
    from toolkit.store.models import utcnow

    n = 100_000
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        path, sha = photo_file("p1")
        pid = store.add_photo("S-001", visit_id="BASELINE", path=path, sha256=sha)
        now = utcnow()
        with store.session() as s:  # one re-analysis run per entry, as a QC campaign records them
            ids = insert_records(
                s, m.MeasurementRunRow,
                [{"photo_id": pid, "algorithm_version": f"qc {i}", "qc": {"i": i}, "created_at": now} for i in range(n)],
            )  # fmt: skip
        middle = ids[n // 2]
        with store.engine.begin() as conn:  # a value changed behind the store's back
            conn.execute(text("UPDATE measurement_runs SET qc = '{\"i\": 1}' WHERE id = :id"), {"id": middle})
        report = verify_audit(store, check_files=False)
        # everything else verifies: the chain, the anchors, and the other 99,999 rows
        assert report.problems() == [f'measurement_runs {{"id":{middle}}}: qc differ from the audit trail']
        total = report.entries
        assert total > n
        seq = total - n + n // 2 + 1  # the run entries are the last n
        db = _sqlite_file(store)
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER audit_log_no_update")
    (found,) = con.execute("SELECT seq FROM audit_log WHERE row_key = ?", (f'{{"id":{middle}}}',)).fetchone()
    assert found == seq
    con.execute("UPDATE audit_log SET new_values = replace(new_values, '\"i\":' || :i, '\"i\":1') WHERE seq = :seq",
                {"i": n // 2, "seq": seq})
    con.commit()
    con.close()
    with open_store(demo_study) as store:
        report = verify_audit(store, check_files=False, check_tables=False)
        assert report.first_broken.seq == seq and "altered" in report.first_broken.problem
        assert report.entries == total


def test_rows_are_compared_by_value_whatever_their_stored_text(demo_study, photo_file):
    """JSON columns are written as canonical JSON and a row is first compared as text with its entry; a row
    whose stored text differs but whose values are the same (an older database's JSON spacing) verifies, and
    a changed value inside a JSON column is named."""
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        path, sha = photo_file("p1")
        pid = store.add_photo("S-001", visit_id="BASELINE", path=path, sha256=sha)
        store.add_measurements(pid, __import__("pandas").DataFrame({"region": ["chin"], "w": [1.0]}),
                               algorithm_version="v1", qc={"passed": True, "sharpness": 0.5, "note": "é"})
        with store.engine.connect() as conn:
            (stored,) = conn.execute(text("SELECT qc FROM measurement_runs")).one()
        assert stored == '{"note":"é","passed":true,"sharpness":0.5}'
        assert verify_audit(store).ok
        with store.engine.begin() as conn:
            conn.execute(text("""UPDATE measurement_runs SET qc = '{"sharpness": 0.5, "passed": true, "note": "\\u00e9"}'"""))
        assert verify_audit(store).ok
        with store.engine.begin() as conn:
            conn.execute(text("""UPDATE measurement_runs SET qc = '{"sharpness": 0.5, "passed": true, "note": "e"}'"""))
        (problem,) = verify_audit(store).data_problems
        assert problem.startswith("measurement_runs ") and "qc differ" in problem


def test_a_json_column_keeps_a_non_finite_float(demo_study):
    from toolkit.store.canonical import json_column_text

    assert json_column_text({"b": 1, "a": [1.5, None]}) == '{"a":[1.5,null],"b":1}'
    assert json.loads(json_column_text({"x": float("nan")}))["x"] != json.loads(json_column_text({"x": float("nan")}))["x"]
    with pytest.raises(TypeError):
        json_column_text({"when": date(2026, 1, 1)})
