"""Which stratum level a subject's own data put them in (age by cut points; Fitzpatrick type, sex, site by
membership), so enrolment can fill in or check the levels instead of trusting what was typed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["DERIVABLE", "level_for", "rule_of"]

#: subject data a stratification factor may be derived from
DERIVABLE = ("age", "fitzpatrick", "sex", "site")

_ROMAN = {"1": "I", "2": "II", "3": "III", "4": "IV", "5": "V", "6": "VI"}


def rule_of(factor: Any) -> dict[str, Any] | None:
    """The derivation rule of a :class:`~toolkit.study.randomization.StratificationFactor` as plain data."""
    source = getattr(factor, "derived_from", None)
    if not source:
        return None
    rule: dict[str, Any] = {"from": source, "levels": [str(v) for v in factor.levels]}
    if getattr(factor, "cut_points", None):
        rule["cut_points"] = [float(c) for c in factor.cut_points]
    if getattr(factor, "members", None):
        rule["members"] = {str(k): [str(x) for x in v] for k, v in factor.members.items()}
    return rule


def level_for(rule: Mapping[str, Any], value: Any) -> str | None:
    """The level of ``value`` under ``rule``, or ``None`` when no level contains it.

    Examples
    --------
    >>> level_for({"from": "age", "levels": ["lt45", "ge45"], "cut_points": [45]}, 44)
    'lt45'
    >>> level_for({"from": "fitzpatrick", "levels": ["I-II", "III-IV"],
    ...            "members": {"I-II": ["I", "II"], "III-IV": ["III", "IV"]}}, 3)
    'III-IV'
    """
    levels = list(rule.get("levels") or [])
    cuts = rule.get("cut_points")
    if cuts:
        x = float(value)
        for level, cut in zip(levels, cuts, strict=False):
            if x < float(cut):
                return level
        return levels[len(cuts)] if len(levels) > len(cuts) else None
    members = rule.get("members") or {}
    text = str(value).strip()
    if rule.get("from") == "fitzpatrick":
        text = _ROMAN.get(text, text.upper())
    for level in levels:
        if text in [str(v) for v in members.get(level, [])]:
            return level
    return None
