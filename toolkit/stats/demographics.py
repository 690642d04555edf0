"""Table 1: demographics and baseline characteristics by arm and overall.

Continuous variables: n, mean (SD), median, min–max; categorical: n (%) per level, percentages of the
subjects with a non-missing value. Optional p-values follow the CDISC pilot report (Table 14-2.01): one-way
ANOVA for continuous variables and the Pearson chi-square test of the arm-by-category table for
categorical ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.errors import DataError
from toolkit.stats import _checks
from toolkit.stats.results import AnalysisResult
from toolkit.stats.rounding import format_percent

__all__ = ["DemographicsResult", "demographics"]

#: label of the all-subjects column
OVERALL = "Total"


@dataclass
class DemographicsResult(AnalysisResult):
    """Result of :func:`demographics`.

    ``table``: long and tidy, one row per (variable, statistic or level, arm) with numeric columns
    ``n, mean, sd, median, min, max, pct`` as applicable; ``tests``: one row per variable with ``test`` and
    ``p_value``; ``display``: the formatted wide table (strings) as printed in a CSR.
    """

    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    display: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        self.table_names = ("display", "tests")


def demographics(
    data: pd.DataFrame,
    *,
    treatment: str,
    variables: Sequence[str],
    categorical: Sequence[str] | None = None,
    p_values: bool = True,
    population_flag: str | None = None,
    decimals: int = 1,
) -> DemographicsResult:
    """Summarise baseline variables by arm and overall.

    Parameters
    ----------
    data : DataFrame
        One record per subject (ADSL).
    treatment : str
        Arm column.
    variables : sequence of str
        Variables in display order.
    categorical : sequence of str, optional
        Variables to summarise as n (%); default: those that are not numeric.
    p_values : bool
        Add ANOVA / chi-square p-values across arms.
    population_flag : str, optional
        Keep subjects with this flag equal to ``"Y"`` (e.g. ``ITTFL``).
    decimals : int
        Decimals of means and medians in ``display`` (SD gets one more, as in the CDISC pilot).
    """
    data = _checks.require_frame(data)
    variables = list(variables)
    _checks.require_columns(data, [treatment, population_flag, *variables])
    if population_flag:
        data = data[data[population_flag].astype("string").str.strip().str.upper() == "Y"]
        if data.empty:
            raise DataError(f"no subjects with {population_flag} = 'Y'")
    _checks.require_complete(data, [treatment], id_column="USUBJID", role="treatment")
    arms = _checks.categorical_levels(data[treatment], column=treatment)
    cats = (
        set(categorical)
        if categorical is not None
        else {v for v in variables if _checks.is_categorical(data[v])}
    )
    groups = [(a, data[data[treatment] == a]) for a in arms] + [(OVERALL, data)]
    rows, tests, display = [], [], []
    for var in variables:
        if var in cats:
            levels = _checks.categorical_levels(data[var], column=var)
            for arm, sub in groups:
                nonmiss = sub[var].notna().sum()
                for lv in levels:
                    n = int((sub[var] == lv).sum())
                    rows.append(
                        {
                            "variable": var,
                            "level": lv,
                            "treatment": arm,
                            "n": n,
                            "pct": 100.0 * n / nonmiss if nonmiss else np.nan,
                        }
                    )
            for lv in levels:
                cells = {
                    arm: f"{int((sub[var] == lv).sum())} "
                    f"({format_percent(int((sub[var] == lv).sum()), int(sub[var].notna().sum())) or '0'}%)"
                    for arm, sub in groups
                }
                display.append({"variable": var, "statistic": str(lv), **cells})
            if p_values and len(arms) > 1:
                crosstab = pd.crosstab(data[treatment], data[var])
                if crosstab.shape[1] > 1:
                    chi2, p, dof, _ = stats.chi2_contingency(crosstab, correction=False)
                    tests.append(
                        {
                            "variable": var,
                            "test": "Pearson chi-square",
                            "statistic": chi2,
                            "df": dof,
                            "p_value": p,
                        }
                    )
                else:
                    tests.append(
                        {
                            "variable": var,
                            "test": "Pearson chi-square",
                            "statistic": np.nan,
                            "df": 0,
                            "p_value": np.nan,
                        }
                    )
        else:
            values = _checks.require_numeric(data, var, role="continuous variable")
            numeric = pd.Series(values, index=data.index)
            stats_rows = {}
            for arm, sub in groups:
                x = numeric.loc[sub.index].dropna()
                rec = {
                    "variable": var,
                    "level": "",
                    "treatment": arm,
                    "n": len(x),
                    "mean": x.mean() if len(x) else np.nan,
                    "sd": x.std(ddof=1) if len(x) > 1 else np.nan,
                    "median": x.median() if len(x) else np.nan,
                    "min": x.min() if len(x) else np.nan,
                    "max": x.max() if len(x) else np.nan,
                }
                rows.append(rec)
                stats_rows[arm] = rec
            d = decimals
            display.append(
                {"variable": var, "statistic": "n", **{a: f"{r['n']}" for a, r in stats_rows.items()}}
            )
            display.append(
                {
                    "variable": var,
                    "statistic": "Mean (SD)",
                    **{a: f"{r['mean']:.{d}f} ({r['sd']:.{d + 1}f})" for a, r in stats_rows.items()},
                }
            )
            display.append(
                {
                    "variable": var,
                    "statistic": "Median",
                    **{a: f"{r['median']:.{d}f}" for a, r in stats_rows.items()},
                }
            )
            display.append(
                {
                    "variable": var,
                    "statistic": "Min - Max",
                    **{a: f"{r['min']:g} - {r['max']:g}" for a, r in stats_rows.items()},
                }
            )
            if p_values and len(arms) > 1:
                samples = [numeric.loc[sub.index].dropna().to_numpy() for arm, sub in groups[:-1]]
                if all(len(s) > 0 for s in samples) and sum(len(s) for s in samples) > len(samples):
                    f, p = stats.f_oneway(*samples)
                    tests.append(
                        {
                            "variable": var,
                            "test": "one-way ANOVA",
                            "statistic": float(f),
                            "df": len(samples) - 1,
                            "p_value": float(p),
                        }
                    )
    tests_df = pd.DataFrame(tests, columns=["variable", "test", "statistic", "df", "p_value"])
    display_df = pd.DataFrame(display)
    if p_values and not tests_df.empty:
        pv = tests_df.set_index("variable")["p_value"]
        first = ~display_df["variable"].duplicated()
        display_df["p_value"] = ""
        display_df.loc[first, "p_value"] = display_df.loc[first, "variable"].map(
            lambda v: f"{pv[v]:.4f}" if v in pv.index and np.isfinite(pv[v]) else ""
        )
    return DemographicsResult(
        title="Demographics and baseline characteristics",
        details={
            "population": f"{population_flag} = 'Y'" if population_flag else "all subjects",
            "n": int(len(data)),
            "arms": [str(a) for a in arms],
            "tests": "one-way ANOVA (continuous), Pearson chi-square (categorical)" if p_values else "none",
        },
        table=pd.DataFrame(rows),
        tests=tests_df,
        display=display_df,
    )
