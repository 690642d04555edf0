"""The randomization plan of a study (the algorithm that applies it is in :mod:`toolkit.study.allocation`)."""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

__all__ = ["StratificationFactor", "RandomizationPlan"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class StratificationFactor(BaseModel):
    """A factor the allocation is balanced within (e.g. age group)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: column name, snake_case (e.g. ``age_group``)
    name: str
    #: the levels, e.g. ``[lt45, ge45]``
    levels: Annotated[
        tuple[str, ...],
        WithJsonSchema({"type": "array", "minItems": 2, "items": {"type": ["string", "number"]}}),
    ] = Field(min_length=2)
    #: how a subject's level is decided, for the record
    definition: str | None = None
    #: the subject datum the level follows, checked (or filled in) at enrolment: age, fitzpatrick, sex, site
    derived_from: Literal["age", "fitzpatrick", "sex", "site"] | None = None
    #: ``derived_from: age``: cut points in years, one fewer than levels; level k covers [cut k−1, cut k)
    cut_points: tuple[float, ...] | None = None
    #: ``derived_from`` fitzpatrick, sex or site: level -> the values it contains (e.g. ``I-II: [I, II]``)
    members: dict[str, tuple[str, ...]] | None = None

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not _NAME.match(value) or value in {"rand_no", "stratum", "block", "block_size", "arm"}:
            raise ValueError(
                f"factor name {value!r} must be snake_case (a–z, 0–9, _; ≤ 32) and not a column of the "
                "allocation list (rand_no, stratum, block, block_size, arm)"
            )
        return value

    @field_validator("levels", mode="before")
    @classmethod
    def _levels_as_text(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return [str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value]
        return value

    @field_validator("levels")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"levels repeat: {list(value)}")
        return value

    @model_validator(mode="after")
    def _derivation(self) -> StratificationFactor:
        if self.derived_from is None:
            if self.cut_points or self.members:
                raise ValueError("cut_points and members need derived_from (age, fitzpatrick, sex or site)")
            return self
        if self.derived_from == "age":
            cuts = list(self.cut_points or ())
            if len(cuts) != len(self.levels) - 1 or cuts != sorted(cuts):
                raise ValueError(
                    f"derived_from: age needs {len(self.levels) - 1} increasing cut_points (years) for "
                    f"{len(self.levels)} levels; got {cuts}"
                )
        else:
            members = self.members or {}
            unknown = sorted(set(members) - set(self.levels))
            missing = [lv for lv in self.levels if lv not in members]
            if unknown or missing:
                raise ValueError(
                    f"derived_from: {self.derived_from} needs members for every level ({', '.join(self.levels)}); "
                    + (f"unknown levels {unknown}; " if unknown else "")
                    + (f"missing {missing}" if missing else "")
                )
        return self


class RandomizationPlan(BaseModel):
    """Stratified permuted blocks of varying size, generated from a recorded seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: seed of ``numpy.random.Generator(PCG64(seed))``
    seed: int = Field(ge=0, lt=2**63, strict=True)
    #: block sizes drawn at random for each block (at least two sizes so the size cannot be guessed)
    block_sizes: tuple[int, ...] = Field(min_length=2)
    #: stratification factors (keep them few: strata multiply)
    factors: tuple[StratificationFactor, ...] = ()
    #: planned number of subjects (default for ``toolkit study randomize``)
    subjects: int | None = Field(default=None, ge=1, le=100_000, strict=True)

    @field_validator("block_sizes")
    @classmethod
    def _varying(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(size < 2 for size in value):
            raise ValueError(f"block sizes must be ≥ 2; got {list(value)}")
        if len(set(value)) < 2:
            raise ValueError(
                f"give at least two different block sizes (e.g. [3, 6]) so the next allocation cannot be "
                f"deduced; got {list(value)}"
            )
        return tuple(sorted(set(value)))

    @field_validator("factors")
    @classmethod
    def _distinct(cls, value: tuple[StratificationFactor, ...]) -> tuple[StratificationFactor, ...]:
        names = [f.name for f in value]
        if len(set(names)) != len(names):
            raise ValueError(f"factor names repeat: {names}")
        return value

    @property
    def factor_names(self) -> list[str]:
        """Names of the stratification factors."""
        return [f.name for f in self.factors]

    def strata(self) -> list[dict[str, str]]:
        """Every combination of factor levels, in a stable order (one dict per stratum)."""
        if not self.factors:
            return [{}]
        return [
            dict(zip(self.factor_names, combo, strict=True))
            for combo in itertools.product(*(f.levels for f in self.factors))
        ]
