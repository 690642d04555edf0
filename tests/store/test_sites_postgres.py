"""Two sites write one PostgreSQL database at the same time, each user confined to its own site."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from toolkit.store import open_store
from toolkit.store.audit import verify_audit
from toolkit.store.roles import AccessDenied

PW = "test password 2026"
pytestmark = pytest.mark.postgres


def test_two_sites_write_one_database_at_once(demo_study, postgres_url, provision, tmp_path, monkeypatch):
    provision(demo_study, postgres_url)
    with open_store(demo_study, url=postgres_url, user="tester", password=PW) as store:
        store.add_site("PAR", name="Paris")
        store.add_site("LYO", name="Lyon")
        store.add_user("par-inv", full_name="Paris Investigator", roles=["investigator"], password=PW, site="PAR")
        store.add_user("lyo-inv", full_name="Lyon Investigator", roles=["investigator"], password=PW, site="LYO")
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def site_work(user: str, prefix: str) -> None:
        try:
            with open_store(demo_study, url=postgres_url, user=user, password=PW) as s:
                barrier.wait(timeout=60)
                for i in range(8):
                    sid = f"{prefix}-{i:02d}"
                    s.enroll_subject(sid, age=40 + i, sex="F", fitzpatrick="III")
                    s.record_consent(sid, signed_on=date(2026, 1, 5))
                    s.record_checklist(sid, s.info.eligibility.all_met(), checked_on=date(2026, 1, 5))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=site_work, args=a) for a in (("par-inv", "P"), ("lyo-inv", "L"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    with open_store(demo_study, url=postgres_url, user="tester", password=PW) as store:
        sites = {s.subject_id: s.site for s in store.subjects()}
        assert sites == {**{f"P-{i:02d}": "PAR" for i in range(8)}, **{f"L-{i:02d}": "LYO" for i in range(8)}}
        report = verify_audit(store)
        assert report.ok, report.problems()
    with open_store(demo_study, url=postgres_url, user="lyo-inv", password=PW) as lyon:
        assert {s.subject_id[0] for s in lyon.subjects()} == {"L"}
        with pytest.raises(AccessDenied, match="site LYO and may not change records of subject P-00 of site PAR"):
            lyon.record_consent("P-00", signed_on=date(2026, 1, 6))
            lyon.record_checklist("P-00", lyon.info.eligibility.all_met(), checked_on=date(2026, 1, 6))
