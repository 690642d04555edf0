"""User mistakes end in a DataError that names the column, visit or arm and what is needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.errors import DataError
from toolkit.stats import (
    ModelFitError,
    ae_incidence,
    ancova,
    ancova_sample_size,
    mmrm,
    responder_analysis,
    risk_difference,
    serial_gatekeeping,
    splitface,
    tost,
)

from .conftest import simulate_parallel_bds


@pytest.fixture(scope="module")
def bds() -> pd.DataFrame:
    data = simulate_parallel_bds(arms={"SHAM": 0.0, "EP": -2.0}, n_per_arm=15, seed=4)
    return data[data.ABLFL != "Y"].reset_index(drop=True)


def _mmrm(data, **kw):
    args = {
        "outcome": "CHG",
        "treatment": "TRTP",
        "visit": "AVISIT",
        "subject": "USUBJID",
        "baseline": "BASE",
    }
    args.update(kw)
    return mmrm(data, **args)


def test_single_arm(bds: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="single arm"):
        _mmrm(bds[bds.TRTP == "EP"])
    with pytest.raises(DataError, match="single arm"):
        ancova(
            bds[(bds.TRTP == "EP") & (bds.AVISITN == 12)], outcome="CHG", treatment="TRTP", baseline="BASE"
        )


def test_visit_without_data_in_one_arm(bds: pd.DataFrame) -> None:
    gap = bds[~((bds.TRTP == "SHAM") & (bds.AVISIT == "After session 8"))]
    with pytest.raises(DataError, match=r"visit 'After session 8' has no CHG data in arm 'SHAM'"):
        _mmrm(gap)


def test_singular_covariance_is_reported_not_hidden(bds: pd.DataFrame) -> None:
    copy = bds.copy()
    # visit 8 is an exact copy of visit 4 for every subject: the covariance over visits is singular
    v4 = copy[copy.AVISIT == "After session 4"].set_index("USUBJID").CHG
    mask = copy.AVISIT == "After session 8"
    copy.loc[mask, "CHG"] = copy.loc[mask, "USUBJID"].map(v4).to_numpy()
    with pytest.raises(ModelFitError, match="singular|did not converge"):
        _mmrm(copy)


def test_missing_baselines(bds: pd.DataFrame) -> None:
    broken = bds.copy()
    broken.loc[broken.USUBJID == "S0003", "BASE"] = np.nan
    with pytest.raises(DataError, match=r"baseline column 'BASE' has .* missing value.*S0003"):
        _mmrm(broken)
    with pytest.raises(DataError, match="BASE"):
        ancova(broken[broken.AVISITN == 12], outcome="CHG", treatment="TRTP", baseline="BASE")


def test_non_numeric_outcome(bds: pd.DataFrame) -> None:
    broken = bds.assign(CHG=bds.CHG.astype(object))
    broken.loc[5, "CHG"] = "n/a"
    with pytest.raises(DataError, match=r"outcome column 'CHG' must be numeric.*'n/a'"):
        _mmrm(broken)


def test_too_few_subjects(bds: pd.DataFrame) -> None:
    few = bds[bds.USUBJID.isin(["S0001", "S0016"])]
    with pytest.raises(DataError, match="too few subjects"):
        _mmrm(few)
    with pytest.raises(DataError, match="too few subjects"):
        ancova(few[few.AVISITN == 12], outcome="CHG", treatment="TRTP", baseline="BASE")


def test_unknown_columns(bds: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"column\(s\) 'VISIT' not found"):
        _mmrm(bds, visit="VISIT")
    with pytest.raises(DataError, match="'AGEGRP'"):
        ancova(bds, outcome="CHG", treatment="TRTP", baseline="BASE", strata=["AGEGRP"])
    with pytest.raises(DataError, match="reference level 'PLACEBO' not found"):
        _mmrm(bds, reference="PLACEBO")


def test_bad_options(bds: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="unknown covariance structure 'toeplitz'"):
        _mmrm(bds, covariance="toeplitz")
    with pytest.raises(DataError, match="df_method"):
        _mmrm(bds, df_method="containment")
    with pytest.raises(DataError, match="robust"):
        ancova(bds[bds.AVISITN == 12], outcome="CHG", treatment="TRTP", baseline="BASE", robust="HC9")


def test_duplicated_visits(bds: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="duplicated record"):
        _mmrm(pd.concat([bds, bds.iloc[[0]]]))


def test_splitface_inputs() -> None:
    frame = pd.DataFrame({"ID": [1, 1, 2, 2], "TRT": ["EP", "EP", "EP", "MC"], "Y": [1.0, 2, 3, 4]})
    with pytest.raises(DataError, match="same 'TRT' on more than one side"):
        splitface(frame, outcome="Y", treatment="TRT", subject="ID")
    frame = pd.DataFrame({"ID": [1, 2, 3], "TRT": ["EP", "MC", "EP"], "Y": [1.0, 2, 3]})
    with pytest.raises(DataError, match="both treatments"):
        splitface(frame, outcome="Y", treatment="TRT", subject="ID")


def test_responders_and_margins() -> None:
    with pytest.raises(DataError, match="invalid counts"):
        risk_difference(12, 10, 3, 10)
    with pytest.raises(DataError, match="0/1, True/False or Y/N"):
        responder_analysis(pd.DataFrame({"T": ["A", "B"], "R": ["maybe", "Y"]}), response="R", treatment="T")
    with pytest.raises(DataError, match="lower < upper"):
        tost(pd.DataFrame({"estimate": [0.0], "se": [1.0], "df": [10.0]}), lower=1.0, upper=-1.0)
    with pytest.raises(DataError, match=r"'se'"):
        tost(pd.DataFrame({"estimate": [0.0]}), lower=-1, upper=1)
    with pytest.raises(DataError, match=r"p-values must lie in \[0, 1\]"):
        serial_gatekeeping({"primary": {"P": 1.5}})
    with pytest.raises(DataError, match="rho"):
        ancova_sample_size(delta=1.0, sd=1.0, rho=1.0)


def test_adverse_events_without_population() -> None:
    adsl = pd.DataFrame({"USUBJID": ["1", "2"], "TRT01A": ["EP", "MC"], "SAFFL": ["N", "N"]})
    adae = pd.DataFrame({"USUBJID": ["1"], "AEBODSYS": ["SKIN"], "AEDECOD": ["ERYTHEMA"], "TRTEMFL": ["Y"]})
    with pytest.raises(DataError, match="no subjects with SAFFL = 'Y'"):
        ae_incidence(adae, adsl)
    with pytest.raises(DataError, match="'AEDECOD'"):
        ae_incidence(adae.drop(columns="AEDECOD"), adsl.assign(SAFFL="Y"))
