"""Run a study's statistical analysis plan on its BDS analysis dataset.

The plan comes from the study model (``study.analysis``): each planned analysis names an endpoint (its
``PARAMCD``), a model (``ancova``, ``mmrm`` or ``paired`` for split-face), a population, a visit, covariates,
strata, comparisons with optional equivalence / non-inferiority margins, and the multiplicity procedure
across analyses. :func:`run_analysis_plan` fits every analysis, orients each planned comparison as
"treatment - control", applies the margins and the multiplicity procedure, and returns the tables by name.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolkit.errors import DataError, ToolkitError
from toolkit.stats import _checks
from toolkit.stats.dataset import analysis_records, resolve_column
from toolkit.stats.equivalence import noninferiority, tost
from toolkit.stats.multiplicity import adjust_pvalues, serial_gatekeeping
from toolkit.stats.results import _jsonable

__all__ = ["PlanResults", "describe_plan", "run_analysis_plan"]

#: file written beside the CSV tables
RESULTS_JSON = "results.json"


@dataclass
class PlanResults(Mapping):
    """Named result tables of an analysis plan (a read-only mapping of name to DataFrame).

    Attributes
    ----------
    study_id : str
        The study analysed.
    tables : dict of str to DataFrame
        ``<ANALYSIS>_lsmeans``, ``<ANALYSIS>_contrasts``, ``<ANALYSIS>_anova`` / ``_covariance`` /
        ``_variance_components``, ``<ANALYSIS>_margins`` and ``hypotheses`` (multiplicity).
    models : dict of str to dict
        Model details per analysis id (formula, n, method choices, convergence).
    notes : list of str
        Anything the reader of the results must know (e.g. records dropped).
    """

    study_id: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    models: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    input_sha256: str = ""
    #: planned analyses that could not run (``on_error="record"``): analysis id -> message
    failures: dict[str, str] = field(default_factory=dict)
    #: the plan in words, in the plan's order (see :func:`describe_plan`): what a report titles its tables with
    plan: list[dict[str, Any]] = field(default_factory=list)
    #: the multiplicity procedure in words
    multiplicity: str = ""
    #: the estimands in words (see :func:`toolkit.stats.estimands.describe_estimand`), in the plan's order
    estimands: list[dict[str, Any]] = field(default_factory=list)

    def __getitem__(self, key: str) -> pd.DataFrame:
        return self.tables[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tables)

    def __len__(self) -> int:
        return len(self.tables)

    def summary(self) -> str:
        """Plain-text listing of every table."""
        lines = [f"Analysis plan results: {self.study_id}"]
        lines += [f"note: {n}" for n in self.notes]
        with pd.option_context("display.width", 160, "display.max_columns", 30):
            for name, table in self.tables.items():
                lines += ["", f"[{name}]", table.to_string(index=False)]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        parts = [f"<h4>Analysis plan results: {html.escape(self.study_id)}</h4>"]
        parts += [f"<p><i>{html.escape(n)}</i></p>" for n in self.notes]
        for name, table in self.tables.items():
            parts.append(f"<h5>{html.escape(name)}</h5>")
            parts.append(table.to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}"))
        return "\n".join(parts)

    def to_dir(self, path: str | Path) -> Path:
        """Write one CSV per table and ``results.json`` (model details, software versions) into ``path``.

        The folder is written beside the target and swapped in at the end, so an interrupted run never
        leaves a half-written results folder.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            files = {}
            for name, table in self.tables.items():
                file = tmp / f"{name}.csv"
                table.to_csv(file, index=False)
                files[name] = {
                    "file": file.name,
                    "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
                    "rows": len(table),
                }
            meta = {
                "study_id": self.study_id,
                "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "input_sha256": self.input_sha256,
                "software": software_versions(),
                "models": self.models,
                "notes": self.notes,
                "failures": self.failures,
                "plan": self.plan,
                "multiplicity": self.multiplicity,
                "estimands": self.estimands,
                "tables": files,
            }
            (tmp / RESULTS_JSON).write_text(
                json.dumps(_jsonable(meta), indent=2, allow_nan=False), encoding="utf-8"
            )
            old = None
            if target.exists():
                old = target.with_name(f".{target.name}-old-{os.getpid()}")
                os.replace(target, old)
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target


def software_versions() -> dict[str, str]:
    """Versions of the software that produced the numbers."""
    import scipy
    import statsmodels

    import toolkit

    return {
        "toolkit": toolkit.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "statsmodels": statsmodels.__version__,
    }


def _frame_sha256(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()


def _orient(contrasts: pd.DataFrame, treatment: str, control: str) -> pd.DataFrame:
    """Rows of a pairwise contrasts table for ``treatment - control`` (negating ``control - treatment``)."""
    forward = f"{treatment} - {control}"
    backward = f"{control} - {treatment}"
    rows = contrasts[contrasts["contrast"] == forward].copy()
    if rows.empty:
        rows = contrasts[contrasts["contrast"] == backward].copy()
        if rows.empty:
            raise DataError(f"comparison {treatment} vs {control}: one of the arms has no records")
        rows["estimate"] = -rows["estimate"]
        rows["ci_low"], rows["ci_high"] = -rows["ci_high"], -rows["ci_low"]
        if "statistic" in rows:
            rows["statistic"] = -rows["statistic"]
        rows["contrast"] = forward
    return rows


def _visit(study: Any, visit_id: str) -> tuple[str, float | None]:
    try:
        v = study.schedule.visit(visit_id)
        return v.name, float(v.number)
    except (AttributeError, KeyError):
        return visit_id, None


def _at_visit(records: pd.DataFrame, visit_id: str, name: str, number: float | None) -> pd.DataFrame:
    if number is not None and "AVISITN" in records.columns:
        out = records[pd.to_numeric(records["AVISITN"], errors="coerce") == number]
    else:
        out = records[records["AVISIT"].isin([visit_id, name])]
    if out.empty:
        raise DataError(f"no post-baseline records at visit {visit_id} ({name})")
    return out


def run_analysis_plan(
    study: Any,
    bds: pd.DataFrame,
    *,
    adsl: pd.DataFrame | None = None,
    adae: pd.DataFrame | None = None,
    deviations: pd.DataFrame | None = None,
    on_error: str = "raise",
    n_jobs: int | None = None,
    progress: bool | None = None,
) -> PlanResults:
    """Fit every planned analysis of ``study`` on the BDS dataset ``bds``.

    Parameters
    ----------
    study : toolkit.study.Study
        The study model; its ``analysis`` (plan), ``endpoints`` and ``schedule`` are read.
    bds : DataFrame
        Efficacy BDS dataset (``toolkit.store.export.analysis_dataset(store)`` or a CSV with the same
        columns: ``USUBJID, TRTP, PARAMCD, AVISIT, AVISITN, AVAL, BASE, CHG, ABLFL``, population flags,
        strata columns, ``SIDE`` in split-face studies).
    adsl : DataFrame, optional
        Subject-level dataset: adds a ``demographics`` table.
    adae : DataFrame, optional
        Adverse events (with ``adsl``): adds the ``ae_incidence`` table.
    deviations : DataFrame, optional
        Protocol deviations (SDTM DV), for intercurrent events that are prohibited procedures.
    on_error : {'raise', 'record'}
        What a planned analysis that cannot run does: raise (default), or be recorded in
        ``PlanResults.failures`` while the others run. A recorded failure is never rejected: the multiplicity
        procedure counts it as p = 1 (so it can only make the other decisions more conservative), while the
        hypotheses table leaves its p-values empty and says why in ``note``. An estimand that cannot be
        estimated is recorded in ``notes`` (it adds no hypothesis).
    n_jobs, progress
        Processes and progress bar of the estimands' imputations (default: every core; a bar when someone
        is watching).

    The estimands of the plan add ``estimands`` (their attributes in words) and, per estimand,
    ``estimand_<ID>_events``, ``_records``, ``_estimates`` and ``_tipping_point``
    (:func:`toolkit.stats.estimands.run_estimand`).

    Returns
    -------
    PlanResults

    Raises
    ------
    DataError
        A planned analysis cannot run; the message names the analysis id and what is missing.
    """

    if on_error not in ("raise", "record"):
        raise DataError(f"on_error must be 'raise' or 'record', got {on_error!r}")
    bds = _checks.require_frame(bds, what="BDS dataset")
    _checks.require_columns(bds, ["USUBJID", "TRTP", "PARAMCD", "AVISIT", "CHG"], what="BDS dataset")
    bds = _arm_ids(study, bds)
    plan = study.analysis
    alpha = float(plan.alpha)
    results = PlanResults(study_id=str(study.id), input_sha256=_frame_sha256(bds),
                          plan=describe_plan(study), multiplicity=_multiplicity_words(plan))
    if bds.attrs.get("blinded"):
        results.notes.append("the dataset is blinded: arms are coded")
    hypotheses: dict[str, list[tuple[str, float]]] = {}
    arms_present = set(bds["TRTP"].dropna().astype(str))
    for analysis in plan.analyses:
        try:
            _run_one(study, bds, analysis, alpha, results, hypotheses, arms_present)
        except ToolkitError as exc:
            if on_error == "raise":
                raise
            results.failures[analysis.id] = str(exc)
            for comp in analysis.comparisons:
                hypotheses.setdefault(analysis.id, []).append((comp.label, 1.0))
            results.notes.append(
                f"analysis {analysis.id} could not run and counts as not rejected: {exc.message}"
            )
    results.tables["hypotheses"] = _failed_left_empty(_multiplicity(plan, hypotheses, alpha), results.failures)
    if plan.estimands:
        _run_estimands(study, bds, results, adsl=adsl, adae=adae, deviations=deviations, alpha=alpha,
                       on_error=on_error, n_jobs=n_jobs, progress=progress)
    if adsl is not None:
        results.tables["demographics"] = _demographics(adsl)
    if adae is not None:
        if adsl is None:
            raise DataError(
                "the adverse-event table needs the subject-level dataset (adsl) for its denominators"
            )
        from toolkit.stats.safety import ae_incidence

        trt = "TRT01A" if "TRT01A" in adsl.columns else "TRTA" if "TRTA" in adsl.columns else "TRTP"
        results.tables["ae_incidence"] = ae_incidence(adae, adsl, treatment=trt).incidence
    return results


_MODEL_WORDS = {
    "ancova": "ANCOVA",
    "mmrm": "MMRM (unstructured covariance, REML)",
    "paired": "paired split-face model (subject as random effect)",
}
_PROCEDURE_WORDS = {
    "holm": "Holm",
    "hochberg": "Hochberg",
    "fixed-sequence": "fixed-sequence testing",
    "gatekeeping": "serial gatekeeping with Holm within each family",
    "none": "none",
}


def describe_plan(study: Any) -> list[dict[str, Any]]:
    """The planned analyses in the plan's order, in words a report can title its tables with.

    Returns
    -------
    list of dict
        Per analysis: ``id``, ``endpoint``, ``endpoint_label``, ``role``, ``model`` (id), ``model_label``,
        ``population``, ``population_definition``, ``visit``, ``visit_name``, ``covariates``, ``strata``,
        ``comparisons`` (labels), ``margins`` (text per comparison with a margin), ``robust_se``.
    """
    out = []
    plan = study.analysis
    definitions = {p.code: p.definition for p in getattr(plan, "populations", ())}
    for a in plan.analyses:
        try:
            ep = study.endpoint(a.endpoint)
            label, role = str(ep.label), str(getattr(ep, "role", ""))
        except (AttributeError, KeyError):
            label, role = a.endpoint, ""
        visit_name, _ = _visit(study, a.visit)
        margins = {
            c.label: f"{c.margin.type.replace('_', '-')} margin {c.margin.value:g}" for c in a.comparisons if c.margin
        }
        out.append({
            "id": a.id,
            "endpoint": a.endpoint,
            "endpoint_label": label,
            "role": role,
            "model": a.model,
            "model_label": _MODEL_WORDS.get(a.model, a.model),
            "population": a.population,
            "population_definition": definitions.get(a.population, ""),
            "visit": a.visit,
            "visit_name": visit_name,
            "covariates": list(a.covariates),
            "strata": list(a.strata),
            "comparisons": [c.label for c in a.comparisons],
            "margins": margins,
            "robust_se": bool(a.robust_se),
        })
    return out


def _multiplicity_words(plan: Any) -> str:
    mult = plan.multiplicity
    words = _PROCEDURE_WORDS.get(mult.procedure, mult.procedure)
    if mult.procedure == "none" or not mult.order:
        return words
    order = " then ".join("[" + ", ".join(o) + "]" if isinstance(o, tuple) else str(o) for o in mult.order)
    return f"{words}, in the order {order}, at two-sided alpha {float(plan.alpha):g}"


def _failed_left_empty(table: pd.DataFrame, failures: Mapping[str, str]) -> pd.DataFrame:
    """Blank the p-values of hypotheses whose analysis could not run, and say why in ``note``."""
    table = table.copy()
    table["note"] = ""
    if not failures or table.empty:
        return table
    analysis = table["hypothesis"].astype(str).str.split(":").str[0]
    for aid, message in failures.items():
        rows = analysis == aid
        table.loc[rows, ["p_value", "adjusted_p_value"]] = np.nan
        table.loc[rows, "rejected"] = False
        table.loc[rows, "note"] = f"not run: {message}"
    return table


def _arm_ids(study: Any, bds: pd.DataFrame) -> pd.DataFrame:
    """Express ``TRTP`` as the study's arm ids.

    The plan names arms by id (``EP vs SHAM``) while an unblinded CDISC dataset usually carries the arm
    names in TRTP (``Electroporation``); when every value is a name or id of the study's arms, map them.
    Coded (blinded) values are left alone, so the blinded check below still applies.
    """
    lookup: dict[str, str] = {}
    for arm in getattr(study, "arms", ()):
        for key in (str(arm.id), str(getattr(arm, "name", arm.id))):
            lookup[key] = str(arm.id)
            lookup[key.upper()] = str(arm.id)
    values = set(bds["TRTP"].dropna().astype(str))
    if not values or not values <= set(lookup):
        return bds
    return bds.assign(TRTP=bds["TRTP"].map(lambda v: lookup[str(v)] if pd.notna(v) else v))


def _run_one(
    study: Any,
    bds: pd.DataFrame,
    analysis: Any,
    alpha: float,
    results: PlanResults,
    hypotheses: dict[str, list[tuple[str, float]]],
    arms_present: set[str],
) -> None:
    """Fit one planned analysis and add its tables, model details and hypotheses."""
    endpoint = study.endpoint(analysis.endpoint)
    better = getattr(endpoint, "better", "higher")
    wanted = {c.treatment for c in analysis.comparisons} | {c.control for c in analysis.comparisons}
    missing = sorted(wanted - arms_present)
    if missing:
        raise DataError(
            f"analysis {analysis.id}: arm(s) {', '.join(missing)} of the planned comparisons are not in TRTP",
            details=[
                f"TRTP values: {', '.join(sorted(arms_present))}",
                "a blinded dataset codes the arms; run the plan on the unblinded dataset",
            ],
        )
    try:
        records = analysis_records(bds, paramcd=analysis.endpoint, population=analysis.population)
        res, contrasts, tables = fit_planned(study, records, analysis, alpha)
    except ToolkitError as exc:
        raise DataError(
            f"analysis {analysis.id} ({analysis.model} of {analysis.endpoint} at {analysis.visit}): {exc.message}",
            details=exc.details,
        ) from exc
    results.tables.update({f"{analysis.id}_{key}": table for key, table in tables.items()})
    details: dict[str, Any] = {
        "endpoint": analysis.endpoint,
        "model": analysis.model,
        "population": analysis.population,
        "visit": analysis.visit,
    }
    details.update(res.details)
    results.models[analysis.id] = details
    planned, margins = [], []
    for comp in analysis.comparisons:
        row = _orient(contrasts, comp.treatment, comp.control)
        row.insert(0, "analysis", analysis.id)
        row.insert(1, "endpoint", analysis.endpoint)
        row.insert(2, "visit", analysis.visit)
        planned.append(row)
        if comp.margin is None:
            hypotheses.setdefault(analysis.id, []).append((comp.label, float(row["p_value"].iloc[0])))
            continue
        if comp.margin.type == "equivalence":
            test = tost(row, lower=-comp.margin.value, upper=comp.margin.value, alpha=alpha)
            test.insert(0, "test", "equivalence (TOST)")
        else:
            test = noninferiority(
                row, margin=comp.margin.value, higher_is_better=(better == "higher"), alpha=alpha / 2
            )
            test.insert(0, "test", "non-inferiority")
        test.insert(0, "analysis", analysis.id)
        margins.append(test)
        hypotheses.setdefault(analysis.id, []).append((comp.label, float(test["p_value"].iloc[0])))
    results.tables[f"{analysis.id}_contrasts"] = pd.concat(planned, ignore_index=True)
    if margins:
        results.tables[f"{analysis.id}_margins"] = pd.concat(margins, ignore_index=True)


def _run_estimands(study: Any, bds: pd.DataFrame, results: PlanResults, *, on_error: str, **options: Any) -> None:
    """Estimate every estimand of the plan; add its tables, details and the ``estimands`` table."""
    from toolkit.stats.estimands import describe_estimand, run_estimand

    rows = []
    for estimand in study.analysis.estimands:
        words = describe_estimand(study, estimand)
        results.estimands.append(words)
        for attribute in ("population", "variable", "treatments", "intercurrent_events", "summary_measure",
                          "main_estimator", "sensitivity"):
            value = words[attribute]
            rows.append({"estimand": estimand.id, "endpoint": words["endpoint"], "attribute": attribute,
                         "value": "; ".join(value) if isinstance(value, list) else str(value)})
        if options.get("adsl") is None:
            # like the AE table without ADAE: an input not given, said in the notes, not a failed analysis
            results.notes.append(
                f"estimand {estimand.id} not estimated: its intercurrent events come from the subject-level "
                "dataset (ADSL), which was not given"
            )
            continue
        try:
            out = run_estimand(study, bds, estimand, **options)
        except ToolkitError as exc:
            if on_error == "raise":
                raise
            results.notes.append(f"estimand {estimand.id} could not be estimated: {exc.message}")
            continue
        results.tables.update(out.tables)
        results.models[f"estimand {estimand.id}"] = out.details
        results.notes += [f"estimand {estimand.id}: {n}" for n in out.details.get("notes", [])]
    results.tables["estimands"] = pd.DataFrame(rows, columns=["estimand", "endpoint", "attribute", "value"])


def fit_planned(study: Any, records: pd.DataFrame, analysis: Any, alpha: float) -> tuple[Any, pd.DataFrame, dict]:
    """Fit one planned analysis's model to its records (one parameter and population, post-baseline).

    Returns the result object, its contrasts at the analysed visit (``contrast, estimate, se, df, ci_low,
    ci_high, statistic, p_value``) and its extra tables by suffix (``lsmeans``, ``anova``, ``covariance``,
    ``variance_components``). The estimands reuse it on records whose post-event values follow a strategy.
    """
    from toolkit.stats.ancova import ancova
    from toolkit.stats.mmrm import mmrm
    from toolkit.stats.splitface import splitface

    name, number = _visit(study, analysis.visit)
    covs = [c for c in analysis.covariates if c.lower() != "baseline"]
    covs = [resolve_column(records, c, role="covariate") for c in covs]
    strata = [resolve_column(records, s, role="stratification factor") for s in analysis.strata]
    baseline = "BASE" if any(c.lower() == "baseline" for c in analysis.covariates) else None
    reference = analysis.comparisons[0].control
    if analysis.model == "ancova":
        data = _at_visit(records, analysis.visit, name, number)
        res = ancova(
            data,
            outcome="CHG",
            treatment="TRTP",
            baseline=baseline,
            covariates=covs,
            strata=strata,
            reference=reference,
            robust="HC3" if analysis.robust_se else None,
            alpha=alpha,
            contrasts="pairwise",
        )
        return res, res.contrasts, {"lsmeans": res.lsmeans, "anova": res.anova}
    if analysis.model == "mmrm":
        if number is not None and "AVISITN" in records.columns:
            data = records[pd.to_numeric(records["AVISITN"], errors="coerce") <= number]
        else:
            data = records
        res = mmrm(
            data,
            outcome="CHG",
            treatment="TRTP",
            visit="AVISIT",
            subject="USUBJID",
            covariates=[*strata, *covs],
            baseline=baseline,
            reference=reference,
            alpha=alpha,
            contrasts="pairwise",
        )
        contrasts = res.contrasts[res.contrasts["visit"] == name].drop(columns="visit")
        if contrasts.empty:
            raise DataError(f"the MMRM has no estimate at visit {analysis.visit} ({name})")
        return res, contrasts, {"lsmeans": res.lsmeans, "covariance": res.covariance.reset_index()}
    if analysis.model == "paired":
        data = _at_visit(records, analysis.visit, name, number)
        res = splitface(
            data,
            outcome="CHG",
            treatment="TRTP",
            subject="USUBJID",
            baseline=baseline,
            covariates=[*strata, *covs],
            reference=reference,
            alpha=alpha,
        )
        return res, res.contrasts, {"lsmeans": res.lsmeans, "variance_components": res.variance_components}
    raise DataError(f"unknown model {analysis.model!r}")  # pragma: no cover - the study model allows three


def _multiplicity(plan: Any, hypotheses: dict[str, list[tuple[str, float]]], alpha: float) -> pd.DataFrame:
    procedure = plan.multiplicity.procedure
    order = list(plan.multiplicity.order)
    if procedure == "gatekeeping":
        families = {
            " + ".join(fam): {f"{aid}: {label}": p for aid in fam for label, p in hypotheses.get(aid, [])}
            for fam in order
        }
        table = serial_gatekeeping(families, within="holm", alpha=alpha)
        table.insert(0, "procedure", "serial gatekeeping (Holm within family)")
        tested = {
            h for fam in order for aid in fam for h in (f"{aid}: {lbl}" for lbl, _ in hypotheses.get(aid, []))
        }
    else:
        ids = order if procedure != "none" else list(hypotheses)
        names = [f"{aid}: {label}" for aid in ids for label, _ in hypotheses.get(aid, [])]
        pvals = [p for aid in ids for _, p in hypotheses.get(aid, [])]
        if not names:
            return pd.DataFrame(
                columns=["procedure", "family", "hypothesis", "p_value", "adjusted_p_value", "rejected"]
            )
        adj = np.asarray(pvals) if procedure == "none" else adjust_pvalues(pvals, procedure)
        table = pd.DataFrame(
            {
                "procedure": procedure,
                "family": "all",
                "hypothesis": names,
                "p_value": pvals,
                "adjusted_p_value": adj,
                "rejected": adj <= alpha,
            }
        )
        tested = set(names)
    others = [
        (f"{aid}: {lbl}", p)
        for aid, items in hypotheses.items()
        for lbl, p in items
        if f"{aid}: {lbl}" not in tested
    ]
    if others:
        extra = pd.DataFrame(
            {
                "procedure": "none (not in the multiplicity order)",
                "family": "supportive",
                "hypothesis": [n for n, _ in others],
                "p_value": [p for _, p in others],
                "adjusted_p_value": [p for _, p in others],
                "rejected": [p <= alpha for _, p in others],
            }
        )
        table = pd.concat([table, extra], ignore_index=True)
    return table


def _demographics(adsl: pd.DataFrame) -> pd.DataFrame:
    from toolkit.stats.demographics import demographics

    trt = next((c for c in ("TRT01P", "TRTP", "ARM") if c in adsl.columns), None)
    if trt is None:
        raise DataError("the subject-level dataset needs a treatment column (TRT01P, TRTP or ARM)")
    candidates = [
        "AGE",
        "AGEGR1",
        "SEX",
        "RACE",
        "ETHNIC",
        "FITZPAT",
        "FITZ",
        "SKINTYPE",
        "WEIGHTBL",
        "HEIGHTBL",
        "BMIBL",
    ]
    variables = [c for c in candidates if c in adsl.columns and adsl[c].notna().any()]
    if not variables:
        raise DataError("the subject-level dataset has none of the demographic columns AGE, SEX, RACE ...")
    flag = "ITTFL" if "ITTFL" in adsl.columns else None
    return demographics(adsl, treatment=trt, variables=variables, population_flag=flag).display
