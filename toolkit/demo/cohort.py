"""A synthetic cohort for the demonstration study: demographics, strata and per-subject responses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

__all__ = ["DemoSubject", "make_cohort"]

_RACES = ("WHITE", "ASIAN", "BLACK OR AFRICAN AMERICAN", "OTHER")
_FITZPATRICK = ("I", "II", "III", "IV")
# The subjects' photos are made from scikit-image's astronaut portrait: at the demo's resolution the synthetic
# fold lines drawn on matplotlib's Grace Hopper portrait are lost among her own lines, which would bias the
# closed-loop check (the imaging tests use both portraits).
_PORTRAITS = ("astronaut",)


@dataclass
class DemoSubject:
    """One synthetic subject: what is enrolled, and the hidden truth of their response."""

    subject_id: str
    age: int
    sex: str
    race: str
    fitzpatrick: str
    strata: dict[str, str]
    #: real portrait the subject's photos are made from
    portrait: str
    #: baseline wrinkle severity (1 = the portrait's reference lines)
    baseline_severity: float
    #: multiplies the arm's mean effect (1 = an average responder)
    response: float
    #: calendar day of the first session
    first_session: date
    #: last session the subject attends (the course length for completers)
    last_session: int
    #: filled at allocation
    arm_id: str | None = None
    #: split-face designs, filled at allocation: side (``"left"``/``"right"``) -> arm id
    side_map: dict[str, str] | None = None


def _strata_for(study, age: int, sex: str, fitzpatrick: str, rng: np.random.Generator) -> dict[str, str]:
    """Values of the study's stratification factors: by the study's own rule where it has one, else by name."""
    from toolkit.study.strata import level_for, rule_of

    out: dict[str, str] = {}
    facts = {"age": age, "sex": sex, "fitzpatrick": fitzpatrick, "site": "DEMO"}
    for factor in study.randomization.factors:
        levels = [str(level) for level in factor.levels]
        name = factor.name.lower()
        rule = rule_of(factor)
        level = level_for(rule, facts[rule["from"]]) if rule else None
        if level is not None:
            out[factor.name] = level
        elif name.startswith("age") and len(levels) == 2:
            threshold = int("".join(ch for ch in levels[1] if ch.isdigit()) or 45)
            out[factor.name] = levels[0] if age < threshold else levels[1]
        elif name == "sex" and set(levels) >= {"F", "M"}:
            out[factor.name] = sex
        elif name.startswith("fitz") and len(levels) == 2:
            out[factor.name] = levels[0] if fitzpatrick in ("I", "II", "III") else levels[1]
        else:
            out[factor.name] = str(rng.choice(levels))
    return out


def _roman(fitzpatrick_type: object) -> str:
    """A Fitzpatrick type as its Roman numeral (the study lists them as 1–6)."""
    text = str(fitzpatrick_type).strip()
    roman = ("I", "II", "III", "IV", "V", "VI")
    return roman[int(text) - 1] if text.isdigit() and 1 <= int(text) <= 6 else text.upper()


def make_cohort(study, n_subjects: int, *, seed: int, start: date, baseline_sd: float, response_sd: float,
                dropouts: int = 1) -> list[DemoSubject]:
    """Draw ``n_subjects`` eligible subjects; ``dropouts`` of them leave after half the course.

    Ages are drawn inside the study's eligibility range, Fitzpatrick types from those allowed, and first
    sessions are spread over the recruitment period (a few subjects a week).
    """
    rng = np.random.default_rng(seed)
    el = study.eligibility
    age_lo = int(getattr(el, "age_min_years", 30))
    age_hi = int(getattr(el, "age_max_years", 65))
    allowed = [_roman(t) for t in getattr(el, "fitzpatrick_types", _FITZPATRICK)] or list(_FITZPATRICK)
    sessions = int(study.schedule.sessions)
    drop = set(rng.choice(n_subjects, size=min(dropouts, n_subjects), replace=False).tolist()) if dropouts else set()
    subjects = []
    for i in range(n_subjects):
        age = int(rng.integers(age_lo, age_hi + 1))
        sex = "F" if rng.random() < 0.75 else "M"
        fitz = str(rng.choice(allowed))
        subjects.append(
            DemoSubject(
                subject_id=f"S-{i + 1:03d}",
                age=age,
                sex=sex,
                race=str(rng.choice(_RACES, p=[0.6, 0.2, 0.15, 0.05])),
                fitzpatrick=fitz,
                strata=_strata_for(study, age, sex, fitz, rng),
                portrait=_PORTRAITS[i % len(_PORTRAITS)],
                baseline_severity=float(np.clip(rng.normal(1.0, baseline_sd), 0.6, 1.4)),
                response=float(np.clip(rng.normal(1.0, response_sd), 0.2, 1.8)),
                first_session=start + timedelta(days=int(i // 3) * 2),
                last_session=sessions // 2 if i in drop else sessions,
            )
        )
    return subjects
