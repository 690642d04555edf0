"""Who may enter the study: age and skin-type ranges checked from the subject's data, and the checklist of
inclusion and exclusion criteria a site answers item by item at screening.

In ``study.yaml`` each criterion is a snake_case code, optionally with the question shown to the site::

    inclusions:
      - moderate_nasolabial_folds: Moderate or severe nasolabial folds (WSRS 3–4) on both sides
    exclusions:
      - sensitive_skin: Sensitive or reactive facial skin
      - epilepsy                     # shown as "Epilepsy"

An answer is ``True`` when the criterion holds for the subject: every inclusion must hold and no exclusion.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

__all__ = ["REQUIRED_EXCLUSIONS", "Criterion", "Eligibility", "checklist_problems"]

#: exclusions every study keeps: both treatments are contraindicated on such skin (seed articles)
REQUIRED_EXCLUSIONS = ("sensitive_skin", "damaged_skin", "inflamed_skin")

_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6}
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Criterion:
    """One item of the eligibility checklist."""

    #: snake_case code, the key of the answer
    code: str
    #: the question shown to the site
    text: str
    #: ``inclusion`` (must hold) or ``exclusion`` (must not hold)
    kind: Literal["inclusion", "exclusion"]


def _criteria(value: object, kind: str) -> object:
    """``[code | {code: text}, ...]`` as ``(code, text)`` pairs (kept as strings/tuples for pydantic)."""
    if not isinstance(value, list | tuple):
        return value
    out: list[object] = []
    for item in value:
        if isinstance(item, Mapping):
            if len(item) != 1:
                raise ValueError(f"each {kind} is a code or one 'code: question' pair; got {dict(item)!r}")
            ((code, text),) = item.items()
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{kind} {code!r}: the question must be a non-empty text")
            out.append((str(code), " ".join(text.split())))
        elif isinstance(item, tuple | list) and len(item) == 2:
            out.append((str(item[0]), str(item[1])))
        else:
            out.append(item)
    return out


def _code_of(item: str | tuple[str, str]) -> str:
    return item[0] if isinstance(item, tuple) else item


def _text_of(item: str | tuple[str, str]) -> str:
    if isinstance(item, tuple):
        return item[1]
    return item.replace("_", " ").capitalize()


_CRITERION = Annotated[
    str | tuple[str, str],
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                              {"type": "object", "minProperties": 1, "maxProperties": 1,
                               "additionalProperties": {"type": "string"}}]}),
]


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
    #: inclusion criteria the site confirms at screening: snake_case codes, each optionally ``code: question``
    inclusions: tuple[_CRITERION, ...] = ()
    #: exclusion criteria as snake_case codes (optionally ``code: question``); must include sensitive_skin,
    #: damaged_skin, inflamed_skin
    exclusions: tuple[_CRITERION, ...]
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

    @field_validator("inclusions", mode="before")
    @classmethod
    def _inclusion_items(cls, value: object) -> object:
        return _criteria(value, "inclusion")

    @field_validator("exclusions", mode="before")
    @classmethod
    def _exclusion_items(cls, value: object) -> object:
        return _criteria(value, "exclusion")

    @field_validator("inclusions")
    @classmethod
    def _inclusion_codes(cls, value: tuple) -> tuple:
        bad = [_code_of(c) for c in value if not _CODE.match(_code_of(c))]
        if bad:
            raise ValueError(f"inclusions are snake_case codes (e.g. moderate_nasolabial_folds); got {bad}")
        return value

    @field_validator("exclusions")
    @classmethod
    def _required_exclusions(cls, value: tuple) -> tuple:
        bad = [_code_of(c) for c in value if not _CODE.match(_code_of(c))]
        if bad:
            raise ValueError(f"exclusions are snake_case codes (e.g. sensitive_skin); got {bad}")
        codes = [_code_of(c) for c in value]
        missing = [c for c in REQUIRED_EXCLUSIONS if c not in codes]
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

    @model_validator(mode="after")
    def _codes_unique(self) -> Eligibility:
        codes = [c.code for c in self.criteria]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"criteria codes must be unique across inclusions and exclusions; repeated: {twice}")
        return self

    @property
    def exclusion_codes(self) -> tuple[str, ...]:
        """The exclusion criteria's codes."""
        return tuple(_code_of(c) for c in self.exclusions)

    @property
    def criteria(self) -> tuple[Criterion, ...]:
        """The checklist: inclusions first, then exclusions."""
        return tuple(Criterion(_code_of(c), _text_of(c), "inclusion") for c in self.inclusions) + tuple(
            Criterion(_code_of(c), _text_of(c), "exclusion") for c in self.exclusions
        )

    def all_met(self) -> dict[str, bool]:
        """The answers of a subject who meets every inclusion and no exclusion (simulations, rehearsals)."""
        return {c.code: c.kind == "inclusion" for c in self.criteria}


def checklist_problems(criteria: tuple[Criterion, ...] | list[Criterion], answers: Mapping[str, Any]) -> dict[str, str]:
    """What is wrong with ``answers`` to the checklist, by criterion code (empty: eligible).

    Every criterion needs an answer (``True``: it holds for the subject, ``False``: it does not); an inclusion
    that does not hold or an exclusion that does makes the subject ineligible; an unknown code is refused.

    Examples
    --------
    >>> items = (Criterion("adult", "Adult", "inclusion"), Criterion("epilepsy", "Epilepsy", "exclusion"))
    >>> checklist_problems(items, {"adult": True, "epilepsy": True})
    {'epilepsy': 'exclusion applies: Epilepsy'}
    """
    problems: dict[str, str] = {}
    known = {c.code for c in criteria}
    for code in answers:
        if code not in known:
            problems[str(code)] = f"{code!r} is not a criterion of the study; criteria: {', '.join(sorted(known))}"
    for c in criteria:
        answer = answers.get(c.code)
        if answer is None:
            problems[c.code] = f"not answered: {c.text}"
        elif not isinstance(answer, bool):
            problems[c.code] = f"answer {answer!r} is not yes or no: {c.text}"
        elif c.kind == "inclusion" and not answer:
            problems[c.code] = f"inclusion criterion not met: {c.text}"
        elif c.kind == "exclusion" and answer:
            problems[c.code] = f"exclusion applies: {c.text}"
    return problems
