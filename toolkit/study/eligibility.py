"""Who may enter the study."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

__all__ = ["Eligibility", "REQUIRED_EXCLUSIONS"]

#: exclusions every study keeps: both treatments are contraindicated on such skin (seed articles)
REQUIRED_EXCLUSIONS = ("sensitive_skin", "damaged_skin", "inflamed_skin")

_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6}
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


class Eligibility(BaseModel):
    """Inclusion and exclusion criteria."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: youngest age admitted (years, inclusive)
    age_min_years: int = Field(ge=18, le=100, strict=True)
    #: oldest age admitted (years, inclusive)
    age_max_years: int = Field(ge=18, le=110, strict=True)
    #: Fitzpatrick skin types admitted, 1–6 (roman numerals I–VI accepted)
    fitzpatrick_types: tuple[
        Annotated[int, WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1, "maximum": 6}, {"enum": list(_ROMAN)}]})],
        ...,
    ] = Field(min_length=1)
    #: exclusion criteria as snake_case codes; must include sensitive_skin, damaged_skin, inflamed_skin
    exclusions: tuple[str, ...]
    #: a passed patch test is required before the first session (the seed articles require it)
    patch_test_required: bool = True
    #: hours between applying the patch test and reading it
    patch_test_read_hours: int = Field(default=48, ge=1, le=168, strict=True)

    @field_validator("age_max_years")
    @classmethod
    def _range_ordered(cls, value: int, info) -> int:
        low = info.data.get("age_min_years")
        if low is not None and value < low:
            raise ValueError(f"age_max_years {value} is below age_min_years {low}")
        return value

    @field_validator("fitzpatrick_types", mode="before")
    @classmethod
    def _roman(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            out = []
            for item in value:
                if isinstance(item, str) and item.strip().upper() in _ROMAN:
                    out.append(_ROMAN[item.strip().upper()])
                elif isinstance(item, str) and not item.strip().isdigit():
                    raise ValueError(f"Fitzpatrick types are 1–6 or I–VI; got {item!r}")
                else:
                    out.append(item)
            return out
        return value

    @field_validator("fitzpatrick_types")
    @classmethod
    def _known_types(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [t for t in value if not 1 <= t <= 6]
        if bad:
            raise ValueError(f"Fitzpatrick types are 1–6 (or I–VI); got {bad}")
        if len(set(value)) != len(value):
            raise ValueError("Fitzpatrick types repeat")
        return tuple(sorted(value))

    @field_validator("exclusions")
    @classmethod
    def _required_exclusions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in value if not _CODE.match(c)]
        if bad:
            raise ValueError(f"exclusions are snake_case codes (e.g. sensitive_skin); got {bad}")
        missing = [c for c in REQUIRED_EXCLUSIONS if c not in value]
        if missing:
            raise ValueError(
                f"exclusions must include {', '.join(missing)}: neither treatment may be given on such skin"
            )
        return value

    @field_validator("patch_test_required")
    @classmethod
    def _patch_test_kept(cls, value: bool) -> bool:
        if not value:
            raise ValueError("a passed patch test before the first session is required (seed articles); keep true")
        return value
