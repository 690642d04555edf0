"""Treatment-emergent adverse events: incidence by system organ class and preferred term per arm.

Counts follow the usual CSR convention: a subject counts once per row (SOC or PT) however many events they
had; the event count is reported beside it. Percentages use the number of subjects of the arm in the
safety population (from the subject-level dataset), not the number with events.

p-values: with two arms, Fisher's exact test (scipy). With more arms, ``test="exact"`` (default) gives the
Freeman–Halton generalisation — the exact conditional test of the 2 x k table, summing the multivariate
hypergeometric probabilities of every table with the observed margins that is no more probable than the
one observed — and ``test="pairwise"`` gives Fisher's exact test of each arm against the reference arm (one
column per comparison, as many CSRs print, e.g. "Placebo vs. Low Dose").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from toolkit.errors import DataError
from toolkit.stats import _checks
from toolkit.stats.results import AnalysisResult

__all__ = ["AEIncidenceResult", "ae_incidence", "freeman_halton"]

#: the label of the all-events row
ANY_EVENT = "ANY TREATMENT-EMERGENT EVENT"


def freeman_halton(events: np.ndarray, totals: np.ndarray) -> float:
    """Exact p-value of the 2 x k table (subjects with / without the event in each of k arms).

    Parameters
    ----------
    events : (k,) array of int
        Subjects with the event per arm.
    totals : (k,) array of int
        Subjects per arm.
    """
    events = np.asarray(events, dtype=int)
    totals = np.asarray(totals, dtype=int)
    if events.shape != totals.shape or np.any(events < 0) or np.any(events > totals):
        raise DataError("freeman_halton: need 0 <= events <= totals for every arm")
    k = len(totals)
    r = int(events.sum())
    log_norm = (
        special.gammaln(totals.sum() + 1) - special.gammaln(r + 1) - special.gammaln(totals.sum() - r + 1)
    )

    def log_choose(n, x):
        return special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(n - x + 1)

    observed = float(np.sum(log_choose(totals, events)) - log_norm)
    # enumerate every table with the observed margins: the first k - 1 arms on a grid, the last arm takes
    # the remainder (about 7,000 tables for three arms of 85 subjects)
    ranges = [np.arange(min(int(n), r) + 1) for n in totals[:-1]]
    n_tables = int(np.prod([len(rg) for rg in ranges], dtype=float))
    if n_tables > 5_000_000:
        raise DataError(
            f"the exact {k}-arm test would enumerate {n_tables:,} tables",
            details=["use test='pairwise' (Fisher's exact test of each arm against the reference)"],
        )
    grids = np.meshgrid(*ranges, indexing="ij", sparse=True)
    logp = np.zeros(())
    partial_sum = np.zeros((), dtype=int)
    for n, g in zip(totals[:-1], grids, strict=True):
        logp = logp + log_choose(n, g)
        partial_sum = partial_sum + g
    rest = r - partial_sum
    valid = (rest >= 0) & (rest <= totals[-1])
    logp = logp + log_choose(totals[-1], np.clip(rest, 0, totals[-1])) - log_norm
    # tolerance so that tables exactly as probable as the observed one count despite rounding
    keep = valid & (logp <= observed + 1e-7)
    return float(min(1.0, np.exp(logp[keep]).sum()))


@dataclass
class AEIncidenceResult(AnalysisResult):
    """Result of :func:`ae_incidence`: the ``incidence`` table and the arm sizes ``big_n``."""

    incidence: pd.DataFrame = field(default_factory=pd.DataFrame)
    big_n: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        self.table_names = ("big_n", "incidence")


def ae_incidence(
    adae: pd.DataFrame,
    adsl: pd.DataFrame,
    *,
    treatment: str = "TRT01A",
    ae_treatment: str | None = None,
    subject: str = "USUBJID",
    soc: str = "AEBODSYS",
    term: str = "AEDECOD",
    population_flag: str | None = "SAFFL",
    emergent_flag: str | None = "TRTEMFL",
    reference: object | None = None,
    test: str = "exact",
) -> AEIncidenceResult:
    """Incidence of treatment-emergent adverse events by SOC and preferred term per arm.

    Parameters
    ----------
    adae : DataFrame
        One record per adverse event (ADAE).
    adsl : DataFrame
        One record per subject (ADSL): the denominators and the arm of each subject.
    treatment : str
        Arm column of ``adsl`` (actual treatment for safety, ``TRT01A``).
    ae_treatment : str, optional
        Ignored for counting (the arm always comes from ``adsl`` so the two never disagree); kept for
        symmetry with ADaM naming.
    subject, soc, term : str
        Subject id, system organ class and preferred term columns of ``adae``.
    population_flag : str or None
        ``adsl`` flag selecting the safety population (``"Y"``).
    emergent_flag : str or None
        ``adae`` flag selecting treatment-emergent events (``"Y"``).
    reference : optional
        Reference arm for pairwise tests (default: first in sorted order).
    test : {'exact', 'pairwise', 'none'}
        p-value column(s), see the module notes.

    Returns
    -------
    AEIncidenceResult
        ``incidence`` has one row per SOC (``term`` = ``""``) and per PT inside it, plus the any-event
        row, with ``n_<arm>``, ``pct_<arm>``, ``events_<arm>`` columns and p-values.
    """
    if test not in ("exact", "pairwise", "none"):
        raise DataError(f"test must be 'exact', 'pairwise' or 'none', got {test!r}")
    adae = _checks.require_frame(adae, what="adae")
    adsl = _checks.require_frame(adsl, what="adsl")
    _checks.require_columns(adsl, [subject, treatment, population_flag], what="adsl")
    _checks.require_columns(adae, [subject, soc, term, emergent_flag], what="adae")
    pop = adsl
    if population_flag:
        pop = adsl[adsl[population_flag].astype("string").str.strip().str.upper() == "Y"]
    if pop.empty:
        raise DataError(f"no subjects with {population_flag} = 'Y' in adsl")
    arms = _checks.categorical_levels(pop[treatment], reference, column=treatment)
    big_n = pop.groupby(treatment, observed=True)[subject].nunique().reindex(arms)
    events = adae
    if emergent_flag:
        events = adae[adae[emergent_flag].astype("string").str.strip().str.upper() == "Y"]
    arm_of = pop.set_index(subject)[treatment]
    unknown = set(events[subject]) - set(arm_of.index)
    events = events[events[subject].isin(arm_of.index)].copy()
    events["_arm"] = events[subject].map(arm_of)
    for col in (soc, term):
        if events[col].isna().any():
            raise DataError(
                f"adae column {col!r} has missing values for treatment-emergent events (uncoded terms?)"
            )

    # counting on integer codes: pandas group-bys over a few hundred terms are needlessly slow
    subj_codes, subj_index = pd.factorize(events[subject].to_numpy(dtype=object))
    arm_codes = pd.Categorical(events["_arm"].to_numpy(dtype=object), categories=arms).codes
    subj_arm = np.zeros(len(subj_index), dtype=int)
    subj_arm[subj_codes] = arm_codes
    k = len(arms)
    n_arm = big_n.to_numpy(dtype=int)

    def counts(group_codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
        ev = np.zeros((n_groups, k), dtype=int)
        np.add.at(ev, (group_codes, arm_codes), 1)
        keys = np.unique(group_codes.astype(np.int64) * len(subj_index) + subj_codes)
        subj_n = np.zeros((n_groups, k), dtype=int)
        np.add.at(subj_n, (keys // len(subj_index), subj_arm[keys % len(subj_index)]), 1)
        return subj_n, ev

    def row(label_soc: object, label_term: object, subj_n: np.ndarray, ev: np.ndarray) -> dict:
        out: dict = {"soc": label_soc, "term": label_term}
        for j, a in enumerate(arms):
            out[f"n_{a}"] = int(subj_n[j])
            out[f"pct_{a}"] = 100.0 * subj_n[j] / n_arm[j]
            out[f"events_{a}"] = int(ev[j])
        out["n_total"] = int(subj_n.sum())
        out["pct_total"] = 100.0 * subj_n.sum() / n_arm.sum()
        out["events_total"] = int(ev.sum())
        if test == "exact":
            if k == 2:
                table = [[subj_n[1], n_arm[1] - subj_n[1]], [subj_n[0], n_arm[0] - subj_n[0]]]
                out["p_value"] = float(stats.fisher_exact(table)[1])
            else:
                out["p_value"] = freeman_halton(subj_n, n_arm)
        elif test == "pairwise":
            for j, a in enumerate(arms[1:], start=1):
                table = [[subj_n[j], n_arm[j] - subj_n[j]], [subj_n[0], n_arm[0] - subj_n[0]]]
                out[f"p_value_{a}_vs_{arms[0]}"] = float(stats.fisher_exact(table)[1])
        return out

    any_n, any_ev = counts(np.zeros(len(events), dtype=int), 1)
    rows = [row(ANY_EVENT, "", any_n[0], any_ev[0])]
    soc_values = events[soc].astype(str).to_numpy(dtype=object)
    term_values = events[term].astype(str).to_numpy(dtype=object)
    soc_codes, soc_index = pd.factorize(soc_values, sort=True)
    pair_codes, pair_index = pd.factorize(pd.MultiIndex.from_arrays([soc_values, term_values]), sort=True)
    soc_n, soc_ev = counts(soc_codes, len(soc_index))
    pt_n, pt_ev = counts(pair_codes, len(pair_index))
    pairs_by_soc: dict[str, list[int]] = {}
    for j, (soc_name, _) in enumerate(pair_index):
        pairs_by_soc.setdefault(soc_name, []).append(j)
    for i, soc_name in enumerate(soc_index):
        rows.append(row(soc_name, "", soc_n[i], soc_ev[i]))
        for j in pairs_by_soc.get(soc_name, []):
            rows.append(row(soc_name, pair_index[j][1], pt_n[j], pt_ev[j]))
    details = {
        "population": f"{population_flag} = 'Y'" if population_flag else "all subjects in adsl",
        "events": f"{emergent_flag} = 'Y'" if emergent_flag else "all events",
        "test": {
            "exact": "Fisher exact (2 arms) / Freeman-Halton exact (more arms)",
            "pairwise": f"Fisher exact, each arm vs {arms[0]}",
            "none": "none",
        }[test],
        "percent_denominator": "subjects in the arm",
    }
    if unknown:
        details["events_of_subjects_outside_population"] = len(unknown)
    return AEIncidenceResult(
        title="Treatment-emergent adverse events by system organ class and preferred term",
        details=details,
        incidence=pd.DataFrame(rows),
        big_n=pd.DataFrame({"treatment": arms, "n": big_n.to_numpy()}),
    )
