"""The study: design, arms, schedule, eligibility, endpoints, analysis plan, tolerances, randomization."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from toolkit.study.analysis import AnalysisPlan
from toolkit.study.eligibility import Eligibility
from toolkit.study.endpoints import Endpoint, PhotoEndpoint
from toolkit.study.envelope import SafetyEnvelope
from toolkit.study.photo_qc import PhotoQC
from toolkit.study.prescription import Prescription
from toolkit.study.problems import Problem, raise_problems
from toolkit.study.randomization import RandomizationPlan
from toolkit.study.schedule import Schedule, Visit
from toolkit.study.tolerances import Tolerances

__all__ = ["Arm", "Study", "Design"]

Design = Literal["parallel", "split-face"]
_ARM_ID = re.compile(r"^[A-Z][A-Z0-9]{0,7}$")
_STUDY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")


class Arm(BaseModel):
    """A treatment arm (or, in a split-face design, the treatment given to one side)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: short id used everywhere (CDISC ARMCD), e.g. EP, MC, SHAM
    id: str
    #: readable name (CDISC ARM)
    name: str = Field(min_length=1, max_length=40)
    #: allocation ratio (parallel designs); 1 in split-face designs
    ratio: int = Field(default=1, ge=1, le=10, strict=True)
    #: what is delivered in each session
    prescription: Prescription

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _ARM_ID.match(value):
            raise ValueError(f"arm id {value!r} must be 1–8 uppercase letters or digits, starting with a letter (e.g. EP)")
        return value

    @property
    def modality(self) -> str:
        """``'electroporation'``, ``'microcurrent'`` or ``'sham'`` (from the prescription)."""
        return self.prescription.modality


class Study(BaseModel):
    """A validated study definition (``studies/<id>/study.yaml``); load it with :func:`toolkit.study.load_study`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: study id, also the folder name and the data folder (``data/<id>/``)
    id: str
    #: full title
    title: str = Field(min_length=1)
    #: protocol version
    version: str = "1.0"
    #: a paragraph about the study
    description: str | None = None
    #: parallel arms, or split-face (each subject gets both treatments on randomized sides)
    design: Design
    #: treatment arms
    arms: tuple[Arm, ...] = Field(min_length=2)
    #: treatment course and visits
    schedule: Schedule
    #: who may enter
    eligibility: Eligibility
    #: endpoints (exactly one primary)
    endpoints: tuple[Endpoint, ...] = Field(min_length=1)
    #: statistical analysis plan
    analysis: AnalysisPlan
    #: delivery verification tolerances
    tolerances: Tolerances = Tolerances()
    #: randomization plan
    randomization: RandomizationPlan
    #: safety limits (defaults of IEC 60601-2-10; may only be tightened)
    envelope: SafetyEnvelope = SafetyEnvelope()
    #: photo QC policy: which warnings of the photo analysis fail a photo instead
    photo_qc: PhotoQC = PhotoQC()
    #: adverse-event dictionary (verbatim → preferred term → system organ class): a CSV path relative to the
    #: study folder, or ``starter`` for the toolkit's starter dictionary of local reactions
    ae_dictionary: str | None = None

    _path: Path | None = PrivateAttr(default=None)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _STUDY_ID.match(value):
            raise ValueError(f"study id {value!r} must be 2–40 lowercase letters, digits or '-' (e.g. epmc-demo)")
        return value

    # -- convenience ---------------------------------------------------------------------------------

    @property
    def ae_dictionary_path(self) -> str | None:
        """The AE dictionary as a file path (or ``"starter"``); ``None`` when the study names none."""
        if self.ae_dictionary is None or self.ae_dictionary == "starter":
            return self.ae_dictionary
        base = self._path or Path.cwd()
        return str((base / self.ae_dictionary).resolve())

    @property
    def path(self) -> Path | None:
        """The study folder (``None`` for a study built in memory)."""
        return self._path

    @property
    def visits(self) -> list[Visit]:
        """Visits in time order."""
        return list(self.schedule.visits)

    def visit(self, visit_id: str) -> Visit:
        """The visit with id ``visit_id``."""
        return self.schedule.visit(visit_id)

    def arm(self, arm_id: str) -> Arm:
        """The arm with id ``arm_id``."""
        for arm in self.arms:
            if arm.id == arm_id:
                return arm
        raise KeyError(f"no arm {arm_id!r} in study {self.id}; arms: {', '.join(a.id for a in self.arms)}")

    def endpoint(self, code: str) -> Endpoint:
        """The endpoint with code ``code``."""
        for endpoint in self.endpoints:
            if endpoint.code == code:
                return endpoint
        raise KeyError(f"no endpoint {code!r}; endpoints: {', '.join(e.code for e in self.endpoints)}")

    @property
    def primary_endpoint(self) -> Endpoint:
        """The primary endpoint."""
        return next(e for e in self.endpoints if e.role == "primary")

    @property
    def arm_ids(self) -> list[str]:
        """Arm ids in file order."""
        return [a.id for a in self.arms]

    # -- cross-section rules -------------------------------------------------------------------------

    @model_validator(mode="after")
    def _consistent(self) -> Study:
        problems: list[Problem] = []
        problems += self._arm_problems()
        problems += envelope_problems(self.arms, self.envelope)
        problems += self._endpoint_problems()
        problems += self._analysis_problems()
        problems += self._randomization_problems()
        raise_problems("Study", problems)
        return self

    def _arm_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        ids = self.arm_ids
        active = [a.id for a in self.arms if a.modality != "sham"]
        for i, arm in enumerate(self.arms):
            where = ("arms", i)
            if ids.index(arm.id) != i:
                problems.append(Problem((*where, "id"), f"arm id {arm.id} repeats"))
            prescription = arm.prescription
            mimics = getattr(prescription, "mimics", None)
            if mimics is not None and mimics not in active:
                problems.append(
                    Problem(
                        (*where, "prescription", "mimics"),
                        f"sham mimics {mimics!r}, which is not an active arm; active arms: {', '.join(active)}",
                        value=mimics,
                    )
                )
            placement = prescription.placement
            if self.design == "split-face":
                if not placement.side_neutral:
                    problems.append(
                        Problem(
                            (*where, "prescription", "placement"),
                            "in a split-face design write sites without side or midline sites (e.g. [cheek, "
                            "jawline]); the side comes from randomization",
                        )
                    )
                if arm.ratio != 1:
                    problems.append(Problem((*where, "ratio"), "a split-face design has no allocation ratio; use 1"))
        if self.design == "split-face" and len(self.arms) != 2:
            problems.append(
                Problem(("arms",), f"a split-face design compares exactly two treatments (one per side); got {len(self.arms)}")
            )
        if not active:
            problems.append(Problem(("arms",), "at least one arm must be active (electroporation or microcurrent)"))
        return problems

    def _endpoint_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        codes = [e.code for e in self.endpoints]
        visit_ids = [v.id for v in self.schedule.visits]
        for i, endpoint in enumerate(self.endpoints):
            if codes.index(endpoint.code) != i:
                problems.append(Problem(("endpoints", i, "code"), f"endpoint code {endpoint.code} repeats"))
            for j, visit in enumerate(endpoint.visits):
                if visit not in visit_ids:
                    problems.append(
                        Problem(
                            ("endpoints", i, "visits", j),
                            f"unknown visit {visit!r}; visits: {', '.join(visit_ids)}",
                            value=visit,
                        )
                    )
            if self.design == "split-face" and isinstance(endpoint, PhotoEndpoint):
                lateral = {r for r in endpoint.region if r.endswith(("_l", "_r"))}
                unpaired = sorted(
                    r for r in endpoint.region
                    if r not in lateral or (r[:-2] + ("_r" if r.endswith("_l") else "_l")) not in lateral
                )
                if unpaired:
                    problems.append(
                        Problem(
                            ("endpoints", i, "region"),
                            f"a split-face endpoint compares the two sides: list lateral regions for both sides "
                            f"(e.g. [nasolabial_l, nasolabial_r]); {', '.join(unpaired)} has no mirror region",
                        )
                    )
        primaries = [i for i, e in enumerate(self.endpoints) if e.role == "primary"]
        if len(primaries) != 1:
            problems.append(Problem(("endpoints",), f"exactly one endpoint must have role: primary; found {len(primaries)}"))
        return problems

    def _analysis_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        codes = [e.code for e in self.endpoints]
        visit_ids = [v.id for v in self.schedule.visits]
        arm_ids = self.arm_ids
        factors = self.randomization.factor_names
        for i, analysis in enumerate(self.analysis.analyses):
            where = ("analysis", "analyses", i)
            if analysis.endpoint not in codes:
                problems.append(
                    Problem((*where, "endpoint"), f"unknown endpoint {analysis.endpoint!r}; endpoints: {', '.join(codes)}")
                )
            if analysis.visit not in visit_ids:
                problems.append(
                    Problem((*where, "visit"), f"unknown visit {analysis.visit!r}; visits: {', '.join(visit_ids)}")
                )
            elif self.schedule.visit(analysis.visit).kind == "baseline":
                problems.append(Problem((*where, "visit"), "the analysed visit must come after baseline"))
            if self.design == "split-face" and analysis.model != "paired":
                problems.append(
                    Problem(
                        (*where, "model"),
                        f"a split-face design compares sides within a subject: use model: paired, not {analysis.model}",
                    )
                )
            if self.design == "parallel" and analysis.model == "paired":
                problems.append(
                    Problem((*where, "model"), "model: paired is for split-face designs; use ancova or mmrm")
                )
            for j, stratum in enumerate(analysis.strata):
                if stratum not in factors:
                    problems.append(
                        Problem(
                            (*where, "strata", j),
                            f"{stratum!r} is not a randomization factor; factors: {', '.join(factors) or 'none'}",
                        )
                    )
            for j, comparison in enumerate(analysis.comparisons):
                for role in ("treatment", "control"):
                    arm_id = getattr(comparison, role)
                    if arm_id not in arm_ids:
                        problems.append(
                            Problem(
                                (*where, "comparisons", j, role),
                                f"unknown arm {arm_id!r}; arms: {', '.join(arm_ids)}",
                            )
                        )
                if comparison.treatment == comparison.control:
                    problems.append(Problem((*where, "comparisons", j), "an arm cannot be compared with itself"))
        for i, population in enumerate(self.analysis.populations):
            rule = population.rule
            if rule is None:
                continue
            where = ("analysis", "populations", i, "rule")
            if rule.min_sessions is not None and rule.min_sessions > self.schedule.sessions:
                problems.append(Problem((*where, "min_sessions"), f"{rule.min_sessions} sessions asked, but the "
                                        f"schedule has {self.schedule.sessions}"))
            for j, visit_id in enumerate(rule.photos_at):
                if visit_id not in visit_ids:
                    problems.append(Problem((*where, "photos_at", j),
                                            f"unknown visit {visit_id!r}; visits: {', '.join(visit_ids)}"))
        problems += self._estimand_problems(arm_ids)
        primary = self.primary_endpoint.code if any(e.role == "primary" for e in self.endpoints) else None
        if primary and not any(a.endpoint == primary for a in self.analysis.analyses):
            problems.append(Problem(("analysis", "analyses"), f"no planned analysis of the primary endpoint {primary}"))
        return problems

    def _estimand_problems(self, arm_ids: list[str]) -> list[Problem]:
        """Reference arms the estimands name must exist; imputation needs parallel arms. (The endpoint and
        population of an estimand are checked against its main analysis by the plan.)"""
        problems: list[Problem] = []
        for i, estimand in enumerate(self.analysis.estimands):
            where = ("analysis", "estimands", i)
            named = [(("intercurrent_events", j), e.reference) for j, e in enumerate(estimand.intercurrent_events)]
            named += [(("sensitivity", j), s.reference) for j, s in enumerate(estimand.sensitivity)]
            for loc, arm in named:
                if arm is not None and arm not in arm_ids:
                    problems.append(
                        Problem((*where, *loc, "reference"), f"reference arm {arm!r} does not exist; arms: "
                                f"{', '.join(arm_ids)}", value=arm)
                    )
            imputes = any(s.method == "reference_based" or s.method == "tipping_point" for s in estimand.sensitivity)
            imputes = imputes or any(e.assumption != "MAR" for e in estimand.intercurrent_events)
            if imputes and self.design == "split-face":
                problems.append(
                    Problem((*where, "sensitivity"), "reference-based imputation and tipping points compare parallel "
                            "arms; a split-face study has both treatments in each subject")
                )
        return problems

    def _randomization_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        unit = 2 if self.design == "split-face" else sum(a.ratio for a in self.arms)
        what = "the two side sequences" if self.design == "split-face" else f"the arm ratios (sum {unit})"
        for j, size in enumerate(self.randomization.block_sizes):
            if size % unit:
                problems.append(
                    Problem(
                        ("randomization", "block_sizes", j),
                        f"block size {size} is not a multiple of {unit} ({what}); blocks would be unbalanced",
                        value=size,
                    )
                )
        return problems


def envelope_problems(arms: tuple[Arm, ...], envelope: SafetyEnvelope) -> list[Problem]:
    """The envelope violations of every arm's prescription, located at the offending field."""
    problems: list[Problem] = []
    for i, arm in enumerate(arms):
        for violation in envelope.check(arm.prescription):
            problems.append(
                Problem(
                    ("arms", i, "prescription", violation.field),
                    f"arm {arm.id}: {violation.message}",
                    kind="safety_envelope",
                    value=violation.value,
                )
            )
    return problems
