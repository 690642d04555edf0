"""The simulated truth of the demonstration study: who responds how much, and when.

The demo draws a synthetic cohort and makes every visit's photos from real portraits with a *known* change
per arm. This module holds those known effects and derives the true treatment contrasts the analysis
should recover, so the report can check that the 95 % confidence intervals cover them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ArmEffect", "TrueEffects", "course_fraction"]


@dataclass(frozen=True)
class ArmEffect:
    """What a full course (12 sessions) does to one subject on average.

    Parameters
    ----------
    wrinkle_rel : float
        Relative change of nasolabial fold severity, e.g. ``-0.30``: the folds become that much shorter *and*
        that much shallower (lighter), as a treatment makes them.
    lift_mm : float
        Upward displacement of the lower face in millimetres.
    onset_session : int
        Session after which the change becomes visible (the seed articles: microcurrent 3–4,
        electroporation 4–6).
    """

    wrinkle_rel: float
    lift_mm: float
    onset_session: int


@dataclass(frozen=True)
class TrueEffects:
    """Per-arm effects, subject variability and retention at follow-up.

    Parameters
    ----------
    arms : dict
        Arm id -> :class:`ArmEffect`.
    baseline_severity_sd : float
        Between-subject SD of the baseline wrinkle severity (1 = the portrait's reference lines).
    response_sd : float
        Between-subject SD of the relative response (multiplies the arm's mean effect).
    visit_noise_sd : float
        Within-subject, per-visit SD of the wrinkle severity (re-capture and day-to-day variation).
    lift_noise_sd_mm : float
        Within-subject, per-visit SD of the true lift.
    retention_at_follow_up : float
        Fraction of the end-of-course effect left at the follow-up visit.
    """

    arms: dict[str, ArmEffect] = field(default_factory=dict)
    baseline_severity_sd: float = 0.12
    response_sd: float = 0.25
    visit_noise_sd: float = 0.03
    lift_noise_sd_mm: float = 0.15
    retention_at_follow_up: float = 0.8

    @classmethod
    def default(cls) -> TrueEffects:
        """Electroporation: wrinkles −30 %, lift 0.6 mm; microcurrent: −15 %, 1.2 mm; sham: none."""
        return cls(
            arms={
                "EP": ArmEffect(wrinkle_rel=-0.30, lift_mm=0.6, onset_session=5),
                "MC": ArmEffect(wrinkle_rel=-0.15, lift_mm=1.2, onset_session=3),
                "SHAM": ArmEffect(wrinkle_rel=0.0, lift_mm=0.0, onset_session=99),
            }
        )

    def effect(self, arm_id: str) -> ArmEffect:
        """The effect of ``arm_id`` (no effect for an arm the truth does not name)."""
        return self.arms.get(arm_id, ArmEffect(0.0, 0.0, 99))

    def expected_fold_change(self, arm_id: str, *, length_per_severity_mm: float, width_total_mm: float,
                             contrast_pct: float, draws: int = 200_000, seed: int = 0) -> dict[str, float]:
        """Expected change from baseline, at the end of the course, of the folds' length and depth.

        A subject's folds at severity ``s`` are ``length_per_severity_mm · s + width_total_mm`` long (their
        half-depth length: the drawn segments plus one width each) and ``contrast_pct · s`` deep, so their
        depth index (contrast × length) is quadratic in ``s``. The expectation over the cohort's baseline
        severities and responses is taken by simulation from the same distributions the demo draws from
        (per-visit noise adds the same variance at both visits and cancels).
        """
        rng = np.random.default_rng(seed)
        s0 = np.clip(rng.normal(1.0, self.baseline_severity_sd, draws), 0.6, 1.4)
        resp = np.clip(rng.normal(1.0, self.response_sd, draws), 0.2, 1.8)
        s1 = s0 * (1.0 + self.effect(arm_id).wrinkle_rel * resp)

        def depth(s: np.ndarray) -> np.ndarray:
            return contrast_pct * s * (length_per_severity_mm * s + width_total_mm)

        return {"length_mm": float(np.mean(length_per_severity_mm * (s1 - s0))),
                "depth_index": float(np.mean(depth(s1) - depth(s0)))}


def course_fraction(sessions_done: int, *, onset_session: int, total_sessions: int, follow_up: bool,
                    retention: float) -> float:
    """Fraction of the full-course effect present after ``sessions_done`` sessions.

    The change builds linearly from the onset session to the end of the course and keeps ``retention`` of
    itself at the follow-up visit.
    """
    if follow_up:
        return retention
    if sessions_done < onset_session:
        return 0.0
    span = max(1, total_sessions - onset_session + 1)
    return float(np.clip((sessions_done - onset_session + 1) / span, 0.0, 1.0))
