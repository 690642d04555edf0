"""Study endpoints: photo metrics, clinician scales and safety counts.

Each endpoint has a ``code`` usable as CDISC ``PARAMCD`` (uppercase, ≤ 8 characters) and a ``label``
(``PARAM``, ≤ 40 characters). The ``kind`` key selects the model.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from toolkit.study.scales import KNOWN_ANCHORS, RATED_AGAINST_BASELINE

__all__ = [
    "PHOTO_METRICS",
    "REGIONS",
    "SCALE_RANGES",
    "PhotoEndpoint",
    "ScaleEndpoint",
    "SafetyEndpoint",
    "Endpoint",
    "EndpointRole",
]

#: photo metrics the imaging room computes (unit in the name)
PHOTO_METRICS = (
    "wrinkle_count",
    "wrinkle_length_mm",
    "wrinkle_density_mm_per_cm2",
    "wrinkle_area_fraction",
    "ridge_strength",
    "wrinkle_depth_index",
    "skin_fraction",
    "lift_mm",
    "displacement_mm",
)
#: facial regions of interest
REGIONS = (
    "forehead",
    "glabella",
    "crows_feet_l",
    "crows_feet_r",
    "under_eye_l",
    "under_eye_r",
    "nasolabial_l",
    "nasolabial_r",
    "cheek_l",
    "cheek_r",
    "perioral",
    "marionette_l",
    "marionette_r",
    "jawline_l",
    "jawline_r",
)
#: clinician scales and their published ranges (min, max)
SCALE_RANGES: dict[str, tuple[float, float]] = {
    "GAIS": (1, 5),  # Global Aesthetic Improvement Scale: 1 very much improved … 5 worse
    "WSRS": (1, 5),  # Wrinkle Severity Rating Scale, 5 grades
    "MFWS": (0, 3),  # Modified Fitzpatrick Wrinkle Scale (half-point steps)
    "ALLERGAN_FINE_LINES": (0, 4),  # Allergan fine lines; a ≥ 1-point change is clinically meaningful
    "LEMPERLE": (0, 5),
    "MERZ_JAWLINE": (0, 4),
}

EndpointRole = Literal["primary", "key_secondary", "secondary", "exploratory", "safety"]
_PARAMCD = re.compile(r"^[A-Z][A-Z0-9]{0,7}$")


class _EndpointBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: CDISC PARAMCD: uppercase letters and digits, ≤ 8 characters, starting with a letter
    code: str
    #: CDISC PARAM: readable label, ≤ 40 characters
    label: str = Field(min_length=1, max_length=40)
    #: role in the analysis plan
    role: EndpointRole
    #: visit ids where the endpoint is assessed (baseline included when change from baseline is analysed)
    visits: tuple[str, ...] = ()

    @field_validator("code")
    @classmethod
    def _paramcd(cls, value: str) -> str:
        if not _PARAMCD.match(value):
            raise ValueError(
                f"endpoint code {value!r} must be a CDISC PARAMCD: 1–8 uppercase letters or digits, starting "
                "with a letter (e.g. NLFLEN)"
            )
        return value


class PhotoEndpoint(_EndpointBase):
    """A photo metric in one or more facial regions (combined by ``combine``)."""

    #: discriminator
    kind: Literal["photo"] = "photo"
    #: the metric, one of :data:`PHOTO_METRICS`
    metric: Literal[PHOTO_METRICS]  # type: ignore[valid-type]
    #: region(s); a single region or a list (e.g. both nasolabial folds)
    region: Annotated[
        tuple[Literal[REGIONS], ...],  # type: ignore[valid-type]
        WithJsonSchema(
            {"anyOf": [{"enum": list(REGIONS)}, {"type": "array", "minItems": 1, "items": {"enum": list(REGIONS)}}]}
        ),
    ] = Field(min_length=1)
    #: how several regions combine into one value per subject and visit
    combine: Literal["mean", "sum"] = "mean"
    #: which direction is an improvement
    better: Literal["lower", "higher"] = "lower"

    @field_validator("region", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class ScaleEndpoint(_EndpointBase):
    """A clinician (or subject) rating scale."""

    #: discriminator
    kind: Literal["scale"] = "scale"
    #: the scale, e.g. GAIS, WSRS, MFWS, ALLERGAN_FINE_LINES, LEMPERLE, MERZ_JAWLINE, or another name with a range
    scale: str = Field(min_length=2, max_length=40)
    #: lowest score (defaults to the published range of a known scale)
    min: float | None = Field(default=None, validate_default=True)
    #: highest score
    max: float | None = Field(default=None, validate_default=True)
    #: who rates
    rater: Literal["clinician", "blinded_evaluator", "subject"] = "clinician"
    #: region rated, if the scale is regional
    region: Literal[REGIONS] | None = None  # type: ignore[valid-type]
    #: which direction is an improvement
    better: Literal["lower", "higher"] = "lower"
    #: grade -> what it means, shown to the rater (defaults to the published anchors of GAIS and WSRS)
    anchors: dict[float, str] = Field(default_factory=dict, validate_default=True)
    #: grade -> a reference picture of that grade (path relative to the study folder), where the scale has them
    grade_pictures: dict[float, str] = Field(default_factory=dict)
    #: rated by comparing each follow-up photo with the baseline photo (default: true for GAIS)
    against_baseline: bool | None = Field(default=None, validate_default=True)
    #: fraction of each rater's photo sets shown a second time, blind, for intra-rater agreement
    rerate_fraction: float = Field(default=0.2, ge=0, le=1)

    @field_validator("anchors")
    @classmethod
    def _known_anchors(cls, value: dict[float, str], info: ValidationInfo) -> dict[float, str]:
        if value:
            return {float(k): " ".join(str(v).split()) for k, v in value.items()}
        scale = str(info.data.get("scale") or "").upper()
        return {float(k): v for k, v in KNOWN_ANCHORS.get(scale, {}).items()}

    @field_validator("against_baseline")
    @classmethod
    def _against_baseline(cls, value: bool | None, info: ValidationInfo) -> bool:
        if value is not None:
            return value
        return str(info.data.get("scale") or "").upper() in RATED_AGAINST_BASELINE

    @model_validator(mode="after")
    def _grades_in_range(self) -> ScaleEndpoint:
        for name, grades in (("anchors", self.anchors), ("grade_pictures", self.grade_pictures)):
            outside = [g for g in grades if self.min is not None and self.max is not None
                       and not self.min <= g <= self.max]
            if outside:
                raise ValueError(f"{name}: grade(s) {', '.join(f'{g:g}' for g in outside)} outside the scale's "
                                 f"range {self.min:g}–{self.max:g}")
        return self

    @field_validator("min", "max")
    @classmethod
    def _published_range(cls, value: float | None, info: ValidationInfo) -> float | None:
        scale = info.data.get("scale")
        if scale is None:
            return value
        known = SCALE_RANGES.get(scale.upper())
        if value is None and known is None:
            raise ValueError(f"scale {scale!r} is not one of {', '.join(SCALE_RANGES)}; give its {info.field_name}")
        value = float(value if value is not None else known[0 if info.field_name == "min" else 1])
        low = info.data.get("min")
        if info.field_name == "max" and low is not None and value <= low:
            raise ValueError(f"scale max ({value:g}) must exceed min ({low:g})")
        return value


class SafetyEndpoint(_EndpointBase):
    """A safety count, e.g. subjects with a treatment-emergent adverse event."""

    #: discriminator
    kind: Literal["safety"] = "safety"
    #: the event counted (snake_case), e.g. adverse_event, local_skin_reaction, muscle_twitching
    event: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    #: subjects with ≥ 1 event (incidence) or number of events (count)
    measure: Literal["incidence", "count"] = "incidence"


#: an endpoint of any kind, selected by its ``kind`` key
Endpoint = Annotated[PhotoEndpoint | ScaleEndpoint | SafetyEndpoint, Field(discriminator="kind")]
