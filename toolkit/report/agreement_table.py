"""Rater agreement in the report: how well the blinded raters agree with each other (inter-rater) and with
themselves on the blind re-grades (intra-rater), per clinician scale, from the rating station's grades.

The grades are read from the study's database as the station filed them: photo set, scale, rater, first grade
or re-grade, score; never the subject, visit or arm, so the table may be shown while the study is blinded.
Raters are shown as "Rater 1", "Rater 2" … (by the order of their user names), not by name.
Statistics (:func:`toolkit.stats.agreement.rater_agreement`): quadratic weighted kappa with its Wald interval,
and ICC(2,1) (two-way random effects, absolute agreement, single rater) with McGraw & Wong's interval.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from toolkit.report.tables.model import Table

__all__ = ["agreement_table", "station_grades"]

_STATISTIC = {"weighted kappa (quadratic)": "Weighted kappa (quadratic)",
              "ICC(2,1), absolute agreement": "ICC(2,1), absolute agreement"}


def station_grades(study_id: str, data_dir: Path) -> tuple[pd.DataFrame, dict[str, list[float]]] | None:
    """The rating station's grades of the study (``set_id``, ``scale``, ``rater``, ``repeat``, ``score``) and
    every grade of each scale; ``None`` without a study database."""
    if not (data_dir / "study.db").is_file() and not os.environ.get("TOOLKIT_DB_URL"):
        return None
    from sqlalchemy import select

    from toolkit.store import models as m
    from toolkit.store import open_store

    with open_store(study_id, login=False) as store:
        with store.connect() as conn:
            rows = conn.execute(
                select(m.AssessmentRow.rating_set, m.AssessmentRow.scale, m.AssessmentRow.rater,
                       m.AssessmentRow.repeat, m.AssessmentRow.score)
                .join(m.SubjectRow, m.SubjectRow.id == m.AssessmentRow.subject_pk)
                .where(m.SubjectRow.study_id == study_id, m.AssessmentRow.rating_set.is_not(None))
                .order_by(m.AssessmentRow.id)
            ).all()
        grades = pd.DataFrame(rows, columns=["set_id", "scale", "rater", "repeat", "score"])
        levels = {}
        for scale in grades["scale"].unique():
            low, high = store.info.scale_range(str(scale))
            if low is not None and high is not None:
                levels[str(scale)] = [float(g) for g in range(int(low), int(high) + 1)]
    return grades, levels


def _number(value: float) -> str:
    return f"{value:.2f}" if np.isfinite(value) else "NE"


def _interval(estimate: float, low: float, high: float) -> str:
    """``low to high`` clipped to [-1, 1]; NE when not estimable."""
    if not (np.isfinite(estimate) and np.isfinite(low) and np.isfinite(high)):
        return "NE"
    return f"{max(-1.0, low):.2f} to {min(1.0, high):.2f}"


def agreement_table(grades: pd.DataFrame, *, number: str, levels: dict[str, list[float]] | None = None,
                    source: str = "Rating station grades (study database)") -> Table | None:
    """Table of inter- and intra-rater agreement per scale; ``None`` when no comparison has two common sets."""
    from toolkit.stats.agreement import rater_agreement

    result = rater_agreement(grades, grades=levels)
    if result.empty:
        return None
    first = grades[grades["repeat"].fillna(0).astype(int) == 0]
    raters = first.groupby("scale")["rater"].nunique()
    body = pd.DataFrame({
        "Scale": result["scale"],
        "Agreement": result["agreement"].str.capitalize(),
        "Raters compared": result["raters"],
        "Statistic": result["statistic"].map(lambda s: _STATISTIC.get(s, s)),
        "Photo sets": result["n_sets"].astype(int).astype(str),
        "Estimate": result["estimate"].map(_number),
        "95% CI": [_interval(v, lo, hi) for v, lo, hi in zip(result["estimate"], result["ci_low"], result["ci_high"],
                                                              strict=True)],
    })
    counts = "; ".join(f"{sc}: {n} rater(s)" for sc, n in raters.items())
    return Table(
        number=number, title="Rater agreement on the clinician scales (blinded rating station)", body=body,
        population="Photo sets graded at the blinded rating station",
        footnotes=(
            "Inter-rater: first grades of the photo sets both raters graded; intra-rater: a rater's first grade "
            "against the same rater's blind re-grade of the re-rating subset.",
            "Weighted kappa with quadratic (Fleiss-Cohen) weights over the scale's grades, asymptotic 95% CI; "
            "ICC(2,1): two-way random effects, absolute agreement, single rater (Shrout & Fleiss 1979), "
            "95% CI of McGraw & Wong (1996).",
            "Interval limits beyond -1 or 1 are shown at the bound. NE: not estimable (grades that do not vary, "
            "or too few sets).",
            f"Raters are numbered by user name, not named. {counts}.",
        ),
        source=source,
    )
