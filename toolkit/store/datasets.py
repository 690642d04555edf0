"""Analysis datasets as data plus variable metadata, and the study records they are derived from.

A :class:`Dataset` is a DataFrame with, for each variable, a label, a type, a codelist and an origin: what
a define-style metadata file lists. :class:`StudyRecords` pulls the store's tables into tidy frames once,
with arms shown blinded (codes) or unblinded (names) as the store's state says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import func, select

from toolkit.store import models as m

if TYPE_CHECKING:
    from toolkit.store.store import Store

__all__ = ["Dataset", "StudyRecords", "Variable", "variable_name"]


@dataclass(frozen=True)
class Variable:
    """Metadata of one dataset variable."""

    name: str
    label: str
    #: ``"Char"`` or ``"Num"``
    type: str = "Char"
    #: allowed values (``"Y; N"``) or a codelist name
    codelist: str = ""
    #: ``CRF``, ``Assigned``, ``Derived``, ``Instrument``, ``Image analysis`` … with a short derivation
    origin: str = "Derived"
    #: SAS display format (``DATE9`` for numeric dates: days since 1960-01-01)
    format: str = ""


@dataclass
class Dataset:
    """A dataset: name (≤ 8), label (≤ 40), frame and variable metadata in column order."""

    name: str
    label: str
    frame: pd.DataFrame
    variables: list[Variable] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = [v.name for v in self.variables]
        missing = [c for c in names if c not in self.frame.columns]
        for col in missing:
            kind = next(v.type for v in self.variables if v.name == col)
            self.frame[col] = pd.Series(dtype=float if kind == "Num" else object, index=self.frame.index)
        self.frame = self.frame[names]
        for v in self.variables:
            if v.type == "Num":
                self.frame[v.name] = pd.to_numeric(self.frame[v.name], errors="coerce").astype(float)
            else:
                col = self.frame[v.name]
                self.frame[v.name] = col.astype(object).where(col.notna(), None)

    @property
    def labels(self) -> dict[str, str]:
        """Variable name -> label."""
        return {v.name: v.label for v in self.variables}


def _codes(values: object) -> str:
    """QC codes as stored (a list) -> ``"pose, blur"``, each code once, in order."""
    if not isinstance(values, list | tuple):
        return ""
    return ", ".join(dict.fromkeys(str(v) for v in values if v))


_CLEAN = re.compile(r"[^A-Z0-9]")


def variable_name(text: str, taken: set[str], *, prefix: str = "") -> str:
    """A SAS-safe variable name (≤ 8, upper case, unique within ``taken``) derived from ``text``."""
    base = (prefix + _CLEAN.sub("", text.upper()))[:8] or "VAR"
    if base[0].isdigit():
        base = ("X" + base)[:8]
    name, n = base, 1
    while name in taken:
        suffix = str(n)
        name = base[: 8 - len(suffix)] + suffix
        n += 1
    taken.add(name)
    return name


class StudyRecords:
    """The store's tables as tidy frames, with arm labels blinded or not.

    Parameters
    ----------
    store : Store
    blinded : bool, optional
        Force blinded (codes) or unblinded (names) labels; default: blinded until an unblinding is recorded.
    """

    def __init__(self, store: Store, *, blinded: bool | None = None) -> None:
        self.store = store
        self.info = store.info
        self.study_id = store.study_id
        unblinded = store.is_unblinded
        store._require("export", "export or analyse study records")
        if blinded is False and not unblinded:
            store._require("read_allocation", "see real arms of a study that is still blinded")
        self.blinded = (not unblinded) if blinded is None else blinded
        self.codes, self.code_source = store._code_map()
        with store.connect() as conn:
            self.subjects = self._subjects(conn)
            self.deliveries = self._frame(
                conn,
                select(
                    m.SubjectRow.subject_id,
                    m.DeliveryRow.id.label("delivery_id"),
                    m.DeliveryRow.session_number,
                    m.DeliveryRow.arm_id,
                    m.DeliveryRow.side,
                    m.DeliveryRow.status,
                    m.DeliveryRow.reason,
                    m.DeliveryRow.dose,
                    m.DeliveryRow.resumed_from,
                    m.DeliveryRow.started_at,
                    m.DeliveryRow.ended_at,
                )
                .join(m.SubjectRow, m.SubjectRow.id == m.DeliveryRow.subject_pk)
                .where(m.SubjectRow.study_id == self.study_id)
                .order_by(m.DeliveryRow.id),
            )
            self.adverse_events = self._frame(
                conn,
                select(
                    m.SubjectRow.subject_id,
                    m.AdverseEventRow.id.label("ae_id"),
                    m.AdverseEventRow.term,
                    m.AdverseEventRow.soc,
                    m.AdverseEventRow.severity,
                    m.AdverseEventRow.serious,
                    m.AdverseEventRow.relation,
                    m.AdverseEventRow.onset,
                    m.AdverseEventRow.resolved,
                    m.AdverseEventRow.session_number,
                    m.AdverseEventRow.action_taken,
                    m.AdverseEventRow.outcome,
                )
                .join(m.SubjectRow, m.SubjectRow.id == m.AdverseEventRow.subject_pk)
                .where(m.SubjectRow.study_id == self.study_id)
                .order_by(m.AdverseEventRow.id),
            )
            self.assessments = self._frame(
                conn,
                select(
                    m.SubjectRow.subject_id,
                    m.VisitRow.visit_id,
                    m.AssessmentRow.id.label("assessment_id"),
                    m.AssessmentRow.scale,
                    m.AssessmentRow.side,
                    m.AssessmentRow.score,
                    m.AssessmentRow.assessor,
                    m.AssessmentRow.assessed_on,
                    m.AssessmentRow.recorded_at,
                    m.AssessmentRow.rater,
                    m.AssessmentRow.rating_set,
                    m.AssessmentRow.repeat,
                )
                .join(m.SubjectRow, m.SubjectRow.id == m.AssessmentRow.subject_pk)
                .join(m.VisitRow, m.VisitRow.id == m.AssessmentRow.visit_pk)
                .where(m.SubjectRow.study_id == self.study_id)
                .order_by(m.AssessmentRow.id),
            )
            self.deviations = self._frame(
                conn,
                select(m.SubjectRow.subject_id, m.DeviationRow.category, m.DeviationRow.description,
                       m.DeviationRow.recorded_at)
                .join(m.SubjectRow, m.SubjectRow.id == m.DeviationRow.subject_pk)
                .where(m.SubjectRow.study_id == self.study_id),
            )
            self.disposition = self._frame(
                conn,
                select(m.SubjectRow.subject_id, m.DispositionEventRow.scope, m.DispositionEventRow.on,
                       m.DispositionEventRow.reason, m.DispositionEventRow.detail)
                .join(m.SubjectRow, m.SubjectRow.id == m.DispositionEventRow.subject_pk)
                .where(m.SubjectRow.study_id == self.study_id)
                .order_by(m.DispositionEventRow.id),
            )

    def _latest_runs(self) -> Any:
        # a photo measured again (new algorithm version) counts once, with its newest run
        return (
            select(func.max(m.MeasurementRunRow.id)).group_by(m.MeasurementRunRow.photo_id).scalar_subquery()
        )

    @cached_property
    def measurements(self) -> pd.DataFrame:
        """Every measurement of the newest run of each photo, with photo, visit and algorithm details."""
        stmt = (
            select(
                m.SubjectRow.subject_id,
                m.VisitRow.visit_id,
                m.PhotoRow.id.label("photo_id"),
                m.PhotoRow.view,
                m.PhotoRow.captured_at,
                m.MeasurementRunRow.algorithm_version,
                m.MeasurementRow.region,
                m.MeasurementRow.metric,
                m.MeasurementRow.value,
                m.MeasurementRow.unit,
            )
            .join(m.MeasurementRunRow, m.MeasurementRunRow.id == m.MeasurementRow.run_id)
            .join(m.PhotoRow, m.PhotoRow.id == m.MeasurementRunRow.photo_id)
            .join(m.VisitRow, m.VisitRow.id == m.PhotoRow.visit_pk)
            .join(m.SubjectRow, m.SubjectRow.id == m.PhotoRow.subject_pk)
            .where(m.SubjectRow.study_id == self.study_id, m.MeasurementRunRow.id.in_(self._latest_runs()))
            .order_by(m.MeasurementRow.id)
        )
        with self.store.connect() as conn:
            return self._frame(conn, stmt)

    @cached_property
    def _latest_qc(self) -> dict[int, dict]:
        """Photo id -> the QC verdict of its newest analysis (as stored: passed, codes, flag_codes ...)."""
        stmt = (
            select(m.MeasurementRunRow.photo_id, m.MeasurementRunRow.qc)
            .join(m.PhotoRow, m.PhotoRow.id == m.MeasurementRunRow.photo_id)
            .join(m.SubjectRow, m.SubjectRow.id == m.PhotoRow.subject_pk)
            .where(m.SubjectRow.study_id == self.study_id, m.MeasurementRunRow.id.in_(self._latest_runs()))
        )
        with self.store.connect() as conn:
            return {int(pid): qc for pid, qc in conn.execute(stmt) if isinstance(qc, dict)}

    @cached_property
    def failed_photos(self) -> dict[int, str]:
        """Photos whose newest analysis failed QC (another person, a nod, blur, a flag the study fails ...),
        with their failure codes (comma-separated).

        Their measurements stay in :attr:`measurements` and in the store, but no endpoint value and no
        population flag may rest on them, and the findings domain reports them as not done. A run stored
        without a QC verdict counts as passed.
        """
        # a check may fail twice (the head's roll and its nod are both 'pose'): each code once
        return {pid: _codes(qc.get("codes")) or "unknown"
                for pid, qc in self._latest_qc.items() if qc.get("passed") is False}

    @cached_property
    def flagged_photos(self) -> dict[int, str]:
        """Photos whose newest analysis passed QC with warnings (new spots on the skin, a smile, spectacles, a
        clipped region ...), with the warnings' codes (comma-separated).

        Their metrics are used; the warnings ask for a look at the photo (new spots after a session may be a
        skin reaction to record as an adverse event).
        """
        return {pid: codes for pid, qc in self._latest_qc.items()
                if qc.get("passed") is not False and (codes := _codes(qc.get("flag_codes")))}

    def passed_qc(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``frame`` (with a ``photo_id`` column) whose photo did not fail QC."""
        if frame.empty or not self.failed_photos:
            return frame
        return frame[~frame["photo_id"].isin(list(self.failed_photos))]

    def metric_values(self, metric: str) -> pd.DataFrame:
        """Values of one metric (newest run per photo): subject_id, visit_id, photo_id, region, value."""
        if "measurements" in self.__dict__:
            full = self.measurements
            return full.loc[
                full["metric"] == metric, ["subject_id", "visit_id", "photo_id", "region", "value"]
            ]
        stmt = (
            select(
                m.SubjectRow.subject_id,
                m.VisitRow.visit_id,
                m.PhotoRow.id.label("photo_id"),
                m.MeasurementRow.region,
                m.MeasurementRow.value,
            )
            .join(m.MeasurementRunRow, m.MeasurementRunRow.id == m.MeasurementRow.run_id)
            .join(m.PhotoRow, m.PhotoRow.id == m.MeasurementRunRow.photo_id)
            .join(m.VisitRow, m.VisitRow.id == m.PhotoRow.visit_pk)
            .join(m.SubjectRow, m.SubjectRow.id == m.PhotoRow.subject_pk)
            .where(
                m.SubjectRow.study_id == self.study_id,
                m.MeasurementRow.metric == metric,
                m.MeasurementRunRow.id.in_(self._latest_runs()),
            )
        )
        with self.store.connect() as conn:
            return self._frame(conn, stmt)

    @staticmethod
    def _frame(conn: Any, stmt: Any) -> pd.DataFrame:
        result = conn.execute(stmt)
        return pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))

    def _subjects(self, conn: Any) -> pd.DataFrame:
        consent = (
            select(m.ConsentRow.subject_pk, func.min(m.ConsentRow.signed_on).label("consent_on"))
            .group_by(m.ConsentRow.subject_pk)
            .subquery()
        )
        stmt = (
            select(
                m.SubjectRow.id.label("subject_pk"),
                m.SubjectRow.subject_id,
                m.SubjectRow.site,
                m.SubjectRow.age,
                m.SubjectRow.sex,
                m.SubjectRow.race,
                m.SubjectRow.fitzpatrick,
                m.SubjectRow.strata,
                m.SubjectRow.withdrawn_on,
                consent.c.consent_on,
                m.AllocationRow.rand_no,
                m.AllocationRow.arm_id,
                m.AllocationRow.code,
                m.AllocationRow.side_map,
                m.AllocationRow.allocated_at,
            )
            .outerjoin(consent, consent.c.subject_pk == m.SubjectRow.id)
            .outerjoin(m.AllocationRow, m.AllocationRow.subject_pk == m.SubjectRow.id)
            .where(m.SubjectRow.study_id == self.study_id)
            .order_by(m.SubjectRow.id)
        )
        return self._frame(conn, stmt)

    # -- labels ---------------------------------------------------------------------------------------------
    def usubjid(self, subject_id: str) -> str:
        """Unique subject id across studies: ``<study id>-<subject id>``."""
        return f"{self.study_id}-{subject_id}"

    def arm_code(self, arm_id: str | None) -> str | None:
        """ARMCD-like code: the blinded code while blinded, else the arm id."""
        return self.treatment(arm_id)

    def treatment(self, arm_id: str | None) -> str | None:
        """Treatment value of analysis datasets (TRTP, TRT01P): the code (``"A"``) while blinded, else the
        arm id (``"EP"``), which the analysis plan's comparisons name."""
        if arm_id is None or (isinstance(arm_id, float) and pd.isna(arm_id)):
            return None
        return self.codes.get(arm_id, "?") if self.blinded else arm_id

    def arm_name(self, arm_id: str | None) -> str | None:
        """Readable arm description (ARM, EXTRT): ``"Arm A"`` while blinded, else the arm's name."""
        if arm_id is None or (isinstance(arm_id, float) and pd.isna(arm_id)):
            return None
        if self.blinded:
            return f"Arm {self.codes.get(arm_id, '?')}"
        arm = self.info.arm(arm_id)
        return arm.name if arm else arm_id

    def treatment_codelist(self) -> str:
        """Codelist of the treatment variables as shown in this export."""
        ids = [a.id for a in self.info.arms] or sorted(self.codes)
        if self.blinded:
            return "; ".join(sorted(self.codes.get(a, "?") for a in ids))
        return "; ".join(f"{a} = {self.arm_name(a)}" for a in ids)

    def side_sequences(self) -> list[dict[str, str]]:
        """Split-face designs: the two side maps (side -> arm id) the randomisation deals; empty otherwise."""
        ids = [a.id for a in self.info.arms]
        if self.info.design != "split-face" or len(ids) != 2:
            return []
        return [{"left": ids[0], "right": ids[1]}, {"left": ids[1], "right": ids[0]}]

    def sequence_label(self, side_map: dict[str, str | None], name: Any = None) -> str:
        """A split-face subject's treatments by side, e.g. ``"EP left, MC right"`` (``name`` labels an arm id:
        :meth:`treatment` by default, :meth:`arm_name` for ARM)."""
        name = name or self.treatment
        return ", ".join(f"{name(side_map[k])} {k}" for k in sorted(side_map) if side_map[k])

    def sequence_code(self, side_map: dict[str, str]) -> str:
        """ARMCD of a split-face subject, e.g. ``"EPL/MCR"``."""
        return "/".join(f"{self.arm_code(side_map[k])}{k[0].upper()}" for k in sorted(side_map))

    def subject_treatment_codelist(self) -> str:
        """Codelist of subject-level treatment variables (TRT01P/A, and ADAE's TRTA): the side sequences in a
        split-face study, else the treatments."""
        seqs = self.side_sequences()
        if not seqs:
            return self.treatment_codelist()
        return "; ".join(sorted(self.sequence_label(m) for m in seqs))

    def subject_arm_codelists(self) -> tuple[str, str]:
        """Codelists of DM's ARMCD and ARM: the side sequences in a split-face study, else the arms."""
        seqs = self.side_sequences()
        if not seqs:
            ids = [a.id for a in self.info.arms] or sorted(self.codes)
            return "; ".join(sorted(str(self.treatment(a)) for a in ids)), self.arm_codelist()
        return ("; ".join(sorted(self.sequence_code(m) for m in seqs)),
                "; ".join(sorted(self.sequence_label(m, self.arm_name) for m in seqs)))

    def arm_codelist(self) -> str:
        """Codelist of the arm descriptions as shown in this export."""
        ids = [a.id for a in self.info.arms] or sorted(self.codes)
        if self.blinded:
            return "; ".join(sorted(f"Arm {self.codes.get(a, '?')}" for a in ids))
        return "; ".join(self.arm_name(a) or a for a in ids)

    def strata_variables(self) -> dict[str, str]:
        """Stratification factor -> SAS variable name (≤ 8)."""
        factors = list(self.info.strata_factors)
        if not factors and not self.subjects.empty:
            factors = sorted({k for s in self.subjects["strata"] if isinstance(s, dict) for k in s})
        taken = {"STUDYID", "USUBJID", "SUBJID", "SITEID", "AGE", "SEX", "RACE", "ARM", "TRTP", "TRTA"}
        return {f: variable_name(f, taken) for f in factors}

    def treated_subjects(self) -> set[str]:
        """Subjects with at least one delivery session that ended (completed, aborted or output unknown)."""
        if self.deliveries.empty:
            return set()
        done = self.deliveries[self.deliveries["status"] != "in_progress"]
        return set(done["subject_id"])

    @cached_property
    def ae_dictionary(self) -> Any:
        """The study's AE dictionary (:class:`toolkit.study.ae_dictionary.AEDictionary`), or ``None``."""
        if not self.info.ae_dictionary:
            return None
        from toolkit.study.ae_dictionary import load_ae_dictionary

        return load_ae_dictionary(self.info.ae_dictionary)

    def disposition_event(self, subject_id: str, scope: str) -> Any:
        """The subject's ``"treatment"`` or ``"study"`` disposition event (a row with ``on``, ``reason``,
        ``detail``), or ``None``."""
        d = self.disposition
        if d.empty:
            return None
        hit = d[(d["subject_id"] == subject_id) & (d["scope"] == scope)]
        return None if hit.empty else hit.iloc[0]

    def major_deviation_subjects(self) -> set[str]:
        """Subjects with a major protocol deviation."""
        if self.deviations.empty:
            return set()
        return set(self.deviations.loc[self.deviations["category"] == "major", "subject_id"])
