"""Subjects: enrolment with demographics and strata, consent, patch tests, and the subject record."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store.base import StoreBase
from toolkit.store.records import Allocation, PatchTest, SubjectRecord
from toolkit.store.roles import AccessDenied
from toolkit.store.values import FITZPATRICK_TYPES, SUBJECT_ID, as_date, fitzpatrick_type, sex_code

__all__ = ["Subjects", "allocation_record"]


class Subjects(StoreBase):
    """Enrolment, consent and patch tests; the subject record with its eligibility."""

    def enroll_subject(
        self,
        subject_id: str,
        *,
        age: int,
        sex: str,
        fitzpatrick: str | int,
        race: str | None = None,
        strata: Mapping[str, Any] | None = None,
        site: str | None = None,
    ) -> SubjectRecord:
        """Enrol a subject with demographics and stratum values.

        Parameters
        ----------
        subject_id : str
            Site subject id, e.g. ``"S-001"`` (letters, digits, ``-_.``; at most 40 characters).
        age : int
            Age in years (18–120).
        sex : {'F', 'M', 'U'}
        fitzpatrick : {'I', 'II', 'III', 'IV', 'V', 'VI'} or 1–6
        race : str, optional
        strata : dict, optional
            Value of each stratification factor of the study (e.g. ``{"fitzpatrick_group": "I-III"}``).
        site : str, optional
            The subject's site (default: the enrolling user's site); a user tied to a site enrols there only.
        """
        who = self._require("enroll", "enrol subjects")
        site = str(site).strip() if site not in (None, "") else who.site
        if who.site and site != who.site:
            raise AccessDenied(f"user {who.describe()} enrols subjects at site {who.site} only, not at {site}")
        if site is not None:
            site = self._known_site(site)
        subject_id = str(subject_id).strip()
        if not SUBJECT_ID.match(subject_id):
            raise DataError(
                f"subject id {subject_id!r} is not accepted; use letters, digits, '-', '_' or '.', "
                "at most 40 characters (e.g. S-001)"
            )
        try:
            age_years = int(age)
        except (TypeError, ValueError):
            raise DataError(f"age {age!r} is not a whole number of years") from None
        if isinstance(age, float) and not float(age).is_integer():
            raise DataError(f"age {age!r} is not a whole number of years")
        if not 18 <= age_years <= 120:
            raise DataError(f"age {age_years} is outside 18–120 years (adults only)")
        sex_value = sex_code(sex)
        if sex_value is None:
            raise DataError(f"sex {sex!r} is not accepted; accepted: F, M, U")
        strata_values = {str(k): str(v) for k, v in (strata or {}).items()}
        strata_values = self._derived_strata(
            strata_values, {"age": age_years, "fitzpatrick": fitzpatrick_type(fitzpatrick), "sex": sex_value,
                            "site": site}
        )  # fmt: skip
        self._check_strata(strata_values)
        with self.session() as s:
            exists = s.scalar(
                select(m.SubjectRow.id).where(
                    m.SubjectRow.study_id == self.study_id, m.SubjectRow.subject_id == subject_id
                )
            )
            if exists is not None:
                raise StoreError(f"subject {subject_id!r} is already enrolled in study {self.study_id}")
            s.add(
                m.SubjectRow(
                    study_id=self.study_id,
                    subject_id=subject_id,
                    site=site,
                    age=age_years,
                    sex=sex_value,
                    race=race,
                    fitzpatrick=fitzpatrick_type(fitzpatrick),
                    strata=strata_values,
                )
            )
        return self.subject(subject_id)

    def _check_strata(self, strata: dict[str, str]) -> None:
        factors = self.info.strata_factors
        if not factors:
            return
        problems = [f"missing value for stratification factor {f!r}" for f in factors if f not in strata]
        problems += [f"{k!r} is not a stratification factor" for k in strata if k not in factors]
        for f, levels in self.info.strata_levels.items():
            if f in strata and levels and strata[f] not in levels:
                problems.append(f"{f}={strata[f]!r} is not a level; accepted: {', '.join(levels)}")
        if problems:
            raise DataError(
                f"strata do not match the study's stratification factors ({', '.join(factors)})",
                details=problems,
            )

    def _derived_strata(self, given: dict[str, str], facts: Mapping[str, Any]) -> dict[str, str]:
        """Strata with the levels that follow from the subject's own data filled in and checked."""
        from toolkit.study.strata import level_for

        out = dict(given)
        problems = []
        for factor, rule in self.info.strata_rules.items():
            value = facts.get(rule.get("from", ""))
            if value is None:
                continue
            level = level_for(rule, value)
            if level is None:
                problems.append(f"{factor}: {rule['from']} {value!r} falls in no level of the study's definition")
            elif factor not in out:
                out[factor] = level
            elif out[factor] != level:
                problems.append(
                    f"{factor}={out[factor]!r} contradicts the subject's {rule['from']} {value!r}, which is in "
                    f"level {level!r}"
                )
        if problems:
            raise DataError("strata do not match the subject's own data", details=problems)
        return out

    def record_consent(self, subject_id: str, *, signed_on: date, publication: bool | None = None) -> None:
        """Record signed informed consent (a later call records a re-consent).

        ``publication`` records whether the subject agreed that their face may be shown in reports and
        publications (``None``: not asked); reports mask the faces of every other subject.
        """
        self._require("enroll", "record consent")
        if publication is not None and not isinstance(publication, bool):
            raise DataError(f"publication consent {publication!r} must be True, False or None (not asked)")
        signed = as_date(signed_on, "signed_on")
        if signed > date.today():
            raise DataError(f"consent date {signed} is in the future")
        with self.session() as s:
            subject = self._subject(s, subject_id)
            s.add(m.ConsentRow(subject_pk=subject.id, signed_on=signed, publication=publication))

    def record_patch_test(
        self, subject_id: str, *, passed: bool, read_on: date, notes: str | None = None
    ) -> None:
        """Record a patch test read; the latest read decides eligibility."""
        self._require("enroll", "record patch tests")
        if not isinstance(passed, bool):
            raise DataError(f"patch test result {passed!r} must be True (pass) or False (fail)")
        read = as_date(read_on, "read_on")
        if read > date.today():
            raise DataError(f"patch test read date {read} is in the future")
        with self.session() as s:
            subject = self._subject(s, subject_id)
            consent = s.scalar(
                select(func.min(m.ConsentRow.signed_on)).where(m.ConsentRow.subject_pk == subject.id)
            )
            if consent is None:
                raise StoreError(f"subject {subject_id}: record consent before the patch test")
            if read < consent:
                raise DataError(f"subject {subject_id}: patch test read_on {read} is before the consent signed on "
                                f"{consent}; a patch test is a study procedure and follows consent")
            s.add(m.PatchTestRow(subject_pk=subject.id, passed=passed, read_on=read, notes=notes))

    def _subject_record(self, s: Session, row: m.SubjectRow) -> SubjectRecord:
        consent = s.scalar(
            select(m.ConsentRow)
            .where(m.ConsentRow.subject_pk == row.id)
            .order_by(m.ConsentRow.id.desc())
            .limit(1)
        )
        patch = s.scalar(
            select(m.PatchTestRow)
            .where(m.PatchTestRow.subject_pk == row.id)
            .order_by(m.PatchTestRow.id.desc())
            .limit(1)
        )
        alloc = s.scalar(select(m.AllocationRow).where(m.AllocationRow.subject_pk == row.id))
        crit = self.info.eligibility
        eligibility = {"consent signed": consent is not None}
        if crit.patch_test_required:
            eligibility["patch test passed"] = bool(patch and patch.passed)
        if crit.age_min_years is not None and crit.age_max_years is not None:
            eligibility[f"age {crit.age_min_years}–{crit.age_max_years} years"] = (
                crit.age_min_years <= row.age <= crit.age_max_years
            )
        if crit.fitzpatrick_types:
            allowed = [FITZPATRICK_TYPES[t - 1] for t in crit.fitzpatrick_types if 1 <= t <= 6]
            eligibility[f"Fitzpatrick type {'/'.join(allowed)}"] = row.fitzpatrick in allowed
        eligibility["not withdrawn"] = row.withdrawn_on is None
        ended = s.scalar(select(m.DispositionEventRow.on).where(m.DispositionEventRow.subject_pk == row.id,
                                                                 m.DispositionEventRow.scope == "treatment"))
        eligibility["treatment not discontinued"] = ended is None
        return SubjectRecord(
            subject_id=row.subject_id,
            age=row.age,
            sex=row.sex,
            fitzpatrick=row.fitzpatrick,
            race=row.race,
            site=row.site,
            strata=dict(row.strata or {}),
            enrolled_at=row.enrolled_at,
            consent_signed_on=consent.signed_on if consent else None,
            publication_consent=consent.publication if consent else None,
            patch_test=PatchTest(patch.passed, patch.read_on, patch.notes) if patch else None,
            allocation=allocation_record(alloc) if alloc and self._sees_allocations() else None,
            treatment_ended_on=ended,
            eligibility=eligibility,
            withdrawn_on=row.withdrawn_on,
        )

    def subject(self, subject_id: str) -> SubjectRecord:
        """The subject's record: demographics, consent, patch test, allocation and eligibility."""
        self._require("read_records", "read subject records")
        with self.reading() as s:
            return self._subject_record(s, self._subject(s, subject_id, write=False))

    def _sees_allocations(self) -> bool:
        return self.identity is not None and self.identity.can("read_allocation")

    def subjects(self) -> list[SubjectRecord]:
        """All subjects of the study, in enrolment order (the subjects of the user's site, for a site user)."""
        self._require("read_records", "read subject records")
        with self.reading() as s:
            rows = s.scalars(
                select(m.SubjectRow).where(m.SubjectRow.study_id == self.study_id).order_by(m.SubjectRow.id)
            ).all()
            site = self.identity.site if self.identity else None
            rows = [r for r in rows if not site or r.site in (None, site)]
            return [self._subject_record(s, r) for r in rows]



def allocation_record(row: m.AllocationRow) -> Allocation:
    """The plain record of an allocation row."""
    return Allocation(
        rand_no=row.rand_no,
        arm_id=row.arm_id,
        code=row.code,
        stratum=row.stratum,
        side_map=dict(row.side_map) if row.side_map else None,
        allocated_at=row.allocated_at,
    )

