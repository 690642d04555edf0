"""Estimands of the analysis plan (ICH E9(R1)): what is estimated, and what happens after intercurrent events.

An estimand names its main analysis (a planned analysis: the endpoint, visit, population, treatments and
model come from it), the variable in words, the strategy for each intercurrent event, the population-level
summary, and its sensitivity analyses::

    estimands:
      - id: E_NLFLEN
        analysis: KEY1                           # main estimator: the MMRM of NLFLEN at S12
        variable: change from baseline in total nasolabial fold length after 12 sessions
        intercurrent_events:
          - {event: treatment_discontinuation, strategy: hypothetical}
          - {event: ae_withdrawal, strategy: treatment_policy, assumption: J2R, reference: SHAM}
          - {event: prohibited_procedure, strategy: composite, value: no_improvement}
        summary_measure: difference in mean change from baseline (LS means)
        sensitivity:
          - {method: reference_based, assumption: J2R, reference: SHAM}
          - {method: tipping_point}

The toolkit derives the events from the study's records: a treatment discontinuation or withdrawal (end of
treatment with its date and reason; the reason ADVERSE EVENT makes it ``ae_withdrawal``), and a protocol
deviation whose description names a prohibited facial procedure (``terms``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "ALLOWED_STRATEGIES",
    "ASSUMPTIONS",
    "INTERCURRENT_EVENTS",
    "PROCEDURE_TERMS",
    "STRATEGIES",
    "Estimand",
    "EventStrategy",
    "Sensitivity",
]

#: intercurrent events the toolkit derives from the study's records
INTERCURRENT_EVENTS = ("treatment_discontinuation", "ae_withdrawal", "prohibited_procedure")
#: strategies of ICH E9(R1)
STRATEGIES = ("treatment_policy", "hypothetical", "while_on_treatment", "composite", "principal_stratum")
#: the strategies each event allows (principal stratum has no estimator in the toolkit)
ALLOWED_STRATEGIES = {
    "treatment_discontinuation": ("treatment_policy", "hypothetical", "while_on_treatment", "composite"),
    "ae_withdrawal": ("treatment_policy", "hypothetical", "while_on_treatment", "composite"),
    # a procedure done outside the protocol does not end treatment: "while on treatment" does not apply
    "prohibited_procedure": ("treatment_policy", "hypothetical", "composite"),
}
#: assumptions about missing outcomes after an event (reference-based imputation)
ASSUMPTIONS = ("MAR", "J2R", "CR", "CIR")
#: words in a protocol deviation that mark a prohibited facial procedure (case-insensitive)
PROCEDURE_TERMS = (
    "prohibited procedure",
    "filler",
    "hyaluronic",
    "botulinum",
    "botox",
    "laser",
    "chemical peel",
    "microneedling",
    "radiofrequency",
    "thread lift",
    "facelift",
)
_ID = r"^[A-Z][A-Z0-9_]{0,19}$"


class EventStrategy(BaseModel):
    """How one intercurrent event is handled by the estimand."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the event: treatment_discontinuation, ae_withdrawal or prohibited_procedure
    event: Literal[INTERCURRENT_EVENTS]  # type: ignore[valid-type]
    #: treatment_policy, hypothetical, while_on_treatment or composite
    strategy: Literal[STRATEGIES]  # type: ignore[valid-type]
    #: treatment policy: what is assumed of outcomes missing after the event (MAR, J2R, CR, CIR)
    assumption: Literal[ASSUMPTIONS] = "MAR"  # type: ignore[valid-type]
    #: the reference arm of J2R, CR and CIR
    reference: str | None = None
    #: composite: the value given after the event, no improvement (change 0) or the worst change observed
    value: Literal["no_improvement", "worst"] = "no_improvement"
    #: prohibited_procedure: words in a deviation's description that mark the procedure
    terms: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> EventStrategy:
        if self.strategy == "principal_stratum":
            raise ValueError(
                f"strategy principal_stratum for {self.event}: the toolkit has no estimator of a principal "
                f"stratum; accepted for {self.event}: {', '.join(ALLOWED_STRATEGIES[self.event])}"
            )
        if self.strategy not in ALLOWED_STRATEGIES[self.event]:
            raise ValueError(
                f"strategy {self.strategy} is not allowed for {self.event}; accepted: "
                f"{', '.join(ALLOWED_STRATEGIES[self.event])}"
            )
        if self.assumption != "MAR" and self.strategy != "treatment_policy":
            raise ValueError(
                f"assumption {self.assumption} applies to the treatment_policy strategy only (a hypothetical "
                "strategy assumes MAR); list a reference-based analysis under `sensitivity` instead"
            )
        if self.assumption != "MAR" and not self.reference:
            raise ValueError(f"assumption {self.assumption} needs `reference`: the arm whose course is assumed")
        if self.terms and self.event != "prohibited_procedure":
            raise ValueError("`terms` belong to the prohibited_procedure event")
        return self

    @property
    def procedure_terms(self) -> tuple[str, ...]:
        """Words that mark a prohibited procedure in a deviation (the file's, else the defaults)."""
        return self.terms or PROCEDURE_TERMS


class Sensitivity(BaseModel):
    """A sensitivity analysis of an estimand's main estimator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: reference_based (multiple imputation under an assumption) or tipping_point (delta adjustment)
    method: Literal["reference_based", "tipping_point"]
    #: reference_based: MAR, J2R, CR or CIR
    assumption: Literal[ASSUMPTIONS] = "J2R"  # type: ignore[valid-type]
    #: reference arm of J2R, CR and CIR
    reference: str | None = None
    #: approximate_bayesian (Rubin's rules) or conditional_mean (jackknife or bootstrap standard errors)
    inference: Literal["approximate_bayesian", "conditional_mean"] = "approximate_bayesian"
    #: imputations of the approximate Bayesian method, or bootstrap samples
    imputations: int = Field(default=200, ge=2, le=100_000)
    #: conditional mean: jackknife or bootstrap
    resampling: Literal["jackknife", "bootstrap"] = "jackknife"
    #: tipping point: the deltas tried (outcome units); default a grid toward no difference
    deltas: tuple[float, ...] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Sensitivity:
        if self.method == "reference_based" and self.assumption != "MAR" and not self.reference:
            raise ValueError(f"a {self.assumption} analysis needs `reference`: the arm whose course is assumed")
        if self.deltas is not None and self.method != "tipping_point":
            raise ValueError("`deltas` belong to a tipping_point analysis")
        if self.deltas is not None and len(self.deltas) < 2:
            raise ValueError("a tipping-point grid needs at least two deltas")
        return self

    @property
    def label(self) -> str:
        """Short name, e.g. ``J2R (approximate Bayesian MI)``."""
        if self.method == "tipping_point":
            return "tipping point (delta-adjusted MAR)"
        how = "approximate Bayesian MI" if self.inference == "approximate_bayesian" else (
            f"conditional mean imputation, {self.resampling}"
        )
        return f"{self.assumption} ({how})"

    @property
    def short_label(self) -> str:
        """A few words for a figure's row, e.g. ``J2R, Bayesian MI`` or ``CR, CMI jackknife``."""
        if self.method == "tipping_point":
            return "tipping point"
        how = "Bayesian MI" if self.inference == "approximate_bayesian" else f"CMI {self.resampling}"
        return f"{self.assumption}, {how}"


class Estimand(BaseModel):
    """One estimand: main analysis, variable, intercurrent events with strategies, summary, sensitivity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: id, e.g. E_PRIMARY
    id: str = Field(pattern=_ID)
    #: the planned analysis that is the main estimator (gives endpoint, visit, population, treatments)
    analysis: str
    #: endpoint code; optional, must be the main analysis's endpoint when given
    endpoint: str | None = None
    #: population code; optional, must be the main analysis's population when given
    population: str | None = None
    #: the variable in words (default: change from baseline in the endpoint at the analysed visit)
    variable: str | None = Field(default=None, min_length=5)
    #: strategy of each intercurrent event (each event at most once)
    intercurrent_events: tuple[EventStrategy, ...] = ()
    #: population-level summary
    summary_measure: str = Field(default="difference in mean change from baseline (LS means)", min_length=5)
    #: sensitivity analyses of the main estimator
    sensitivity: tuple[Sensitivity, ...] = ()

    @field_validator("intercurrent_events")
    @classmethod
    def _once(cls, value: tuple[EventStrategy, ...]) -> tuple[EventStrategy, ...]:
        events = [e.event for e in value]
        repeated = sorted({e for e in events if events.count(e) > 1})
        if repeated:
            raise ValueError(f"event {repeated[0]} is listed more than once; give each event one strategy")
        return value

    def strategy(self, event: str) -> EventStrategy | None:
        """The strategy of ``event`` (None when the estimand does not name it)."""
        return next((e for e in self.intercurrent_events if e.event == event), None)
