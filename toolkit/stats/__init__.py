"""Statistical analysis: ANCOVA, MMRM (with Type III F tests), reference-based multiple imputation and
tipping point, split-face, nonparametric, responders, equivalence, multiplicity, power, time to
improvement, safety tables and Table 1.

Every function takes a pandas DataFrame in CDISC-like long form plus column names and returns a result
object with tidy tables (``lsmeans``, ``contrasts`` with ``estimate, se, df, ci_low, ci_high, p_value``),
a ``summary()`` and an HTML rendering for JupyterLab.

>>> from toolkit.stats import ancova, mmrm                      # doctest: +SKIP
>>> res = mmrm(bds, outcome="CHG", treatment="TRTP", visit="AVISIT", subject="USUBJID", baseline="BASE")
>>> res.contrasts                                               # doctest: +SKIP
"""

from toolkit.stats.ancova import AncovaResult, ancova
from toolkit.stats.dataset import analysis_records, population_flag, select_population
from toolkit.stats.demographics import DemographicsResult, demographics
from toolkit.stats.equivalence import noninferiority, tost
from toolkit.stats.errors import AnalysisWarning, ModelFitError
from toolkit.stats.mmrm import MMRMResult, mmrm
from toolkit.stats.multiplicity import adjust_pvalues, fixed_sequence, hochberg, holm, serial_gatekeeping
from toolkit.stats.nonparametric import RankTestResult, hodges_lehmann, mann_whitney, wilcoxon_signed_rank
from toolkit.stats.plan import PlanResults, run_analysis_plan
from toolkit.stats.power import ancova_power, ancova_sample_size
from toolkit.stats.power_simulation import MMRMPowerResult, mmrm_power_simulation
from toolkit.stats.reference_based import ReferenceBasedResult, reference_based_mi
from toolkit.stats.responders import ResponderResult, odds_ratio, responder_analysis, risk_difference
from toolkit.stats.safety import AEIncidenceResult, ae_incidence, freeman_halton
from toolkit.stats.splitface import SplitFaceResult, splitface
from toolkit.stats.survival import (
    TimeToImprovementResult,
    improvement_records,
    kaplan_meier,
    logrank,
    time_to_improvement,
)
from toolkit.stats.tipping_point import TippingPointResult, tipping_point

__all__ = [
    "AEIncidenceResult",
    "AnalysisWarning",
    "AncovaResult",
    "DemographicsResult",
    "MMRMPowerResult",
    "MMRMResult",
    "ModelFitError",
    "PlanResults",
    "RankTestResult",
    "ReferenceBasedResult",
    "ResponderResult",
    "SplitFaceResult",
    "TimeToImprovementResult",
    "TippingPointResult",
    "adjust_pvalues",
    "ae_incidence",
    "analysis_records",
    "ancova",
    "ancova_power",
    "ancova_sample_size",
    "demographics",
    "fixed_sequence",
    "freeman_halton",
    "hochberg",
    "hodges_lehmann",
    "holm",
    "kaplan_meier",
    "logrank",
    "mann_whitney",
    "mmrm",
    "mmrm_power_simulation",
    "noninferiority",
    "odds_ratio",
    "population_flag",
    "reference_based_mi",
    "responder_analysis",
    "risk_difference",
    "run_analysis_plan",
    "select_population",
    "serial_gatekeeping",
    "splitface",
    "time_to_improvement",
    "tipping_point",
    "improvement_records",
    "tost",
    "wilcoxon_signed_rank",
]
