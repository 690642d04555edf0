"""What the store needs to know of a study, read from a :class:`toolkit.study.Study`.

The store reads only a few facts of the study model (its id, design, arms, visits, endpoints, strata
factors and analysis populations). Collecting them here keeps the rest of the store independent of the
model's finer structure, and lets a store be opened on a study id alone (e.g. to verify an audit trail).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from toolkit.errors import ConfigurationError

__all__ = ["ArmInfo", "EligibilityInfo", "EndpointInfo", "StudyInfo", "VisitInfo", "load_study_from"]


@dataclass(frozen=True)
class ArmInfo:
    """A treatment arm: id (e.g. ``"EP"``), display name and modality (``ep``, ``mc``, ``sham``)."""

    id: str
    name: str
    modality: str | None = None


@dataclass(frozen=True)
class VisitInfo:
    """A scheduled visit: id, name, number (AVISITN), study day, and the session it follows."""

    id: str
    name: str
    number: int
    day: int | None = None
    after_session: int | None = None


@dataclass(frozen=True)
class EndpointInfo:
    """An endpoint: PARAMCD-like code, label, kind (photo, scale, safety) and how its value is formed.

    Photo endpoints name a ``metric`` and the ``regions`` combined (``combine``: mean or sum); scale
    endpoints name the scale in ``metric`` with its ``min``/``max``.
    """

    code: str
    label: str
    kind: str
    metric: str | None = None
    regions: tuple[str, ...] = ()
    combine: str = "mean"
    role: str = "secondary"
    visits: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    #: scale endpoints: (grade, meaning) pairs shown to the rater
    anchors: tuple[tuple[float, str], ...] = ()
    #: scale endpoints: graded against the subject's baseline photo (photo pairs)
    against_baseline: bool = False
    #: scale endpoints: fraction of each rater's photo sets shown again for intra-rater agreement
    rerate_fraction: float = 0.0

    @property
    def primary(self) -> bool:
        """True for the primary endpoint."""
        return self.role == "primary"

    @property
    def region(self) -> str | None:
        """The first region (convenience for single-region endpoints)."""
        return self.regions[0] if self.regions else None


@dataclass(frozen=True)
class EligibilityInfo:
    """Inclusion criteria the store checks before randomisation and treatment."""

    age_min_years: int | None = None
    age_max_years: int | None = None
    fitzpatrick_types: tuple[int, ...] = ()
    patch_test_required: bool = True
    #: the screening checklist: (code, question, ``inclusion``/``exclusion``) triples
    criteria: tuple[tuple[str, str, str], ...] = ()

    def checklist(self) -> tuple[Any, ...]:
        """The checklist as :class:`toolkit.study.eligibility.Criterion` items."""
        from toolkit.study.eligibility import Criterion

        return tuple(Criterion(code, text, kind) for code, text, kind in self.criteria)  # type: ignore[arg-type]

    def all_met(self) -> dict[str, bool]:
        """The answers of a subject who meets every inclusion and no exclusion (simulations, rehearsals)."""
        return {code: kind == "inclusion" for code, _, kind in self.criteria}


@dataclass(frozen=True)
class StudyInfo:
    """The facts of a study the store uses."""

    id: str
    title: str | None = None
    design: str = "parallel"
    arms: tuple[ArmInfo, ...] = ()
    visits: tuple[VisitInfo, ...] = ()
    endpoints: tuple[EndpointInfo, ...] = ()
    strata_factors: tuple[str, ...] = ()
    strata_levels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: factor -> how its level follows from the subject's data (see :mod:`toolkit.study.strata`)
    strata_rules: dict[str, dict] = field(default_factory=dict)
    eligibility: EligibilityInfo = field(default_factory=EligibilityInfo)
    #: per-protocol rule of the analysis plan: ``min_sessions``, ``photos_at``, ``no_major_deviation``
    per_protocol: dict[str, Any] | None = None
    #: planned number of treatment sessions
    sessions_planned: int | None = None
    #: the study's AE dictionary: a CSV path or ``"starter"`` (``None``: terms are exported as entered)
    ae_dictionary: str | None = None
    source: Any = None

    @property
    def baseline_visit(self) -> VisitInfo | None:
        """The baseline visit: the first visit before any session (study day ≤ 1), else the first visit."""
        before = [v for v in self.visits if v.after_session is None and (v.day is None or v.day <= 1)]
        pool = before or list(self.visits)
        return min(pool, key=lambda v: v.number) if pool else None

    def arm(self, arm_id: str) -> ArmInfo | None:
        """The arm with this id, or ``None``."""
        return next((a for a in self.arms if a.id == arm_id), None)

    def visit(self, visit_id: str) -> VisitInfo | None:
        """The visit with this id, or ``None``."""
        return next((v for v in self.visits if v.id == visit_id), None)

    @property
    def scales(self) -> tuple[str, ...]:
        """Clinician scales named by the study's scale endpoints."""
        return tuple(e.metric or e.code for e in self.endpoints if e.kind == "scale")

    def scale_range(self, scale: str) -> tuple[float | None, float | None]:
        """``(min, max)`` of a scale named by a scale endpoint (``(None, None)`` if unknown)."""
        for e in self.endpoints:
            if e.kind == "scale" and (e.metric or e.code) == scale:
                return e.min, e.max
        return None, None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (stored with the records so they can be read without the study file)."""
        data = asdict(self)
        data.pop("source", None)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyInfo:
        """Rebuild from :meth:`to_dict` output."""
        known = {f.name for f in fields(cls)} - {"source"}
        d = {k: v for k, v in data.items() if k in known}
        d["arms"] = tuple(ArmInfo(**a) for a in d.get("arms", ()))
        d["visits"] = tuple(VisitInfo(**v) for v in d.get("visits", ()))
        d["endpoints"] = tuple(
            EndpointInfo(
                **{**e, "regions": tuple(e.get("regions", ())), "visits": tuple(e.get("visits", ())),
                   "anchors": tuple((float(g), str(t)) for g, t in e.get("anchors", ()))}
            )
            for e in d.get("endpoints", ())
        )
        d["strata_factors"] = tuple(d.get("strata_factors", ()))
        d["strata_levels"] = {k: tuple(v) for k, v in d.get("strata_levels", {}).items()}
        d["strata_rules"] = dict(d.get("strata_rules") or {})
        elig = dict(d.get("eligibility") or {})
        elig["fitzpatrick_types"] = tuple(elig.get("fitzpatrick_types", ()))
        elig["criteria"] = tuple(tuple(c) for c in elig.get("criteria", ()))
        d["eligibility"] = EligibilityInfo(**elig)
        return cls(**d)

    @classmethod
    def from_study(cls, study: Any) -> StudyInfo:
        """Collect the facts from a :class:`toolkit.study.Study` (or any object with the same attributes)."""
        if isinstance(study, StudyInfo):
            return study
        if isinstance(study, str):
            return cls(id=study)
        study_id = _get(study, "id")
        if not study_id:
            raise ConfigurationError("the study has no id; the store needs one (study.yaml: id)")
        arms = tuple(
            ArmInfo(
                id=str(_get(a, "id")),
                name=str(_get(a, "name") or _get(a, "id")),
                modality=_str_or_none(_get(a, "modality")),
            )
            for a in _items(_get(study, "arms"))
        )
        visits = []
        raw_visits = _get(study, "visits") or _get(_get(study, "schedule"), "visits")
        for i, v in enumerate(_items(raw_visits)):
            number = _get(v, "number")
            visits.append(
                VisitInfo(
                    id=str(_get(v, "id")),
                    name=str(_get(v, "name") or _get(v, "id")),
                    number=int(number) if number is not None else i,
                    day=_int_or_none(_get(v, "day")),
                    after_session=_int_or_none(_get(v, "after_session")),
                )
            )
        endpoints = []
        for e in _items(_get(study, "endpoints")):
            code = _get(e, "code") or _get(e, "id") or _get(e, "paramcd")
            kind = str(_get(e, "kind") or "photo").lower()
            region = _get(e, "region") or _get(e, "regions") or ()
            regions = (region,) if isinstance(region, str) else tuple(str(r) for r in region)
            role = _get(e, "role") or ("primary" if _get(e, "primary") else "secondary")
            endpoints.append(
                EndpointInfo(
                    code=str(code),
                    label=str(_get(e, "label") or _get(e, "name") or code),
                    kind=kind,
                    metric=_str_or_none(_get(e, "metric") or _get(e, "scale")),
                    regions=regions,
                    combine=str(_get(e, "combine") or "mean"),
                    role=str(role),
                    visits=tuple(str(v) for v in (_get(e, "visits") or ())),
                    min=_float_or_none(_get(e, "min")),
                    max=_float_or_none(_get(e, "max")),
                    anchors=tuple(sorted((float(g), str(t)) for g, t in (_get(e, "anchors") or {}).items())),
                    against_baseline=bool(_get(e, "against_baseline")),
                    rerate_fraction=_float_or_none(_get(e, "rerate_fraction")) or 0.0,
                )
            )
        elig = _get(study, "eligibility")
        required = _get(elig, "patch_test_required")
        eligibility = EligibilityInfo(
            age_min_years=_int_or_none(_get(elig, "age_min_years")),
            age_max_years=_int_or_none(_get(elig, "age_max_years")),
            fitzpatrick_types=tuple(int(t) for t in (_get(elig, "fitzpatrick_types") or ())),
            patch_test_required=True if required is None else bool(required),
            criteria=tuple((c.code, c.text, c.kind) for c in (_get(elig, "criteria") or ())),
        )
        factors, levels = _strata(_get(study, "randomization"))
        per_protocol = None
        for population in _items(_get(_get(study, "analysis"), "populations")):
            rule = _get(population, "rule")
            if str(_get(population, "code")) == "PP" and rule is not None:
                per_protocol = {
                    "min_sessions": _int_or_none(_get(rule, "min_sessions")),
                    "photos_at": [str(v) for v in (_get(rule, "photos_at") or ())],
                    "no_major_deviation": bool(_get(rule, "no_major_deviation")),
                }
        from toolkit.study.strata import rule_of

        rules = {}
        for factor in _get(_get(study, "randomization"), "factors") or ():
            rule = rule_of(factor) if not isinstance(factor, (str, dict)) else None
            if rule:
                rules[str(factor.name)] = rule
        return cls(
            id=str(study_id),
            title=_str_or_none(_get(study, "title") or _get(study, "name")),
            design=str(_get(study, "design") or "parallel"),
            arms=arms,
            visits=tuple(sorted(visits, key=lambda v: v.number)),
            endpoints=tuple(endpoints),
            strata_factors=factors,
            strata_levels=levels,
            strata_rules=rules,
            eligibility=eligibility,
            per_protocol=per_protocol,
            sessions_planned=_int_or_none(_get(_get(study, "schedule"), "sessions")),
            ae_dictionary=_str_or_none(_get(study, "ae_dictionary_path")),
            source=study,
        )


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _items(value: Any) -> Iterable[Any]:
    if value is None:
        return ()
    if isinstance(value, dict):
        # a mapping id -> definition: carry the id into each item
        out = []
        for key, item in value.items():
            if isinstance(item, dict):
                out.append({"id": key, **item})
            elif _get(item, "id") is None:
                out.append({"id": key, **{k: getattr(item, k) for k in dir(item) if not k.startswith("_")}})
            else:
                out.append(item)
        return out
    return list(value)


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _strata(randomization: Any) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    raw = None
    for name in ("factors", "strata", "stratify_by", "stratification"):
        raw = _get(randomization, name)
        if raw and not callable(raw):
            break
        raw = None
    factors: list[str] = []
    levels: dict[str, tuple[str, ...]] = {}
    for item in _items(raw) if not isinstance(raw, dict) else raw.items():
        if isinstance(item, tuple):
            name, lv = item
            factors.append(str(name))
            if isinstance(lv, (list, tuple)):
                levels[str(name)] = tuple(str(x) for x in lv)
            elif _get(lv, "levels"):
                levels[str(name)] = tuple(str(x) for x in _get(lv, "levels"))
        elif isinstance(item, str):
            factors.append(item)
        else:
            name = _get(item, "name") or _get(item, "id") or _get(item, "factor")
            if name:
                factors.append(str(name))
                lv = _get(item, "levels")
                if lv:
                    levels[str(name)] = tuple(str(getattr(x, "value", x)) for x in lv)
    return tuple(factors), levels


def load_study_from(path: str | Path) -> Any:
    """Load a study definition (``study.yaml`` or its folder) with :func:`toolkit.study.load_study`."""
    try:
        from toolkit.study import load_study
    except ImportError:  # the package root may not re-export it
        from toolkit.study.loader import load_study

    return load_study(Path(path))
