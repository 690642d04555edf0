"""Simulated blinded raters at the rating station of the demo.

Each rater works through their own list at the station, as a person at the keyboard would: the store's
rating queue (photo sets under opaque ids, in the rater's own order), the set's images, and one grade filed
per set; the re-rating subset comes back after the last first grade. What the simulated person "sees" is the
truth of the photo: every set has a true grade on a continuous scale (the *latent* grade), from what the
demo drew on its photos. A rater's grade is that latent grade plus the rater's own bias and a fresh normal
error at every look, rounded to the scale's grades and held within them:

``grade = clip(round(latent + bias + N(0, noise_sd)), lowest, highest)``

Latent grades (the demo's generative model, see :mod:`toolkit.demo.truth`):

* WSRS (severity of the nasolabial folds, 1–5): ``3 × severity`` of the drawn folds (severity 1 is the
  portrait's reference fold, a moderate WSRS 3).
* GAIS (follow-up against baseline, 1 very much improved … 5 worse): ``4 − improvement / 0.16``, with
  ``improvement = 1 − severity / baseline severity + lift_mm / 4``: no change is 4, each 0.16 of
  improvement (a sixth shorter, shallower folds, or 0.64 mm of lift) one grade better.

The raters, their biases and noise, and every set's latent grade are written to ``rater-truth.json`` so that
the agreement the report shows can be checked against what these raters must give.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DEMO_RATERS", "SimulatedRater", "latent_grade", "rate_at_the_station"]

#: GAIS: the improvement (relative, see :func:`latent_grade`) worth one grade
GAIS_IMPROVEMENT_PER_GRADE = 0.16
#: truth file of the raters (in the demo's data folder)
RATER_TRUTH = "rater-truth.json"


@dataclass(frozen=True)
class SimulatedRater:
    """A blinded rater of the demo: a user of the study and how they err."""

    username: str
    full_name: str
    #: systematic offset in grades (positive: grades worse, i.e. more severe / less improved)
    bias_grade: float
    #: SD of the error of each look at a photo set, in grades
    noise_sd_grade: float

    def grade(self, latent: np.ndarray | float, rng: np.random.Generator, low: float, high: float) -> np.ndarray:
        """This rater's grade(s) of set(s) with the given latent grade(s)."""
        latent = np.asarray(latent, dtype=float)
        look = latent + self.bias_grade + rng.normal(0.0, self.noise_sd_grade, latent.shape)
        return np.clip(np.round(look), low, high)


#: the demo's raters: one well calibrated, one who grades half a grade worse and less consistently
DEMO_RATERS = (
    SimulatedRater("demo-rater", "Demo Blinded Rater", bias_grade=0.0, noise_sd_grade=0.25),
    SimulatedRater("demo-rater-2", "Demo Second Blinded Rater", bias_grade=0.5, noise_sd_grade=0.35),
)


def latent_grade(scale: str, severity: float, baseline_severity: float | None = None,
                 lift_mm: float = 0.0) -> float:
    """The latent (true, continuous) grade of a photo set (see the module text)."""
    if scale.upper() == "GAIS":
        if baseline_severity is None:
            raise ValueError("GAIS is graded against a baseline: give its severity")
        improvement = 1.0 - severity / baseline_severity + lift_mm / 4.0
        return 4.0 - improvement / GAIS_IMPROVEMENT_PER_GRADE
    return 3.0 * severity


def rate_at_the_station(st: Any, photo_truth: list[dict], seed: int, data_dir: Path,
                        logins: dict[str, tuple[str, str]], open_as: Any) -> dict[str, int]:
    """Every demo rater grades every photo set at the station (first grades, then the re-rating subset).

    Parameters
    ----------
    st : Study
    photo_truth : list of dict
        What the demo drew on each photo: ``subject``, ``visit``, ``severity``, ``lift_mm``.
    seed : int
        Seeds each rater's errors.
    data_dir : Path
        The demo's data folder (``rater-truth.json`` goes there).
    logins : dict
        User name -> (user, password); the data manager's and every rater's.
    open_as : callable
        ``open_as(st, login)`` opens the store as that user.

    Returns
    -------
    dict
        Rater -> number of grades filed.
    """
    with open_as(st, logins["demo-datamanager"]) as store:
        key = store.rating_set_key()
    drawn = {(r["subject"], r["visit"]): r for r in photo_truth}
    baseline = st.visits[0].id
    latent: dict[str, float] = {}
    for row in key.itertuples(index=False):
        shown = drawn[(row.subject_id, row.visit_id)]
        base = drawn.get((row.subject_id, baseline))
        latent[row.set_id] = latent_grade(row.scale, shown["severity"],
                                          base["severity"] if base is not None else None, shown["lift_mm"])
    filed: dict[str, int] = {}
    for k, rater in enumerate(DEMO_RATERS):
        rng = np.random.default_rng([seed, 11, k])
        filed[rater.username] = 0
        with open_as(st, logins[rater.username]) as store:
            while queue := store.rating_queue():
                for item in queue:
                    store.rating_images(item.set_id)  # the rater looks at the set, as the station shows it
                    low, high = store.info.scale_range(item.scale)
                    score = float(rater.grade(latent[item.set_id], rng, low, high))
                    store.rate(item.set_id, score=score, repeat=item.repeat)
                    filed[rater.username] += 1
    doc = {
        "description": "Simulated blinded raters of the demo: grade = clip(round(latent + bias + N(0, noise_sd))) "
                       "over the scale's grades; each set's latent grade follows from what was drawn on its "
                       "photos (WSRS: 3 x severity; GAIS: 4 - improvement / 0.16 against baseline).",
        "seed": seed,
        "raters": [asdict(r) for r in DEMO_RATERS],
        "sets": [{"set_id": r.set_id, "scale": r.scale, "subject_id": r.subject_id, "visit_id": r.visit_id,
                  "latent_grade": round(latent[r.set_id], 6)} for r in key.itertuples(index=False)],
    }
    (data_dir / RATER_TRUTH).write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return filed
