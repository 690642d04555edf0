"""ADTTE: time to first visible improvement of the primary endpoint, counted in sessions.

One record per analysis unit: the subject in a parallel study, the subject's side (``SIDE``) in a split-face
study, where each side received its own arm. ``AVAL`` is the session after which improvement was first seen
(an event) or the last assessed session (censored, ``CNSR = 1``); ``AVALU`` is ``SESSIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from toolkit.errors import DataError
from toolkit.stats.survival import TimeToImprovementResult, improvement_records, time_to_improvement

__all__ = ["ADTTE_LABELS", "TimeToImprovementDataset", "time_to_improvement_dataset"]

#: variable labels of ADTTE (≤ 40 characters, SAS XPORT v5)
ADTTE_LABELS = {
    "STUDYID": "Study Identifier",
    "USUBJID": "Unique Subject Identifier",
    "SIDE": "Treated Side of the Face",
    "TRT01A": "Actual Treatment for Period 01",
    "PARAMCD": "Parameter Code",
    "PARAM": "Parameter",
    "AVAL": "Analysis Value",
    "AVALU": "Analysis Value Unit",
    "CNSR": "Censor (0 event, 1 censored)",
    "EVNTDESC": "Event or Censoring Description",
}


@dataclass
class TimeToImprovementDataset:
    """ADTTE and the Kaplan–Meier summary it came from."""

    adtte: pd.DataFrame
    result: TimeToImprovementResult
    threshold_pct: float
    #: the study's title (for define.xml)
    title: str = ""


def time_to_improvement_dataset(study: Any, bds: pd.DataFrame, *, threshold_pct: float = 10.0
                                ) -> TimeToImprovementDataset:
    """Derive ADTTE for the study's primary endpoint: improvement = a change of ``threshold_pct`` % or more
    in the endpoint's better direction, at a visit taken after a session.

    Parameters
    ----------
    study : toolkit.study.Study
    bds : DataFrame
        The efficacy BDS dataset (``USUBJID``, ``TRTP``, ``PARAMCD``, ``AVISIT``, ``PCHG``; ``SIDE`` in
        split-face studies).
    threshold_pct : float
        Percent change that counts as visible improvement.

    Returns
    -------
    TimeToImprovementDataset
    """
    primary = study.primary_endpoint
    sessions = {v.name: int(v.after_session) for v in study.visits if getattr(v, "after_session", None)}
    if not sessions:
        raise DataError(f"study {study.id}: no visit is taken after a session; time to improvement needs one")
    data = bds
    split = "SIDE" in bds.columns and bds["SIDE"].notna().any()
    if split:  # each side is its own unit: it received one arm; the two sides of a face are a pair
        data = bds.assign(USUBJID=bds["USUBJID"].astype(str) + "/" + bds["SIDE"].astype(str))
    direction = "decrease" if getattr(primary, "better", "lower") == "lower" else "increase"
    records = improvement_records(data, paramcd=primary.code, threshold=threshold_pct, sessions=sessions,
                                  direction=direction)
    if split:
        records["PAIR"] = records["USUBJID"].str.split("/").str[0]
    result = time_to_improvement(records, subject="USUBJID", treatment="TRTP", session="session",
                                 responder="responder", pair="PAIR" if split else None)
    names = {a.id: a.name for a in study.arms}
    first = result.first_improvement
    unit = first["USUBJID"].astype(str)
    sign = "-" if direction == "decrease" else "+"
    adtte = pd.DataFrame({
        "STUDYID": str(study.id),
        "USUBJID": unit.str.split("/").str[0] if split else unit,
        **({"SIDE": unit.str.split("/").str[1].str.upper()} if split else {}),
        "TRT01A": first["treatment"].map(lambda a: names.get(a, a)),
        "PARAMCD": "TTIMPR",
        "PARAM": f"Sessions to improvement ({primary.code} {sign}{threshold_pct:g}%)",
        "AVAL": pd.to_numeric(first["session"]).astype(float),
        "AVALU": "SESSIONS",
        "CNSR": (~first["event"].astype(bool)).astype(float),
    })
    adtte["EVNTDESC"] = ["IMPROVEMENT SEEN" if c == 0 else "LAST ASSESSED SESSION" for c in adtte["CNSR"]]
    return TimeToImprovementDataset(adtte=adtte, result=result, threshold_pct=threshold_pct,
                                    title=str(getattr(study, "title", "") or ""))


#: ADTTE variable origins (for define.xml)
_ORIGINS = {
    "STUDYID": "Assigned", "USUBJID": "ADSL.USUBJID", "SIDE": "Derived: side of the face treated",
    "TRT01A": "ADSL.TRT01A", "PARAMCD": "Assigned", "PARAM": "Assigned",
    "AVAL": "Derived: first session after which the primary endpoint improved by the threshold, else the last "
            "assessed session", "AVALU": "Assigned", "CNSR": "Derived: 0 improvement seen, 1 censored",
    "EVNTDESC": "Derived: event or censoring",
}


def adtte_metadata(ds: TimeToImprovementDataset):
    """ADTTE as a :class:`toolkit.store.datasets.Dataset` (values and variable metadata)."""
    from toolkit.store.datasets import Dataset, Variable

    numeric = ("AVAL", "CNSR")
    variables = [Variable(c, ADTTE_LABELS[c], "Num" if c in numeric else "Char",
                          "0 = EVENT; 1 = CENSORED" if c == "CNSR" else "", _ORIGINS[c]) for c in ds.adtte.columns]
    return Dataset("ADTTE", "Time to Event Analysis Dataset", ds.adtte.copy(), variables)


def write_time_to_improvement(ds: TimeToImprovementDataset, analysis_dir: Any, results_dir: Any) -> list[Any]:
    """Write ``adtte.csv`` and ``adtte.xpt`` (SAS XPORT v5) to ``analysis_dir`` and the Kaplan–Meier medians
    and log-rank test to ``results_dir``; return the paths written."""
    from pathlib import Path

    from toolkit.store.define_xml import METADATA_CSV, add_to_metadata, publish_metadata
    from toolkit.store.xpt import write_xpt

    analysis_dir, results_dir = Path(analysis_dir), Path(results_dir)
    analysis_dir.mkdir(parents=True, exist_ok=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    labels = {c: ADTTE_LABELS[c] for c in ds.adtte.columns}
    xpt = write_xpt(ds.adtte, analysis_dir / "adtte.xpt", name="ADTTE", label="Time to Event Analysis Dataset",
                    labels=labels)
    written = [xpt]
    if (analysis_dir / METADATA_CSV).is_file():  # describe ADTTE with the exported datasets in define.xml
        add_to_metadata(analysis_dir, adtte_metadata(ds))
        written += publish_metadata(analysis_dir, study_id=str(ds.adtte["STUDYID"].iloc[0]) if len(ds.adtte) else
                                    "study", title=ds.title)
    csv = analysis_dir / "adtte.csv"
    ds.adtte.to_csv(csv, index=False)
    medians = results_dir / "time_to_improvement_medians.csv"
    ds.result.medians.to_csv(medians, index=False)
    logrank = results_dir / "time_to_improvement_logrank.csv"
    ds.result.logrank.to_csv(logrank, index=False)
    return [*written, csv, medians, logrank]
