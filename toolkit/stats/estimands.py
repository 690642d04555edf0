"""Estimands: the main estimator on the records as the strategies leave them, and its sensitivity analyses
(reference-based imputation, tipping point). The events and strategies are in
:mod:`toolkit.stats.intercurrent`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from toolkit.errors import DataError, ToolkitError
from toolkit.stats.dataset import analysis_records, resolve_column
from toolkit.stats.errors import AnalysisWarning
from toolkit.stats.intercurrent import EVENT_WORDS, Applied, apply_strategies, intercurrent_events

__all__ = ["EstimandResults", "describe_estimand", "run_estimand"]


@dataclass
class EstimandResults:
    """Tables of one estimand (names as in the plan's results) and its details."""

    estimand_id: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def describe_estimand(study: Any, estimand: Any) -> dict[str, Any]:
    """The estimand's attributes in words (for the report's estimand table)."""
    from toolkit.stats.plan import _visit

    main = study.analysis.analysis(estimand.analysis)
    endpoint = study.endpoint(main.endpoint)
    visit_name, _ = _visit(study, main.visit)
    populations = {p.code: p.definition for p in study.analysis.populations}
    variable = estimand.variable or f"change from baseline in {endpoint.label} at {visit_name}"
    events = [
        f"{EVENT_WORDS[e.event]}: {e.strategy.replace('_', ' ')}"
        + (f" ({e.assumption}, reference {e.reference})" if e.assumption != "MAR" else "")
        + (f" (value: {e.value.replace('_', ' ')})" if e.strategy == "composite" else "")
        for e in estimand.intercurrent_events
    ]
    return {
        "id": estimand.id,
        "endpoint": main.endpoint,
        "endpoint_label": str(endpoint.label),
        "analysis": main.id,
        "population": f"{main.population}: {populations.get(main.population, '')}".rstrip(": "),
        "variable": variable,
        "treatments": [c.label for c in main.comparisons],
        "intercurrent_events": events or ["none named"],
        "summary_measure": estimand.summary_measure,
        "main_estimator": _main_label(main, estimand),
        "sensitivity": [s.label for s in estimand.sensitivity],
        "visit": main.visit,
        "visit_name": visit_name,
    }


def _main_short(main: Any, estimand: Any) -> str:
    """A few words for the main estimator's row in a figure."""
    imputed = sorted({e.assumption for e in estimand.intercurrent_events if e.assumption != "MAR"})
    if imputed:
        return f"Main: MI ({'/'.join(imputed)}, MAR)"
    return "Main: " + {"ancova": "ANCOVA", "mmrm": "MMRM (MAR)", "paired": "paired model"}.get(
        main.model, main.model
    )


def _main_label(main: Any, estimand: Any) -> str:
    imputed = [e for e in estimand.intercurrent_events if e.assumption != "MAR"]
    if imputed:
        parts = ", ".join(f"{e.assumption} after {EVENT_WORDS[e.event]}" for e in imputed)
        return f"reference-based MI ({parts}; MAR otherwise), ANCOVA per visit"
    words = {"ancova": "ANCOVA", "mmrm": "MMRM (unstructured, REML, MAR)", "paired": "paired model"}
    return f"{words.get(main.model, main.model)} (analysis {main.id})"


def run_estimand(
    study: Any,
    bds: pd.DataFrame,
    estimand: Any,
    *,
    adsl: pd.DataFrame | None,
    adae: pd.DataFrame | None = None,
    deviations: pd.DataFrame | None = None,
    alpha: float = 0.05,
    n_jobs: int | None = None,
    progress: bool | None = None,
) -> EstimandResults:
    """Main estimate and sensitivity analyses of one estimand.

    Returns
    -------
    EstimandResults
        ``estimand_<ID>_events`` (the deciding event per subject), ``estimand_<ID>_records`` (every record
        with its post-event flag and handling), ``estimand_<ID>_estimates`` (main and sensitivity
        estimates per comparison, the forest plot's rows), ``estimand_<ID>_tipping_point`` (when planned).
    """
    from toolkit.stats.plan import _orient, fit_planned

    main = study.analysis.analysis(estimand.analysis)
    endpoint = study.endpoint(main.endpoint)
    better = getattr(endpoint, "better", "lower")
    if adsl is None:
        raise DataError(
            f"estimand {estimand.id}: the intercurrent events come from the subject-level dataset (ADSL), "
            "which was not given"
        )
    procedure = estimand.strategy("prohibited_procedure")
    events = intercurrent_events(
        adsl,
        adae=adae,
        deviations=deviations,
        ae_events=estimand.strategy("ae_withdrawal") is not None,
        procedure_terms=procedure.procedure_terms if procedure is not None else (),
    )
    records = analysis_records(bds, paramcd=main.endpoint, population=main.population)
    everyone = analysis_records(bds, paramcd=main.endpoint, population=main.population, post_baseline=False)
    applied = apply_strategies(
        records, events, estimand, study=study, better=better, subjects=everyone.drop_duplicates("USUBJID")
    )
    prefix = f"estimand_{estimand.id}"
    tables: dict[str, pd.DataFrame] = {f"{prefix}_events": applied.events, f"{prefix}_records": applied.flags}
    details: dict[str, Any] = {"n_subjects_with_event": int(len(applied.events)), "notes": []}
    comparisons = list(main.comparisons)
    control = comparisons[0].control
    rows: list[dict[str, Any]] = []
    visit_name = describe_estimand(study, estimand)["visit_name"]
    imputed_events = {e.event: e for e in estimand.intercurrent_events if e.assumption != "MAR"}
    if imputed_events:
        strategies = {e: (s.assumption, s.reference) for e, s in imputed_events.items()}
        assumed = (
            "; ".join(f"{a} after {EVENT_WORDS[e]}" for e, (a, _) in strategies.items()) + "; MAR otherwise"
        )
        res = _impute(
            study,
            applied,
            main,
            alpha=alpha,
            strategies=strategies,
            sensitivity=None,
            n_jobs=n_jobs,
            progress=progress,
        )
        for comp in comparisons:
            rows.append(
                _row(
                    "main", _main_label(main, estimand), assumed, comp, res.contrasts, visit_name, main.visit
                )
                | {"label": _main_short(main, estimand)}
            )
        details["main"] = res.details
    else:
        res, contrasts, _ = fit_planned(study, applied.records, main, alpha)
        for comp in comparisons:
            oriented = _orient(contrasts, comp.treatment, comp.control).iloc[0]
            rows.append(
                {
                    "role": "main",
                    "analysis": _main_label(main, estimand),
                    "label": _main_short(main, estimand),
                    "assumption": "MAR",
                    "comparison": comp.label,
                    "visit": main.visit,
                    **{
                        k: float(oriented[k])
                        for k in ("estimate", "se", "df", "ci_low", "ci_high", "p_value")
                    },
                }
            )
        details["main"] = res.details
    for k, sens in enumerate(estimand.sensitivity):
        try:
            if sens.method == "reference_based":
                res = _impute(
                    study,
                    applied,
                    main,
                    alpha=alpha,
                    strategies=None,
                    sensitivity=sens,
                    n_jobs=n_jobs,
                    progress=progress,
                )
                for comp in comparisons:
                    if comp.control != control:
                        continue
                    rows.append(
                        _row(
                            "sensitivity",
                            sens.label,
                            sens.assumption,
                            comp,
                            res.contrasts,
                            visit_name,
                            main.visit,
                        )
                        | {"label": sens.short_label}
                    )
                details[f"sensitivity_{k + 1}"] = res.details
            else:
                tables[f"{prefix}_tipping_point"] = _tipping(
                    study,
                    applied,
                    main,
                    sens,
                    alpha=alpha,
                    n_jobs=n_jobs,
                    progress=progress,
                    visit_name=visit_name,
                )
        except ToolkitError as exc:
            details["notes"].append(f"sensitivity analysis {sens.label} could not run: {exc.message}")
    estimates = pd.DataFrame(rows)
    estimates.insert(0, "estimand", estimand.id)
    tables[f"{prefix}_estimates"] = estimates
    return EstimandResults(estimand.id, tables, details)


def _row(
    role: str, label: str, assumption: str, comp: Any, contrasts: pd.DataFrame, visit_name: str, visit_id: str
) -> dict[str, Any]:
    """One forest-plot row: the contrast of ``comp`` at the analysed visit (named ``visit_name`` in the data)."""
    name = f"{comp.treatment} - {comp.control}"
    found = contrasts[(contrasts["contrast"] == name) & (contrasts["visit"].astype(str) == str(visit_name))]
    if found.empty:
        raise DataError(f"no estimate of {name} at {visit_name}")
    r = found.iloc[0]
    return {
        "role": role,
        "analysis": label,
        "assumption": assumption,
        "comparison": comp.label,
        "visit": visit_id,
        **{k: float(r[k]) for k in ("estimate", "se", "df", "ci_low", "ci_high", "p_value")},
    }


def _mi_inputs(study: Any, applied: Applied, main: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Records up to the analysed visit, keyed by visit name, and the model arguments of the imputation."""
    from toolkit.stats.plan import _visit

    records = applied.records
    name, number = _visit(study, main.visit)
    if number is not None:
        records = records[pd.to_numeric(records["AVISITN"], errors="coerce") <= number]
    baseline = "BASE" if any(c.lower() == "baseline" for c in main.covariates) else None
    covs = [resolve_column(records, c, role="covariate") for c in main.covariates if c.lower() != "baseline"]
    covs += [resolve_column(records, s, role="stratification factor") for s in main.strata]
    order = records.drop_duplicates("AVISIT").sort_values("AVISITN")["AVISIT"].tolist()
    # a subject with an event and no record up to the visit is imputed throughout: give it one empty record
    absent = sorted(set(applied.events["USUBJID"].astype(str)) - set(records["USUBJID"].astype(str)))
    if absent and order:
        first = records.sort_values("AVISITN").iloc[0]
        filler = applied.subjects[applied.subjects["USUBJID"].isin(absent)].assign(
            AVISIT=first["AVISIT"], AVISITN=first["AVISITN"], CHG=np.nan
        )
        records = pd.concat([records, filler.reindex(columns=records.columns)], ignore_index=True)
    return records, {
        "outcome": "CHG",
        "treatment": "TRTP",
        "visit": "AVISIT",
        "subject": "USUBJID",
        "baseline": baseline,
        "covariates": covs,
        "visit_order": order,
    }


def _mi_events(applied: Applied, records: pd.DataFrame, how: dict[str, str]) -> pd.DataFrame:
    """Per subject with an event (hypothetical or treatment policy): first visit affected and its strategy."""
    ev = applied.events
    visits = records.drop_duplicates("AVISIT").sort_values("AVISITN")
    keep = ev[ev["strategy"].isin(["hypothetical", "treatment_policy"]) & ev["event"].isin(how)]
    rows = []
    for r in keep.itertuples(index=False):
        if r.first_visit_affected not in set(visits["AVISIT"]):
            continue
        rows.append({"USUBJID": r.USUBJID, "AVISIT": r.first_visit_affected, "strategy": how[r.event]})
    return pd.DataFrame(rows, columns=["USUBJID", "AVISIT", "strategy"])


def _impute(
    study: Any,
    applied: Applied,
    main: Any,
    *,
    alpha: float,
    strategies: dict | None,
    sensitivity: Any,
    n_jobs: int | None,
    progress: bool | None,
):
    from toolkit.stats.reference_based import reference_based_mi

    records, model = _mi_inputs(study, applied, main)
    control = main.comparisons[0].control
    if sensitivity is not None:
        how = dict.fromkeys(applied.events["event"].unique(), sensitivity.assumption)
        reference = sensitivity.reference or control
        inference = sensitivity.inference
        n = sensitivity.imputations
        resampling = sensitivity.resampling
    else:
        how = {e: a for e, (a, _) in strategies.items()}
        references = {r for _, r in strategies.values()}
        if len(references) > 1:
            raise DataError(
                f"the estimand's events name several reference arms ({', '.join(sorted(references))})"
            )
        reference = references.pop()
        inference, n, resampling = "approximate_bayesian", 200, "jackknife"
    events = _mi_events(applied, records, how)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnalysisWarning)
        return reference_based_mi(
            records,
            **model,
            reference=reference,
            control=control,
            events=events,
            method="approximate-bayesian" if inference == "approximate_bayesian" else "conditional-mean",
            n_imputations=n,
            resampling=resampling,
            n_bootstrap=n,
            alpha=alpha,
            n_jobs=n_jobs,
            progress=progress,
        )


def _tipping(
    study: Any,
    applied: Applied,
    main: Any,
    sens: Any,
    *,
    alpha: float,
    n_jobs: int | None,
    progress: bool | None,
    visit_name: str,
) -> pd.DataFrame:
    from toolkit.stats.tipping_point import tipping_point

    mar = sens.model_copy(
        update={"method": "reference_based", "assumption": "MAR", "reference": None, "deltas": None}
    )
    res = _impute(
        study, applied, main, alpha=alpha, strategies=None, sensitivity=mar, n_jobs=n_jobs, progress=progress
    )
    parts, skipped = [], []
    for comp in main.comparisons:
        if comp.control != main.comparisons[0].control:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AnalysisWarning)
            try:
                tp = tipping_point(
                    res, visit=visit_name, contrast=f"{comp.treatment} - {comp.control}", deltas=sens.deltas
                )
            except DataError as exc:
                skipped.append(f"{comp.label}: {exc.message}")
                continue
        table = tp.grid.copy()
        table.insert(0, "comparison", comp.label)
        table["tipping_delta"] = tp.tipping_delta
        table["note"] = "; ".join(
            [
                *tp.details.get("notes", []),
                *(str(w.message) for w in caught if str(w.message) not in tp.details.get("notes", [])),
            ]
        )
        parts.append(table)
    if not parts:
        raise DataError("no tipping point to find", details=skipped)
    out = pd.concat(parts, ignore_index=True)
    if skipped:
        out["note"] = [("; ".join(filter(None, [n, *skipped]))) for n in out["note"]]
    return out
