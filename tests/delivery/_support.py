"""Helpers of the delivery tests: eligible subjects in a real store, shortened studies, fast settings."""

from __future__ import annotations

from datetime import date, timedelta

from toolkit.delivery import DeliverySettings

#: a fast setting for tests: short sessions are built by the tests themselves
FAST = DeliverySettings(burst_interval_s=2.0, capture_every_s=60.0, off_retry_s=1.0, io_timeout_s=1.0)


class Subjects:
    """Enrols consented, patch-tested subjects from the study's real allocation list.

    ``add(arm_id=...)`` enrols subjects until one is allocated to that arm (the list is permuted blocks, so
    a few enrolments suffice); the extra subjects stay enrolled and unused.
    """

    def __init__(self, store) -> None:
        from toolkit.study.allocation import randomize, write_allocation

        self.store = store
        if not (store.study_dir / "allocation.csv").exists():
            write_allocation(store.study, randomize(store.study, 60, per_stratum=True), store.study_dir)
        self.n = 0

    def _enrol(self, subject_id: str) -> str:
        factor = self.store.study.randomization.factors[0]
        self.store.enroll_subject(subject_id, age=40, sex="F", fitzpatrick="II",
                                  strata={factor.name: factor.levels[0]})
        self.store.record_consent(subject_id, signed_on=date.today() - timedelta(days=10))
        self.store.record_checklist(subject_id, self.store.info.eligibility.all_met(), checked_on=date.today() - timedelta(days=10))
        self.store.record_patch_test(subject_id, passed=True, read_on=date.today() - timedelta(days=8))
        return self.store.allocate(subject_id).arm_id

    def add(self, subject_id: str, arm_id: str | None = None) -> str:
        """Enrol ``subject_id`` allocated to ``arm_id`` (any arm when ``None``); return the subject id."""
        for _ in range(12):
            self.n += 1
            candidate = subject_id
            got = self._enrol(candidate)
            if arm_id is None or got == arm_id:
                return candidate
            # not the wanted arm: keep the subject under another id and try again
            self.store.update_record("subjects", self._pk(candidate), reason="test filler",
                                     subject_id=f"{subject_id}-x{self.n}")
        raise AssertionError(f"no allocation to arm {arm_id} in 12 draws")

    def _pk(self, subject_id: str) -> int:
        from sqlalchemy import select

        from toolkit.store import models as m

        with self.store.session() as s:
            return s.scalar(select(m.SubjectRow.id).where(m.SubjectRow.subject_id == subject_id,
                                                          m.SubjectRow.study_id == self.store.study_id))


def short(study, minutes: float = 1.0):
    """The study with every arm's session shortened to ``minutes`` (ramps kept while they fit)."""
    from toolkit.delivery.campaign import _shortened

    return _shortened(study, minutes)
