"""Electrode placement on the face and the eye-path rule.

Electrodes sit on named sites. A lateral site carries its side (``cheek_l``, ``cheek_r``) or no side
(``cheek``), which means "the treated side": both sides in a parallel design (the pair is mirrored), the
randomized side in a split-face design. Midline sites (``glabella``, ``forehead_center``, ``chin``) have no
side.

Each site has a position on a normalised frontal face map: ``x`` runs from the subject's right (−1) to the
subject's left (+1), ``y`` upwards, the eye line is ``y = 0`` and the eyes are centred at ``x = ±0.33``.
The current of an electrode pair is taken to run along the straight segment between the two electrodes.
A pair is refused when that segment crosses the eye line between the outer canthi (|x| ≤ 0.6) or passes
within 0.22 of an eye centre: current must never run through or across the eyes.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, WithJsonSchema, field_validator, model_validator

from toolkit.study.problems import rule_error

__all__ = [
    "LATERAL_SITES",
    "MIDLINE_SITES",
    "ElectrodePair",
    "Placement",
    "PlacementField",
    "site_position",
    "eye_path_problem",
]

#: lateral electrode sites and their position on the subject's left half of the face map (x > 0)
LATERAL_SITES: dict[str, tuple[float, float]] = {
    "forehead": (0.30, 0.60),
    "temple": (0.80, 0.20),
    "periorbital": (0.35, -0.28),
    "preauricular": (0.90, -0.15),
    "cheek": (0.50, -0.35),
    "nasolabial": (0.20, -0.50),
    "perioral": (0.15, -0.72),
    "marionette": (0.25, -0.85),
    "jawline": (0.60, -0.80),
    "neck": (0.40, -1.20),
}
#: midline electrode sites (no side)
MIDLINE_SITES: dict[str, tuple[float, float]] = {
    "forehead_center": (0.0, 0.60),
    "glabella": (0.0, 0.25),
    "chin": (0.0, -1.00),
}

#: eye centres on the face map (subject's left, right)
_EYES = ((0.33, 0.0), (-0.33, 0.0))
#: exclusion radius around each eye centre (eyeball, lids and a margin)
EYE_RADIUS = 0.22
#: half-width of the band of the eye line that no current path may cross (outer canthus plus margin)
EYE_BAND_HALF_WIDTH = 0.6

Side = Literal["left", "right"]


def _split(site: str) -> tuple[str, str | None]:
    if site in MIDLINE_SITES:
        return site, None
    for suffix, side in (("_l", "left"), ("_r", "right")):
        if site.endswith(suffix) and site[: -len(suffix)] in LATERAL_SITES:
            return site[: -len(suffix)], side
    return site, None


def _known_sites() -> list[str]:
    lateral = [f"{name}[_l|_r]" for name in LATERAL_SITES]
    return lateral + list(MIDLINE_SITES)


def site_position(site: str, treated_side: Side = "left") -> tuple[float, float]:
    """Position of ``site`` on the normalised face map.

    Parameters
    ----------
    site : str
        A lateral site with or without side suffix (``cheek_l``, ``cheek``) or a midline site.
    treated_side : {'left', 'right'}
        The side a side-neutral site stands for.

    Returns
    -------
    tuple of float
        ``(x, y)``; ``x > 0`` on the subject's left, the eye line at ``y = 0``.
    """
    base, side = _split(site)
    if base in MIDLINE_SITES:
        return MIDLINE_SITES[base]
    if base not in LATERAL_SITES:
        raise ValueError(f"unknown electrode site {site!r}; accepted: {', '.join(_known_sites())}")
    x, y = LATERAL_SITES[base]
    side = side or treated_side
    return (x if side == "left" else -x, y)


def _distance_point_segment(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / length2))
    return math.hypot(ax + t * dx - p[0], ay + t * dy - p[1])


def eye_path_problem(site_a: str, site_b: str) -> str | None:
    """Why the current path between two sites is refused, or ``None`` when it keeps clear of the eyes.

    Parameters
    ----------
    site_a, site_b : str
        Electrode sites (side-neutral sites are evaluated on the left side; the map is mirror-symmetric).

    Returns
    -------
    str or None
        A sentence naming the rule the path breaks.
    """
    a, b = site_position(site_a), site_position(site_b)
    if (a[1] > 0) != (b[1] > 0) and a[1] != b[1]:
        t = a[1] / (a[1] - b[1])
        x_cross = a[0] + t * (b[0] - a[0])
        if abs(x_cross) <= EYE_BAND_HALF_WIDTH:
            return (
                f"the path {site_a}–{site_b} crosses the eye line at x = {x_cross:+.2f} "
                f"(refused within ±{EYE_BAND_HALF_WIDTH} of the midline, i.e. between the outer canthi)"
            )
    for eye in _EYES:
        gap = _distance_point_segment(eye, a, b)
        if gap < EYE_RADIUS:
            return (
                f"the path {site_a}–{site_b} passes {gap:.2f} from an eye centre "
                f"(must keep at least {EYE_RADIUS})"
            )
    return None


class ElectrodePair(BaseModel):
    """Two electrode sites; the stimulating current runs between them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: first electrode site
    a: str
    #: second electrode site
    b: str

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, data: object) -> object:
        if isinstance(data, list | tuple):
            if len(data) != 2:
                raise rule_error(
                    "electrode_pair",
                    "an electrode pair lists exactly two sites, e.g. [cheek, jawline]; got {n}",
                    {"n": len(data)},
                )
            return {"a": data[0], "b": data[1]}
        if isinstance(data, str):
            raise rule_error(
                "electrode_pair", "an electrode pair is a list of two sites, e.g. [cheek, jawline]; got {v!r}",
                {"v": data},
            )
        return data

    @field_validator("a", "b")
    @classmethod
    def _known(cls, site: str) -> str:
        base, _side = _split(site)
        if base not in LATERAL_SITES and base not in MIDLINE_SITES:
            raise rule_error(
                "electrode_site",
                "unknown electrode site {site!r}; accepted: {accepted}",
                {"site": site, "accepted": ", ".join(_known_sites())},
            )
        return site

    @model_validator(mode="after")
    def _consistent(self) -> ElectrodePair:
        if self.a == self.b:
            raise rule_error("electrode_pair", "the two electrodes of a pair must sit on different sites")
        neutral = [self.is_side_neutral_site(s) for s in (self.a, self.b)]
        if neutral[0] != neutral[1] and not any(_split(s)[0] in MIDLINE_SITES for s in (self.a, self.b)):
            raise rule_error(
                "electrode_pair",
                "write both sites of a pair with their side ({a}_l, {b}_l) or both without (treated side)",
                {"a": _split(self.a)[0], "b": _split(self.b)[0]},
            )
        return self

    @staticmethod
    def is_side_neutral_site(site: str) -> bool:
        """True for a lateral site written without side (it means the treated side)."""
        return site in LATERAL_SITES

    @property
    def side_neutral(self) -> bool:
        """True when the pair stands for the treated side (no explicit ``_l``/``_r``)."""
        return any(self.is_side_neutral_site(s) for s in (self.a, self.b))

    @property
    def sides(self) -> set[str]:
        """Explicit sides the pair touches (``'left'``, ``'right'``); midline sites add ``'midline'``."""
        out: set[str] = set()
        for site in (self.a, self.b):
            base, side = _split(site)
            if base in MIDLINE_SITES:
                out.add("midline")
            elif side:
                out.add(side)
        return out

    def on_side(self, side: Side) -> ElectrodePair:
        """This pair with side-neutral sites resolved to ``side``."""
        suffix = "_l" if side == "left" else "_r"
        return ElectrodePair(
            a=self.a + suffix if self.is_side_neutral_site(self.a) else self.a,
            b=self.b + suffix if self.is_side_neutral_site(self.b) else self.b,
        )

    def __str__(self) -> str:
        return f"{self.a}–{self.b}"


class Placement(BaseModel):
    """Where the electrodes go: one or more electrode pairs (channels, or positions used in turn).

    Written in a study file as a list of pairs, e.g. ``[[cheek, jawline], [forehead, temple]]``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the electrode pairs
    pairs: tuple[ElectrodePair, ...]

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, data: object) -> object:
        if isinstance(data, list | tuple):
            return {"pairs": data}
        if isinstance(data, str):
            raise rule_error(
                "placement",
                "a placement is a list of electrode pairs, e.g. [[cheek, jawline]]; got {v!r}",
                {"v": data},
            )
        return data

    @field_validator("pairs")
    @classmethod
    def _not_empty(cls, pairs: tuple[ElectrodePair, ...]) -> tuple[ElectrodePair, ...]:
        if not pairs:
            raise rule_error("placement", "list at least one electrode pair, e.g. [[cheek, jawline]]")
        return pairs

    @property
    def side_neutral(self) -> bool:
        """True when every pair stands for the treated side."""
        return all(p.side_neutral for p in self.pairs)

    def on_side(self, side: Side) -> Placement:
        """The placement with side-neutral sites resolved to ``side``."""
        return Placement(pairs=tuple(p.on_side(side) for p in self.pairs))

    def eye_path_problems(self) -> list[str]:
        """One sentence per electrode pair whose current path comes near or across the eyes."""
        problems = []
        for pair in self.pairs:
            why = eye_path_problem(pair.a, pair.b)
            if why:
                problems.append(why)
        return problems

    def __str__(self) -> str:
        return ", ".join(str(p) for p in self.pairs)


def _site_names() -> list[str]:
    names = []
    for name in LATERAL_SITES:
        names += [name, f"{name}_l", f"{name}_r"]
    return names + list(MIDLINE_SITES)


#: a placement as written in a study file (a list of electrode pairs), with its JSON Schema for editors
PlacementField = Annotated[
    Placement,
    WithJsonSchema(
        {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "items": {"enum": _site_names()},
            },
            "description": "electrode pairs, e.g. [[cheek, jawline]]; sites without _l/_r mean the treated side",
        }
    ),
]
