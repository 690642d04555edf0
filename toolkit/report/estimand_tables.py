"""The estimands in the report: per estimand its attributes (ICH E9(R1)), the main and sensitivity estimates
with a forest plot, the tipping-point table and figure, and the listing of intercurrent events.

The analysis step writes the estimands in words (``results.json`` → ``estimands``) and, per estimand, the
tables ``estimand_<ID>_estimates``, ``_tipping_point``, ``_events`` and ``_records``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from toolkit.report.figures.efficacy import fig_forest
from toolkit.report.figures.sensitivity import fig_tipping_point
from toolkit.report.tables import Table, format_p_value, listing_table, results_table

__all__ = ["EstimandReport", "estimand_report", "is_estimand_table"]

_ATTRIBUTES = (
    ("Endpoint", "endpoint_words"),
    ("Population", "population"),
    ("Variable", "variable"),
    ("Treatments compared", "treatments"),
    ("Intercurrent events and strategies", "intercurrent_events"),
    ("Population-level summary", "summary_measure"),
    ("Main estimator", "main_estimator"),
    ("Sensitivity analyses", "sensitivity"),
)


def is_estimand_table(name: str) -> bool:
    """Whether a results table belongs to the estimands (drawn by :func:`estimand_report`, not generically)."""
    return name == "estimands" or name.startswith("estimand_")


@dataclass
class EstimandReport:
    """What the estimand section adds to the report."""

    tables: list[tuple[Table, bool]] = field(default_factory=list)  # table, landscape
    figures: list[go.Figure] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _estimate_text(row: Any) -> str:
    p = format_p_value(float(row.p_value))
    p_words = f"p {p}" if p.startswith("<") else f"p = {p}"
    return f"{row.comparison}: {row.estimate:.2f} (95% CI {row.ci_low:.2f} to {row.ci_high:.2f}); {p_words}"


def estimand_report(
    results: Mapping[str, pd.DataFrame],
    meta: Mapping[str, Any],
    *,
    next_table: Callable[[], str],
    next_listing: Callable[[], str],
    next_figure: Callable[[], str],
    source: str = "analysis/results",
) -> EstimandReport:
    """Tables and figures of every estimand of ``results.json``, in the plan's order."""
    out = EstimandReport()
    for item in meta.get("estimands") or []:
        eid = str(item["id"])
        prefix = f"estimand_{eid}"
        estimates = results.get(f"{prefix}_estimates")
        events = results.get(f"{prefix}_events")
        label = f"{item.get('endpoint_label', item.get('endpoint'))}, {item.get('visit_name', item.get('visit'))}"
        words = {**item, "endpoint_words": f"{item.get('endpoint_label')} ({item.get('endpoint')})"}
        rows = []
        for heading, key in _ATTRIBUTES:
            value = words.get(key, "")
            rows.append((heading, "; ".join(map(str, value)) if isinstance(value, list) else str(value)))
        if estimates is not None and not estimates.empty:
            main = estimates[estimates["role"] == "main"]
            rows.append(("Main result", " | ".join(_estimate_text(r) for r in main.itertuples(index=False))))
        else:
            rows.append(("Main result", "not estimated (see the notes of the analysis step)"))
            out.missing.append(f"estimand {eid}: no estimates in {source}")
        if events is not None:
            counts = events["event"].value_counts() if not events.empty else pd.Series(dtype=int)
            rows.append(("Subjects with an intercurrent event",
                         ", ".join(f"{n} {e.replace('_', ' ')}" for e, n in counts.items()) or "none"))
        body = pd.DataFrame(rows, columns=["Attribute", "Value"])
        out.tables.append((Table(number=next_table(), title=f"Estimand {eid}: {label}", body=body,
                                 source=f"{source}/estimands", footnotes=[
                                     "Attributes of the estimand as ICH E9(R1) describes them; the strategies apply "
                                     "from the first visit planned after the subject's first intercurrent event."]),
                           False))
        if estimates is not None and not estimates.empty:
            show = estimates.assign(role=estimates["role"].str.capitalize())
            show = show[["role", "analysis", "comparison", "estimate", "se", "df", "ci_low", "ci_high", "p_value"]]
            show["df"] = pd.to_numeric(show["df"], errors="coerce").where(lambda d: d < 1e9)
            out.tables.append((results_table(
                show.rename(columns={"role": "Role", "analysis": "Analysis", "comparison": "Comparison"}),
                number=next_table(), title=f"Estimand {eid}: main and sensitivity estimates of {label}",
                source=f"{source}/{prefix}_estimates", footnotes=[
                    "Reference-based multiple imputation: imputation model = MMRM (treatment, baseline and "
                    "covariates by visit, unstructured covariance); ANCOVA per visit on each imputed dataset.",
                    "Approximate Bayesian MI: Rubin's rules with Barnard-Rubin df; conditional mean imputation: "
                    "jackknife or bootstrap standard errors with normal intervals (no df)."]), True))
            rows_label = estimates["label"] if "label" in estimates.columns else estimates["analysis"]
            forest = estimates.assign(row=rows_label.astype(str), level="")
            out.figures.append(fig_forest(
                forest, subgroup="row", level="level", contrast="comparison", number=next_figure(),
                title=f"Estimand {eid}: main and sensitivity estimates of {label}",
                effect_label="Difference in change from baseline", source=f"{source}/{prefix}_estimates",
                footnotes=["Points: estimates; bars: 95% confidence intervals; dashed line: no difference."]))
        tipping = results.get(f"{prefix}_tipping_point")
        if tipping is not None and not tipping.empty:
            _tipping(out, tipping, eid, label, next_table=next_table, next_figure=next_figure,
                     source=f"{source}/{prefix}_tipping_point")
        if events is not None:
            cols = {"USUBJID": "Subject", "TRTP": "Arm", "event": "Intercurrent event", "date": "Date",
                    "study_day": "Day", "reason": "Reason", "first_visit_affected": "First visit affected",
                    "strategy": "Strategy", "post_event_records": "Records after",
                    "missing_after_event": "Visits missing after"}
            cols = {k: v for k, v in cols.items() if k in events.columns or events.empty}
            if events.empty:
                body = pd.DataFrame([dict.fromkeys(cols, "") | {"USUBJID": "none"}])
            else:
                body = events.assign(
                    event=events["event"].astype(str).str.replace("_", " "),
                    strategy=events["strategy"].astype(str).str.replace("_", " "),
                    study_day=pd.to_numeric(events["study_day"], errors="coerce").map(
                        lambda d: "" if pd.isna(d) else f"{d:.0f}"),
                )
            out.tables.append((listing_table(body, columns=cols, number=next_listing(),
                                             title=f"Intercurrent events of estimand {eid} by subject",
                                             source=f"{source}/{prefix}_events", footnotes=[
                                                 "Derived from ADSL (end of treatment, withdrawal and their reasons) "
                                                 "and the protocol deviations (prohibited procedures); per-record "
                                                 f"flags in {prefix}_records (ICEFL, handling)."]), True))
    return out


def _tipping(out: EstimandReport, tipping: pd.DataFrame, eid: str, label: str, *, next_table: Callable[[], str],
             next_figure: Callable[[], str], source: str) -> None:
    notes = [str(n) for n in tipping.get("note", pd.Series(dtype=str)).dropna().unique() if str(n).strip()]
    summary = []
    for comp, grp in tipping.groupby("comparison", sort=False):
        value = pd.to_numeric(grp["tipping_delta"], errors="coerce").iloc[0]
        summary.append(f"{comp}: {'not reached on the grid' if pd.isna(value) else f'{value:.3g}'}")
    footnotes = [
        "Delta is added to every value imputed (MAR) after an intercurrent event in the active arm(s); the "
        "tipping point is the delta at which the two-sided p-value reaches 0.05.",
        "Tipping points: " + "; ".join(summary) + ".",
        *notes,
    ]
    show = tipping[["comparison", "delta", "estimate", "se", "ci_low", "ci_high", "p_value"]].rename(
        columns={"comparison": "Comparison"})
    show["Delta"] = [f"{d:.3g}" for d in show.pop("delta")]
    show = show[["Comparison", "Delta", "estimate", "se", "ci_low", "ci_high", "p_value"]]
    out.tables.append((results_table(show, number=next_table(), title=f"Estimand {eid}: tipping-point analysis of "
                                     f"{label}", source=source, footnotes=footnotes), False))
    out.figures.append(fig_tipping_point(tipping, number=next_figure(),
                                         title=f"Estimand {eid}: tipping-point analysis of {label}", source=source,
                                         footnotes=footnotes[:2]))
