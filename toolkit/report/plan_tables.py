"""Efficacy tables in the order of the statistical analysis plan, titled and labelled in words.

The analysis step writes, beside its result tables, the plan in words (``results.json`` → ``plan``: per
analysis the endpoint label, visit name, model, population, covariates, strata, comparisons and margins).
This module turns each planned analysis into its tables — comparisons first, then LS means, then margins —
so the primary analysis is the first efficacy table, and adds the multiplicity table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from toolkit.report.tables import Table, format_p_value, results_table

__all__ = ["COLUMN_WORDS", "plan_tables"]

#: column names of the stats vocabulary and the words a table shows for them
COLUMN_WORDS = {
    "contrast": "Comparison",
    "treatment": "Arm",
    "arm": "Arm",
    "visit": "Visit",
    "n": "n",
    "test": "Test",
    "margin": "Margin",
    "noninferior": "Non-inferior",
    "equivalent": "Equivalent",
    "events": "Subjects with the event",
    "median_session": "Median (sessions)",
    "component": "Variance component",
}
_DF_WORDS = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger", "kenward_roger": "Kenward-Roger"}
_HIDDEN = ("analysis", "endpoint", "statistic")


def _covariate_words(item: Mapping[str, Any]) -> str:
    words = ["baseline value" if c.lower() == "baseline" else c for c in item.get("covariates", [])]
    words += [f"{s} (stratification factor)" for s in item.get("strata", [])]
    return ", ".join(words) if words else "none"


def _footnotes(item: Mapping[str, Any], model: Mapping[str, Any], multiplicity: str,
               hypotheses_number: str | None) -> list[str]:
    aid = item["id"]
    covariates = _covariate_words(item)
    effects = f"treatment and {covariates} as fixed effects" if covariates != "none" else \
        "treatment as the only fixed effect"
    notes = [f"Analysis {aid}: {item['model_label']} of change from baseline; {effects}."]
    if model.get("model"):
        notes.append(f"Model: {model['model']}"
                     + (f", {model['estimation']} estimation" if model.get("estimation") else "")
                     + (f"; n = {model['n']} subjects" if model.get("n") is not None else "")
                     + (f"; {model['n_subjects']} subjects, {model['n_records']} records"
                        if model.get("n_subjects") is not None else "") + ".")
    df = model.get("df_method")
    df_words = f"{_DF_WORDS.get(str(df).lower(), df)} degrees of freedom" if df else "residual degrees of freedom"
    se = "Huber-White (HC3) standard errors" if item.get("robust_se") else "model-based standard errors"
    weights = model.get("lsmeans_weights")
    notes.append(f"LS means{' with ' + weights + ' (observed-margin) weights' if weights else ''}; {se}; "
                 f"{df_words}; two-sided 95% confidence intervals.")
    if item.get("margins"):
        notes.append("Margins: " + "; ".join(f"{c}: {m}" for c, m in item["margins"].items()) + ".")
    if multiplicity:
        where = f" (Table {hypotheses_number})" if hypotheses_number else ""
        notes.append(f"Multiplicity: {multiplicity}; adjusted p-values in the multiplicity table{where}.")
    if item.get("population_definition"):
        notes.append(f"{item['population']} population: {item['population_definition']}")
    return notes


def _words(frame: pd.DataFrame, item: Mapping[str, Any]) -> pd.DataFrame:
    hidden = set(_HIDDEN)
    if "visit" in frame.columns and set(frame["visit"].astype(str)) <= {item["visit"], item["visit_name"]}:
        hidden.add("visit")  # the analysed visit is in the title
    keep = [c for c in frame.columns if c not in hidden]
    return frame[keep].rename(columns={c: COLUMN_WORDS.get(c, c) for c in keep})


def _decimals(values: pd.Series) -> int:
    """Decimals that show the smallest non-zero value with three significant digits (at least two)."""
    x = pd.to_numeric(values, errors="coerce").abs()
    x = x[x > 0]
    if x.empty:
        return 2
    return int(min(8, max(2, 2 - np.floor(np.log10(float(x.min()))))))


def plan_tables(
    results: Mapping[str, pd.DataFrame],
    meta: Mapping[str, Any],
    *,
    next_number: Callable[[], str],
    source: str = "analysis/results",
) -> tuple[list[Table], list[str]]:
    """Tables of every planned analysis in plan order, then the multiplicity table.

    Parameters
    ----------
    results : mapping of str to DataFrame
        Result tables by name (``<ID>_contrasts``, ``<ID>_lsmeans``, ``<ID>_margins``, ``hypotheses``).
    meta : mapping
        ``results.json``: ``plan``, ``multiplicity``, ``models``, ``failures``.
    next_number : callable
        Returns the next table number of section 14.2.
    source : str
        Source line of the tables.

    Returns
    -------
    (list of Table, list of str)
        The tables, and the names of the result tables they used.
    """
    plan: Sequence[Mapping[str, Any]] = meta.get("plan") or []
    models = meta.get("models") or {}
    failures = meta.get("failures") or {}
    multiplicity = str(meta.get("multiplicity") or "")
    tables: list[Table] = []
    used: list[str] = []
    pending: list[tuple[Table, Mapping[str, Any]]] = []
    for item in plan:
        aid = item["id"]
        label, visit = item["endpoint_label"], item["visit_name"]
        scope = f"{item['model_label'].split(' (')[0]}, {item['population']} population"
        if aid in failures:
            body = pd.DataFrame({"Analysis": [aid], "Result": [f"not run: {failures[aid]}"]})
            tables.append(Table(number=next_number(), title=f"Change from baseline in {label} at {visit}: "
                                f"{scope}", body=body, source=source,
                                footnotes=["The analysis could not run; its hypotheses count as not rejected."]))
            continue
        parts = [
            (f"{aid}_contrasts", f"Change from baseline in {label} at {visit}: {scope}"),
            (f"{aid}_lsmeans", f"LS mean change from baseline in {label} by arm: {scope}"),
            (f"{aid}_margins", f"Non-inferiority and equivalence tests of {label} at {visit}: {scope}"),
            (f"{aid}_variance_components", f"Variance components of the model of {label} at {visit}: {scope}"),
        ]
        for name, title in parts:
            frame = results.get(name)
            if frame is None or frame.empty:
                continue
            components = name.endswith("_variance_components")
            table = results_table(_words(frame, item), number=next_number(), title=title, source=f"{source}/{name}",
                                  population=f"{item['population']} population",
                                  decimals=_decimals(frame["estimate"]) if components else 2)
            if components:
                table.footnotes = (f"Analysis {aid}: variances of the {item['model_label']}, estimated by REML: "
                                   "between subjects (subject) and within subject (residual).",)
            else:
                pending.append((table, item))
            tables.append(table)
            used.append(name)
    hyp = results.get("hypotheses")
    hyp_number = None
    if hyp is not None and not hyp.empty:
        hyp_number = next_number()
        tables.append(hypotheses_table(hyp, number=hyp_number, multiplicity=multiplicity, source=source))
        used.append("hypotheses")
    for table, item in pending:
        table.footnotes = tuple(_footnotes(item, models.get(item["id"], {}), multiplicity, hyp_number))
    return tables, used


def hypotheses_table(hyp: pd.DataFrame, *, number: str, multiplicity: str, source: str) -> Table:
    """The multiplicity table: each hypothesis with its family, raw and adjusted p-value and decision."""
    def p(v: object) -> str:
        return format_p_value(float(v)) if pd.notna(v) else ""

    body = pd.DataFrame({
        "Family": hyp["family"].astype(str),
        "Hypothesis": hyp["hypothesis"].astype(str),
        "Raw p-value": [p(v) for v in hyp["p_value"]],
        "Adjusted p-value": [p(v) for v in hyp["adjusted_p_value"]],
        "Rejected": ["Yes" if bool(r) else "No" for r in hyp["rejected"]],
    })
    notes = [f"Procedure: {multiplicity}." if multiplicity else "Procedure: as planned."]
    if "note" in hyp.columns and hyp["note"].astype(str).str.strip().any():
        body["Note"] = hyp["note"].fillna("").astype(str)
    notes.append("A hypothesis outside the multiplicity order is supportive and reported with its raw p-value.")
    return Table(number=number, title="Multiplicity: hypotheses tested, raw and adjusted p-values", body=body,
                 source=f"{source}/hypotheses", footnotes=notes)
