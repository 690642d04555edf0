"""Fixtures of the statistics tests: reference datasets and synthetic BDS data with known truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def fev_data(reference_dir: Path) -> pd.DataFrame:
    """The mmrm package's fev_data with SAS's reference levels (Asian, Male) first."""
    data = pd.read_csv(reference_dir / "fev" / "fev_data.csv")
    data["RACE"] = pd.Categorical(data["RACE"], categories=["Asian", "Black or African American", "White"])
    data["SEX"] = pd.Categorical(data["SEX"], categories=["Male", "Female"])
    return data


def fev_mmrm(data: pd.DataFrame, **options):
    """The SAS reference model on fev_data: FEV1 ~ RACE + SEX + ARMCD * AVISIT, unstructured, REML."""
    from toolkit.stats import mmrm

    settings = {
        "outcome": "FEV1",
        "treatment": "ARMCD",
        "visit": "AVISIT",
        "subject": "USUBJID",
        "covariates": ["RACE", "SEX"],
        "reference": "PBO",
        **options,
    }
    return mmrm(data, **settings)


@pytest.fixture(scope="session")
def adadas(reference_dir: Path) -> pd.DataFrame:
    return pd.read_csv(reference_dir / "cdisc-pilot" / "adadas.csv")


@pytest.fixture(scope="session")
def adsl(reference_dir: Path) -> pd.DataFrame:
    import pyreadstat

    frame, _ = pyreadstat.read_xport(str(reference_dir / "cdisc-pilot" / "adsl.xpt"))
    return frame


@pytest.fixture(scope="session")
def adae(reference_dir: Path) -> pd.DataFrame:
    import pyreadstat

    frame, _ = pyreadstat.read_xport(str(reference_dir / "cdisc-pilot" / "adae.xpt"))
    return frame


def simulate_parallel_bds(
    *,
    arms: dict[str, float],
    n_per_arm: int = 40,
    visits: tuple[tuple[str, str, int], ...] = (
        ("BASELINE", "Baseline", 0),
        ("S4", "After session 4", 4),
        ("S8", "After session 8", 8),
        ("S12", "After session 12", 12),
    ),
    paramcds: tuple[str, ...] = ("NLFLEN",),
    sd: float = 2.0,
    rho: float = 0.6,
    seed: int = 1,
    stratum_column: str = "AGEGROUP",
) -> pd.DataFrame:
    """BDS records of a parallel trial: ``arms`` maps arm id to its true mean change at the last visit
    (the change grows linearly over visits); outcomes correlate ``rho`` between visits."""
    rng = np.random.default_rng(seed)
    post = [v for v in visits if v[2] > 0]
    t = len(post)
    cov = sd**2 * (rho * np.ones((t, t)) + (1 - rho) * np.eye(t))
    rows = []
    sid = 0
    for arm, effect in arms.items():
        for _ in range(n_per_arm):
            sid += 1
            stratum = "lt45" if rng.uniform() < 0.5 else "ge45"
            for code in paramcds:
                base = rng.normal(50.0, 5.0)
                noise = rng.multivariate_normal(np.zeros(t), cov)
                frac = np.array([v[2] for v in post], float) / post[-1][2]
                change = effect * frac - 0.05 * (base - 50.0) + noise
                common = {
                    "USUBJID": f"S{sid:04d}",
                    "TRTP": arm,
                    "PARAMCD": code,
                    "BASE": base,
                    "ITTFL": "Y",
                    "SAFFL": "Y",
                    "PPROTFL": "Y" if sid % 10 else "N",
                    stratum_column: stratum,
                }
                rows.append(
                    {
                        **common,
                        "AVISIT": visits[0][1],
                        "AVISITN": float(visits[0][2]),
                        "AVAL": base,
                        "CHG": np.nan,
                        "ABLFL": "Y",
                    }
                )
                for (_, name, number), chg in zip(post, change, strict=True):
                    rows.append(
                        {
                            **common,
                            "AVISIT": name,
                            "AVISITN": float(number),
                            "AVAL": base + chg,
                            "CHG": chg,
                            "ABLFL": "",
                        }
                    )
    return pd.DataFrame(rows)


SAS_EPOCH = pd.Timestamp("1960-01-01")
FIRST_DOSE = pd.Timestamp("2026-03-02")


def _sas(day: int) -> float:
    """SAS date number of study day ``day`` (day 1 = first dose)."""
    return float((FIRST_DOSE + pd.Timedelta(days=day - 1) - SAS_EPOCH).days)


def trial_with_disposition(paramcds: tuple[str, ...] = ("NLFLEN",)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """BDS of a three-arm trial (visits S4, S8, S12 on days 22, 50, 78) and its ADSL with disposition.

    S0002 (SHAM) withdraws on day 30, after S4; S0014 (EP) stops treatment for an adverse event on day 60,
    after S8, and keeps coming to its visits; S0026 (MC) withdraws on day 10, before S4.
    """
    bds = simulate_parallel_bds(arms={"SHAM": 0.0, "EP": -6.0, "MC": -3.0}, n_per_arm=12, paramcds=paramcds, seed=4)
    subjects = bds["USUBJID"].drop_duplicates().tolist()
    arms = bds.drop_duplicates("USUBJID").set_index("USUBJID")["TRTP"]
    adsl = pd.DataFrame({"USUBJID": subjects, "TRT01P": arms.loc[subjects].to_numpy(),
                         "AGE": 40 + np.arange(len(subjects)) % 20, "SEX": "F",
                         "TRTSDTC": f"{FIRST_DOSE.date()}T09:00:00", "EOTSTT": "COMPLETED", "EOTDT": np.nan,
                         "DCTREAS": None, "EOSSTT": "COMPLETED", "EOSDT": np.nan, "DCSREAS": None})
    stop = ["EOTSTT", "EOTDT", "DCTREAS", "EOSSTT", "EOSDT", "DCSREAS"]
    adsl.loc[adsl.USUBJID == "S0002", stop] = ["DISCONTINUED", _sas(30), "WITHDRAWAL BY SUBJECT", "DISCONTINUED",
                                               _sas(30), "WITHDRAWAL BY SUBJECT"]
    adsl.loc[adsl.USUBJID == "S0014", stop[:3]] = ["DISCONTINUED", _sas(60), "ADVERSE EVENT"]
    adsl.loc[adsl.USUBJID == "S0026", stop] = ["DISCONTINUED", _sas(10), "LACK OF EFFICACY", "DISCONTINUED",
                                               _sas(10), "LACK OF EFFICACY"]
    post = bds["AVISITN"] > 0
    gone = (bds.USUBJID == "S0002") & (bds.AVISITN > 4) | (bds.USUBJID == "S0026") & post
    return bds[~gone].reset_index(drop=True), adsl
