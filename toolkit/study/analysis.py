"""The statistical analysis plan (SAP) as the study file states it."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from toolkit.study.estimands import Estimand
from toolkit.study.problems import Problem, raise_problems

__all__ = [
    "Population",
    "PopulationRule",
    "Margin",
    "Comparison",
    "PlannedAnalysis",
    "Multiplicity",
    "AnalysisPlan",
    "REQUIRED_POPULATIONS",
]

#: populations every plan defines
REQUIRED_POPULATIONS = ("ITT", "SAFETY", "PP")
_ID = re.compile(r"^[A-Z][A-Z0-9_]{0,19}$")


class PopulationRule(BaseModel):
    """The computable part of a population's definition (used for the per-protocol set).

    A subject belongs when every stated condition holds: at least ``min_sessions`` completed sessions,
    a measured photo that passed QC at each visit of ``photos_at``, and (``no_major_deviation``) no major protocol
    deviation on record.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: completed treatment sessions needed (e.g. 10 of 12)
    min_sessions: int | None = Field(default=None, ge=1)
    #: visit ids at which a measured photo is needed (e.g. the primary visit)
    photos_at: tuple[str, ...] = ()
    #: exclude subjects with a major protocol deviation
    no_major_deviation: bool = True


class Population(BaseModel):
    """An analysis population (ITT, safety, per-protocol ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: short code, e.g. ITT, SAFETY, PP
    code: str
    #: how a subject belongs to it
    definition: str = Field(min_length=10)
    #: the definition as a rule the exports compute (the PP population needs one)
    rule: PopulationRule | None = None

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"population code {value!r} must be uppercase (e.g. ITT, SAFETY, PP)")
        return value


class Margin(BaseModel):
    """An equivalence or non-inferiority margin, in the endpoint's unit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: equivalence (two one-sided tests) or non-inferiority
    type: Literal["equivalence", "non_inferiority"]
    #: the margin (> 0), in the endpoint's unit
    value: float = Field(gt=0)


class Comparison(BaseModel):
    """A treatment-vs-control contrast; written ``{treatment: EP, control: SHAM}`` or ``"EP vs SHAM"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: arm id of the treatment
    treatment: str
    #: arm id of the comparator
    control: str
    #: margin for equivalence/non-inferiority; absent for superiority
    margin: Margin | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: object) -> object:
        if isinstance(data, str):
            parts = [p.strip() for p in re.split(r"\s+vs\.?\s+", data)]
            if len(parts) != 2 or not all(parts):
                raise ValueError(f"write a comparison as 'EP vs SHAM' or {{treatment: EP, control: SHAM}}; got {data!r}")
            return {"treatment": parts[0], "control": parts[1]}
        return data

    @property
    def label(self) -> str:
        """``"EP vs SHAM"``."""
        return f"{self.treatment} vs {self.control}"


_COMPARISON_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": r"^\s*\S+\s+vs\.?\s+\S+\s*$"},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["treatment", "control"],
            "properties": {
                "treatment": {"type": "string"},
                "control": {"type": "string"},
                "margin": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["type", "value"],
                    "properties": {
                        "type": {"enum": ["equivalence", "non_inferiority"]},
                        "value": {"type": "number", "exclusiveMinimum": 0},
                    },
                },
            },
        },
    ],
    "description": "'EP vs SHAM', or {treatment: EP, control: SHAM, margin: {type: non_inferiority, value: 2}}",
}


class PlannedAnalysis(BaseModel):
    """One planned analysis of one endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: id used by the multiplicity section, e.g. PRIMARY, KEY1
    id: str
    #: endpoint code
    endpoint: str
    #: ancova (one visit, change from baseline), mmrm (repeated visits) or paired (split-face, subject as
    #: random effect)
    model: Literal["ancova", "mmrm", "paired"]
    #: population code
    population: str = "ITT"
    #: visit analysed (ancova, paired) or last visit of interest (mmrm); visits from the endpoint for mmrm
    visit: str
    #: covariates: ``baseline`` (the endpoint at baseline) and subject-level variables
    covariates: tuple[str, ...] = ("baseline",)
    #: stratification factors adjusted for (must be randomization factors)
    strata: tuple[str, ...] = ()
    #: contrasts estimated
    comparisons: tuple[Annotated[Comparison, WithJsonSchema(_COMPARISON_SCHEMA)], ...] = Field(min_length=1)
    #: use Huber–White (HC3) standard errors (ancova)
    robust_se: bool = False

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"analysis id {value!r} must be uppercase letters, digits or _ (e.g. PRIMARY)")
        return value


class Multiplicity(BaseModel):
    """How the family-wise error rate is controlled across tests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: holm, hochberg, fixed-sequence, gatekeeping, or none
    procedure: Literal["holm", "hochberg", "fixed-sequence", "gatekeeping", "none"]
    #: holm/hochberg: the family of analysis ids; fixed-sequence: the analysis ids in testing order;
    #: gatekeeping: families in testing order, each a list of analysis ids
    order: tuple[str | tuple[str, ...], ...] = ()

    @model_validator(mode="after")
    def _order_shape(self) -> Multiplicity:
        if self.procedure == "none":
            return self
        if not self.order:
            raise ValueError(f"multiplicity procedure {self.procedure} needs `order` (the analysis ids tested)")
        nested = any(isinstance(o, tuple) for o in self.order)
        if self.procedure == "gatekeeping" and not all(isinstance(o, tuple) for o in self.order):
            raise ValueError("gatekeeping needs `order` as families in testing order, e.g. [[PRIMARY], [KEY1, KEY2]]")
        if self.procedure != "gatekeeping" and nested:
            raise ValueError(f"{self.procedure} needs `order` as a flat list of analysis ids")
        return self

    @property
    def analysis_ids(self) -> list[str]:
        """Every analysis id named by ``order``."""
        out: list[str] = []
        for item in self.order:
            out.extend(item if isinstance(item, tuple) else (item,))
        return out


class AnalysisPlan(BaseModel):
    """Populations, planned analyses, alpha and multiplicity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: two-sided significance level
    alpha: float = Field(default=0.05, gt=0, le=0.2)
    #: analysis populations; ITT, SAFETY and PP are required
    populations: tuple[Population, ...]
    #: planned analyses (the first with the primary endpoint is the primary analysis)
    analyses: tuple[PlannedAnalysis, ...] = Field(min_length=1)
    #: multiplicity control
    multiplicity: Multiplicity = Multiplicity(procedure="none")
    #: how missing data are handled, for the record (e.g. "MAR via MMRM; tipping-point sensitivity")
    missing_data: str | None = None
    #: estimands (ICH E9(R1)): main analysis, intercurrent events and strategies, sensitivity analyses
    estimands: tuple[Estimand, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> AnalysisPlan:
        problems: list[Problem] = []
        codes = [p.code for p in self.populations]
        missing = [c for c in REQUIRED_POPULATIONS if c not in codes]
        if missing:
            problems.append(Problem(("populations",), f"define the populations {', '.join(missing)} (ITT, SAFETY, PP are required)"))
        ids = [a.id for a in self.analyses]
        for i, analysis in enumerate(self.analyses):
            if ids.index(analysis.id) != i:
                problems.append(Problem(("analyses", i, "id"), f"analysis id {analysis.id} repeats"))
            if analysis.population not in codes:
                problems.append(
                    Problem(
                        ("analyses", i, "population"),
                        f"unknown population {analysis.population!r}; defined: {', '.join(codes)}",
                        value=analysis.population,
                    )
                )
        for name in self.multiplicity.analysis_ids:
            if name not in ids:
                problems.append(
                    Problem(("multiplicity", "order"), f"unknown analysis id {name!r}; defined: {', '.join(ids)}", value=name)
                )
        problems += self._estimand_problems(ids)
        raise_problems("AnalysisPlan", problems)
        return self

    def _estimand_problems(self, ids: list[str]) -> list[Problem]:
        problems: list[Problem] = []
        names = [e.id for e in self.estimands]
        for i, estimand in enumerate(self.estimands):
            where = ("estimands", i)
            if names.index(estimand.id) != i:
                problems.append(Problem((*where, "id"), f"estimand id {estimand.id} repeats"))
            if estimand.analysis not in ids:
                problems.append(
                    Problem((*where, "analysis"), f"unknown analysis id {estimand.analysis!r}; defined: {', '.join(ids)}",
                            value=estimand.analysis)
                )
                continue
            main = self.analysis(estimand.analysis)
            if estimand.endpoint is not None and estimand.endpoint != main.endpoint:
                problems.append(
                    Problem((*where, "endpoint"), f"endpoint {estimand.endpoint!r} is not the endpoint of analysis "
                            f"{main.id} ({main.endpoint})", value=estimand.endpoint)
                )
            if estimand.population is not None and estimand.population != main.population:
                problems.append(
                    Problem((*where, "population"), f"population {estimand.population!r} is not the population of "
                            f"analysis {main.id} ({main.population})", value=estimand.population)
                )
            controls = {c.control for c in main.comparisons}
            if len(controls) > 1 and estimand.sensitivity:
                problems.append(
                    Problem((*where, "sensitivity"), f"analysis {main.id} compares against several controls "
                            f"({', '.join(sorted(controls))}); sensitivity analyses need one comparator")
                )
        return problems

    def estimand(self, estimand_id: str) -> Estimand:
        """The estimand with id ``estimand_id``."""
        for estimand in self.estimands:
            if estimand.id == estimand_id:
                return estimand
        raise KeyError(f"no estimand {estimand_id!r}; defined: {', '.join(e.id for e in self.estimands)}")

    def analysis(self, analysis_id: str) -> PlannedAnalysis:
        """The planned analysis with id ``analysis_id``."""
        for analysis in self.analyses:
            if analysis.id == analysis_id:
                return analysis
        raise KeyError(f"no analysis {analysis_id!r}; defined: {', '.join(a.id for a in self.analyses)}")
