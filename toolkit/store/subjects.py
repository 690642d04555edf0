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
        consent_signed_on: date | None = None,
        publication: bool | None = None,
        checklist: Mapping[str, bool] | None = None,
        checked_on: date | None = None,
    ) -> SubjectRecord:
        """Enrol a subject with demographics and stratum values (and, in the same transaction, consent and the
        screening checklist).

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
            Value of each stratification factor of the study (e.g. ``{"fitzpatrick_group": "I-III"}``); levels
            that follow from the subject's data (``derived_from`` in study.yaml) are filled in and checked.
        site : str, optional
            The subject's site (default: the enrolling user's site); a user tied to a site enrols there only.
        consent_signed_on : date, optional
            Date the informed consent was signed, recorded with the enrolment (see :meth:`record_consent`).
        publication : bool, optional
            With ``consent_signed_on``: consent to show the face in reports (``None``: not asked).
        checklist : dict, optional
            The screening checklist's answers, criterion code -> holds (see :meth:`record_checklist`); needs
            the consent, on or before ``checked_on``.
        checked_on : date, optional
            Date the checklist was answered (default: today).

        Raises
        ------
        DataError
            Naming each field at fault in ``fields`` (``age``, ``sex``, ``strata.<factor>``,
            ``checklist.<code>``, ``consent_signed_on`` …); nothing is written.
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
                "at most 40 characters (e.g. S-001)", field="subject_id"
            )
        age_years = _age_years(age)
        sex_value = sex_code(sex)
        if sex_value is None:
            raise DataError(f"sex {sex!r} is not accepted; accepted: F, M, U", field="sex")
        strata_values = {str(k): str(v) for k, v in (strata or {}).items()}
        strata_values = self._derived_strata(
            strata_values, {"age": age_years, "fitzpatrick": fitzpatrick_type(fitzpatrick), "sex": sex_value,
                            "site": site}
        )  # fmt: skip
        self._check_strata(strata_values)
        consent = None
        if consent_signed_on is not None:
            consent = self._consent_values(consent_signed_on, publication)
        elif publication is not None:
            raise DataError("publication consent is recorded with the consent: give consent_signed_on too",
                            field="consent_signed_on")
        check = None
        if checklist is not None:  # a complete screening: the study's age and skin-type ranges decide too
            self._check_ranges(age_years, fitzpatrick_type(fitzpatrick))
            check = self._checklist_values(checklist, checked_on, consent[0] if consent else None)
        elif checked_on is not None:
            raise DataError("checked_on dates the checklist: give the checklist's answers too", field="checklist")
        with self.session() as s:
            exists = s.scalar(
                select(m.SubjectRow.id).where(
                    m.SubjectRow.study_id == self.study_id, m.SubjectRow.subject_id == subject_id
                )
            )
            if exists is not None:
                raise StoreError(f"subject {subject_id!r} is already enrolled in study {self.study_id}",
                                 field="subject_id")
            row = m.SubjectRow(
                study_id=self.study_id,
                subject_id=subject_id,
                site=site,
                age=age_years,
                sex=sex_value,
                race=race,
                fitzpatrick=fitzpatrick_type(fitzpatrick),
                strata=strata_values,
            )
            s.add(row)
            s.flush()
            if consent is not None:
                s.add(m.ConsentRow(subject_pk=row.id, signed_on=consent[0], publication=consent[1]))
            if check is not None:
                s.add(m.EligibilityCheckRow(subject_pk=row.id, checked_on=check[0], answers=check[1]))
        return self.subject(subject_id)

    def record_checklist(self, subject_id: str, answers: Mapping[str, bool], *, checked_on: date | None = None) -> None:
        """Record the screening checklist: for each inclusion and exclusion of the study, whether it holds.

        Every criterion must be answered, every inclusion must hold and no exclusion; the consent must be
        signed on or before ``checked_on`` (default today), which is not in the future. A later call records a
        re-screening; the latest checklist decides.

        Raises
        ------
        DataError
            With one entry per criterion at fault in ``fields`` (``checklist.<code>``); nothing is written.
        """
        self._require("enroll", "record the eligibility checklist")
        with self.session() as s:
            subject = self._subject(s, subject_id)
            consent = s.scalar(select(func.min(m.ConsentRow.signed_on)).where(m.ConsentRow.subject_pk == subject.id))
            when, values = self._checklist_values(answers, checked_on, consent, subject_id=subject_id)
            s.add(m.EligibilityCheckRow(subject_pk=subject.id, checked_on=when, answers=values))

    def _checklist_values(
        self, answers: Mapping[str, Any], checked_on: Any, consent: date | None, *, subject_id: str | None = None
    ) -> tuple[date, dict[str, bool]]:
        from toolkit.study.eligibility import checklist_problems

        when = date.today() if checked_on in (None, "") else as_date(checked_on, "checked_on")
        if when > date.today():
            raise DataError(f"checklist date {when} is in the future", field="checked_on")
        if consent is None:
            raise StoreError(
                f"{'subject ' + subject_id + ': ' if subject_id else ''}the eligibility checklist is a study "
                "procedure: record the signed consent first", field="consent_signed_on")
        if consent > when:
            raise DataError(f"the checklist ({when}) cannot come before the consent ({consent}): consent first",
                            field="checked_on")
        if not isinstance(answers, Mapping):
            raise DataError("the checklist's answers are criterion code -> yes/no pairs", field="checklist")
        values = {str(k): v for k, v in answers.items()}
        problems = checklist_problems(self.info.eligibility.checklist(), values)
        if problems:
            raise DataError(
                f"eligibility checklist: {len(problems)} item(s) keep the subject out or are unanswered",
                details=list(problems.values()), fields={f"checklist.{k}": v for k, v in problems.items()},
            )
        return when, values

    def _check_ranges(self, age_years: int, fitzpatrick: str) -> None:
        crit = self.info.eligibility
        fields = {}
        if crit.age_min_years is not None and crit.age_max_years is not None and not (
            crit.age_min_years <= age_years <= crit.age_max_years
        ):
            fields["age"] = (f"age {age_years} is outside the study's {crit.age_min_years}–{crit.age_max_years} "
                             "years: not eligible")
        allowed = [FITZPATRICK_TYPES[t - 1] for t in crit.fitzpatrick_types if 1 <= t <= 6]
        if allowed and fitzpatrick not in allowed:
            fields["fitzpatrick"] = (f"Fitzpatrick type {fitzpatrick} is not admitted; the study admits "
                                     f"{', '.join(allowed)}")
        if fields:
            raise DataError("the subject is outside the study's inclusion ranges", details=list(fields.values()),
                            fields=fields)

    def _consent_values(self, signed_on: Any, publication: Any) -> tuple[date, bool | None]:
        if publication is not None and not isinstance(publication, bool):
            raise DataError(f"publication consent {publication!r} must be True, False or None (not asked)",
                            field="publication")
        signed = as_date(signed_on, "consent_signed_on")
        if signed > date.today():
            raise DataError(f"consent date {signed} is in the future", field="consent_signed_on")
        return signed, publication

    def _check_strata(self, strata: dict[str, str]) -> None:
        factors = self.info.strata_factors
        if not factors:
            return
        fields = {f"strata.{f}": f"missing value for stratification factor {f!r}" for f in factors if f not in strata}
        fields |= {f"strata.{k}": f"{k!r} is not a stratification factor" for k in strata if k not in factors}
        for f, levels in self.info.strata_levels.items():
            if f in strata and levels and strata[f] not in levels:
                fields[f"strata.{f}"] = f"{f}={strata[f]!r} is not a level; accepted: {', '.join(levels)}"
        if fields:
            raise DataError(
                f"strata do not match the study's stratification factors ({', '.join(factors)})",
                details=list(fields.values()), fields=fields,
            )

    def _derived_strata(self, given: dict[str, str], facts: Mapping[str, Any]) -> dict[str, str]:
        """Strata with the levels that follow from the subject's own data filled in and checked."""
        from toolkit.study.strata import level_for

        out = dict(given)
        problems: dict[str, str] = {}
        for factor, rule in self.info.strata_rules.items():
            value = facts.get(rule.get("from", ""))
            if value is None:
                continue
            level = level_for(rule, value)
            if level is None:
                problems[f"strata.{factor}"] = (
                    f"{factor}: {rule['from']} {value!r} falls in no level of the study's definition")
            elif factor not in out:
                out[factor] = level
            elif out[factor] != level:
                problems[f"strata.{factor}"] = (
                    f"{factor}={out[factor]!r} contradicts the subject's {rule['from']} {value!r}, which is in "
                    f"level {level!r}"
                )
        if problems:
            raise DataError("strata do not match the subject's own data", details=list(problems.values()),
                            fields=problems)
        return out

    def record_consent(self, subject_id: str, *, signed_on: date, publication: bool | None = None) -> None:
        """Record signed informed consent (a later call records a re-consent).

        ``publication`` records whether the subject agreed that their face may be shown in reports and
        publications (``None``: not asked); reports mask the faces of every other subject.
        """
        self._require("enroll", "record consent")
        signed, publication = self._consent_values(signed_on, publication)
        with self.session() as s:
            subject = self._subject(s, subject_id)
            s.add(m.ConsentRow(subject_pk=subject.id, signed_on=signed, publication=publication))

    def record_patch_test(
        self, subject_id: str, *, passed: bool, read_on: date, notes: str | None = None
    ) -> None:
        """Record a patch test read; the latest read decides eligibility."""
        self._require("enroll", "record patch tests")
        if not isinstance(passed, bool):
            raise DataError(f"patch test result {passed!r} must be True (pass) or False (fail)", field="passed")
        read = as_date(read_on, "read_on")
        if read > date.today():
            raise DataError(f"patch test read date {read} is in the future", field="read_on")
        with self.session() as s:
            subject = self._subject(s, subject_id)
            consent = s.scalar(
                select(func.min(m.ConsentRow.signed_on)).where(m.ConsentRow.subject_pk == subject.id)
            )
            if consent is None:
                raise StoreError(f"subject {subject_id}: record consent before the patch test", field="read_on")
            if read < consent:
                raise DataError(f"subject {subject_id}: patch test read_on {read} is before the consent signed on "
                                f"{consent}; a patch test is a study procedure and follows consent", field="read_on")
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
        check = s.scalar(
            select(m.EligibilityCheckRow)
            .where(m.EligibilityCheckRow.subject_pk == row.id)
            .order_by(m.EligibilityCheckRow.id.desc())
            .limit(1)
        )
        crit = self.info.eligibility
        eligibility = {"consent signed": consent is not None}
        if crit.criteria:
            from toolkit.study.eligibility import checklist_problems

            # the checklist gates randomisation; a subject randomised before checklists were kept stays eligible
            eligibility["eligibility checklist met"] = (
                not checklist_problems(crit.checklist(), check.answers) if check is not None else alloc is not None
            )
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
            checklist=dict(check.answers) if check is not None else None,
            checked_on=check.checked_on if check is not None else None,
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



def _age_years(age: Any) -> int:
    try:
        age_years = int(age)
    except (TypeError, ValueError):
        raise DataError(f"age {age!r} is not a whole number of years", field="age") from None
    if isinstance(age, float) and not float(age).is_integer():
        raise DataError(f"age {age!r} is not a whole number of years", field="age")
    if not 18 <= age_years <= 120:
        raise DataError(f"age {age_years} is outside 18–120 years (adults only)", field="age")
    return age_years


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

