"""Intercurrent events from the analysis datasets, and the estimand's strategies applied to the records.

The events:

* ``treatment_discontinuation``: ADSL ``EOTSTT = DISCONTINUED`` with ``EOTDT`` and ``DCTREAS`` (a withdrawal
  from the study ends treatment the same day); when the reason is ADVERSE EVENT and the estimand names
  ``ae_withdrawal``, the event is ``ae_withdrawal`` instead (an ADAE with ``AEACN = DRUG WITHDRAWN`` also
  gives one);
* ``prohibited_procedure``: a protocol deviation (DV: ``DVTERM``, ``DVSTDTC``) whose term names a prohibited
  facial procedure.

An event at study day d (day 1 = first session) affects every visit planned after day d. A subject's first
event the estimand names decides what happens to its post-event records:

* hypothetical: they are removed; the MMRM (or the imputation) treats them as missing at random;
* treatment policy: they are kept; missing ones are MAR for the MMRM, or imputed under the event's
  reference-based assumption (then the main estimator is reference-based imputation);
* while on treatment: each post-event visit takes the last value before the event;
* composite: each post-event visit takes an unfavourable value (no improvement, or the worst change seen).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from toolkit.errors import DataError
from toolkit.stats import _checks

__all__ = ["EVENT_WORDS", "Applied", "apply_strategies", "intercurrent_events"]

_SAS_EPOCH = pd.Timestamp("1960-01-01")
#: the events in words
EVENT_WORDS = {
    "treatment_discontinuation": "treatment discontinuation",
    "ae_withdrawal": "withdrawal for an adverse event",
    "prohibited_procedure": "a prohibited facial procedure",
}
#: columns of the intercurrent-event listing
EVENT_COLUMNS = ["USUBJID", "event", "date", "study_day", "reason", "source"]


def _dates(values: pd.Series) -> pd.Series:
    """Dates from SAS date numbers (days since 1960-01-01), ISO strings or timestamps."""
    numeric = pd.to_numeric(values, errors="coerce")
    as_sas = _SAS_EPOCH + pd.to_timedelta(numeric, unit="D")
    parsed = pd.to_datetime(values.where(numeric.isna()), errors="coerce", utc=True).dt.tz_localize(None)
    return as_sas.where(numeric.notna(), parsed).dt.normalize()


def intercurrent_events(
    adsl: pd.DataFrame,
    *,
    adae: pd.DataFrame | None = None,
    deviations: pd.DataFrame | None = None,
    ae_events: bool = True,
    procedure_terms: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Every intercurrent event of every subject, from the subject-level data, AEs and deviations.

    Parameters
    ----------
    adsl : DataFrame
        ADSL with ``USUBJID``, ``TRTSDTC`` (first exposure) and the disposition variables ``EOTSTT``,
        ``EOTDT``, ``DCTREAS`` (``EOSSTT``, ``EOSDT``, ``DCSREAS`` for a withdrawal without its own end of
        treatment).
    adae : DataFrame, optional
        Adverse events; ``AEACN = DRUG WITHDRAWN`` with ``AESTDTC`` gives an ``ae_withdrawal``.
    deviations : DataFrame, optional
        Protocol deviations (SDTM DV: ``USUBJID``, ``DVTERM``, ``DVSTDTC``).
    ae_events : bool
        Classify a discontinuation for ADVERSE EVENT as ``ae_withdrawal`` (else ``treatment_discontinuation``).
    procedure_terms : tuple of str
        Words that mark a prohibited procedure in ``DVTERM`` (case-insensitive); none: no such events.

    Returns
    -------
    DataFrame
        ``USUBJID, event, date, study_day, reason, source``, sorted by subject and day.
    """
    adsl = _checks.require_frame(adsl, what="subject-level dataset (ADSL)")
    _checks.require_columns(adsl, ["USUBJID"], what="subject-level dataset (ADSL)")
    start = _dates(adsl["TRTSDTC"]) if "TRTSDTC" in adsl.columns else pd.Series(pd.NaT, index=adsl.index)
    first_dose = dict(zip(adsl["USUBJID"].astype(str), start, strict=True))
    rows: list[dict[str, Any]] = []

    def add(subject: str, event: str, when: pd.Timestamp, reason: str, source: str) -> None:
        first = first_dose.get(subject, pd.NaT)
        day = (
            float((when - first).days + 1)
            if pd.notna(when) and pd.notna(first)
            else (1.0 if pd.isna(first) else float("nan"))
        )
        rows.append(
            {
                "USUBJID": subject,
                "event": event,
                "date": when,
                "study_day": day,
                "reason": reason,
                "source": source,
            }
        )

    eot = adsl["EOTSTT"].astype(str).str.upper() if "EOTSTT" in adsl.columns else None
    eos = adsl["EOSSTT"].astype(str).str.upper() if "EOSSTT" in adsl.columns else None
    if eot is None and eos is None:
        raise DataError(
            "the subject-level dataset has no disposition (EOTSTT or EOSSTT): intercurrent events cannot be "
            "derived",
            details=["export ADSL from the store (toolkit data export) or add EOTSTT, EOTDT, DCTREAS"],
        )
    for i, row in adsl.reset_index(drop=True).iterrows():
        subject = str(row["USUBJID"])
        stopped = eot is not None and eot.iloc[i] == "DISCONTINUED"
        left = eos is not None and eos.iloc[i] == "DISCONTINUED"
        if not (stopped or left):
            continue
        if stopped and pd.notna(row.get("EOTDT")):
            when, reason, source = row.get("EOTDT"), row.get("DCTREAS"), "ADSL.EOTDT"
        else:
            when, reason, source = row.get("EOSDT"), row.get("DCSREAS"), "ADSL.EOSDT"
        reason = str(reason).upper() if pd.notna(reason) else "NOT GIVEN"
        when = _dates(pd.Series([when])).iloc[0]
        kind = "ae_withdrawal" if ae_events and reason == "ADVERSE EVENT" else "treatment_discontinuation"
        add(subject, kind, when, reason, source)
    if adae is not None and ae_events and {"USUBJID", "AEACN"} <= set(adae.columns):
        withdrawn = adae[adae["AEACN"].astype(str).str.upper() == "DRUG WITHDRAWN"]
        dates = (
            _dates(withdrawn["AESTDTC"])
            if "AESTDTC" in withdrawn.columns
            else pd.Series(pd.NaT, index=withdrawn.index)
        )
        for subject, term, when in zip(
            withdrawn["USUBJID"].astype(str),
            withdrawn.get("AEDECOD", withdrawn.get("AETERM", "")),
            dates,
            strict=True,
        ):
            add(subject, "ae_withdrawal", when, f"ADVERSE EVENT: {term}", "ADAE.AEACN")
    if deviations is not None and procedure_terms and not deviations.empty:
        _checks.require_columns(deviations, ["USUBJID", "DVTERM"], what="protocol deviations (DV)")
        text = deviations["DVTERM"].astype(str).str.lower()
        hit = np.zeros(len(deviations), dtype=bool)
        for term in procedure_terms:
            hit |= text.str.contains(term.lower(), regex=False).to_numpy()
        found = deviations[hit]
        dates = (
            _dates(found["DVSTDTC"]) if "DVSTDTC" in found.columns else pd.Series(pd.NaT, index=found.index)
        )
        for subject, term, when in zip(
            found["USUBJID"].astype(str), found["DVTERM"].astype(str), dates, strict=True
        ):
            add(subject, "prohibited_procedure", when, term, "DV.DVTERM")
    events = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    return events.sort_values(["USUBJID", "study_day"], kind="stable").reset_index(drop=True)


def _visit_days(study: Any, records: pd.DataFrame) -> dict[float, float]:
    """AVISITN -> planned study day of the visit (from the schedule)."""
    out: dict[float, float] = {}
    for v in study.schedule.visits:
        day = v.day if v.day is not None else 1
        out[float(v.number)] = float(day)
    present = pd.to_numeric(records["AVISITN"], errors="coerce").dropna().unique()
    unknown = [n for n in present if float(n) not in out]
    if unknown:
        raise DataError(f"visit number(s) {', '.join(map(str, unknown))} of AVISITN are not in the schedule")
    return out


@dataclass
class Applied:
    """Records after the strategies, the per-record flags and the events that decided them."""

    records: pd.DataFrame
    flags: pd.DataFrame
    events: pd.DataFrame
    #: one row per subject with the subject-level columns
    subjects: pd.DataFrame = field(default_factory=pd.DataFrame)


def apply_strategies(
    records: pd.DataFrame,
    events: pd.DataFrame,
    estimand: Any,
    *,
    study: Any,
    better: str = "lower",
    subjects: pd.DataFrame | None = None,
) -> Applied:
    """Apply the estimand's strategies to the post-event records of one endpoint.

    Parameters
    ----------
    records : DataFrame
        Post-baseline BDS records of one parameter and population (``USUBJID, TRTP, AVISIT, AVISITN, CHG``).
    events : DataFrame
        :func:`intercurrent_events`.
    estimand : toolkit.study.estimands.Estimand
    study : toolkit.study.Study
        For the planned day of each visit.
    better : {'lower', 'higher'}
        Direction of improvement (for the composite's worst value).
    subjects : DataFrame, optional
        One record per subject of the population (e.g. the baseline records) with the subject-level columns
        (``TRTP``, ``BASE``, strata): a subject with an event but no post-baseline record is then listed
        and, under composite or while-on-treatment, given its records.

    Returns
    -------
    Applied
        ``records`` as analysed; ``flags`` with one row per subject and visit (``ICEFL`` = Y after an event,
        ``ICEVENT``, ``STRATEGY``, ``HANDLING``, observed and analysed ``CHG``); ``events`` with the deciding
        event per subject, its first affected visit and strategy.
    """
    _checks.require_columns(records, ["USUBJID", "TRTP", "AVISIT", "AVISITN", "CHG"], what="analysis records")
    records = records.copy()
    records["USUBJID"] = records["USUBJID"].astype(str)
    days = _visit_days(study, records)
    visits = (
        records[["AVISIT", "AVISITN"]]
        .drop_duplicates("AVISITN")
        .sort_values("AVISITN")
        .assign(day=lambda f: f["AVISITN"].astype(float).map(days))
    )
    # subject-level columns, to build a record for a post-event visit that has none (composite, while on
    # treatment)
    visit_level = {"USUBJID", "AVISIT", "AVISITN", "AVAL", "CHG", "PCHG", "ADY", "ABLFL", "visit_id"}
    source = (
        records
        if subjects is None
        else pd.concat([subjects.assign(USUBJID=subjects["USUBJID"].astype(str)), records], ignore_index=True)
    )
    per_subject = source.drop_duplicates("USUBJID").set_index("USUBJID")
    per_subject = per_subject[
        [c for c in per_subject.columns if c not in visit_level and c in records.columns]
    ]
    named = [e.event for e in estimand.intercurrent_events]
    mine = events[events["event"].isin(named) & events["USUBJID"].astype(str).isin(per_subject.index)]
    deciding = mine.sort_values(["USUBJID", "study_day"], kind="stable").drop_duplicates("USUBJID")
    out_rows: list[pd.DataFrame] = []
    flags: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    worst = _worst_change(records, better)
    by_subject = dict(tuple(records.groupby("USUBJID", sort=False)))
    decided = deciding.assign(USUBJID=deciding["USUBJID"].astype(str)).set_index("USUBJID")
    for subject in decided.index.difference(list(by_subject)):  # an event, and no post-baseline record
        by_subject[subject] = (
            pd.DataFrame([{**per_subject.loc[subject].to_dict(), "USUBJID": subject}])
            .iloc[0:0]
            .reindex(columns=records.columns)
        )
    for subject, own in by_subject.items():
        own = own.sort_values("AVISITN")
        if subject not in decided.index:
            out_rows.append(own)
            flags += [_flag(r, None, None, "used", r.CHG) for r in own.itertuples(index=False)]
            continue
        ev = decided.loc[subject]
        arm = per_subject.loc[subject, "TRTP"]
        strategy = estimand.strategy(ev["event"])
        day = ev["study_day"] if pd.notna(ev["study_day"]) else -np.inf
        post_visits = visits[visits["day"] > day]
        first_visit = post_visits["AVISIT"].iloc[0] if len(post_visits) else None
        pre = own[own["AVISITN"].astype(float).map(days) <= day]
        post = own[own["AVISITN"].astype(float).map(days) > day]
        kept = [pre]
        flags += [_flag(r, None, None, "used", r.CHG) for r in pre.itertuples(index=False)]
        how = strategy.strategy
        if how == "hypothetical":
            flags += [
                _flag(r, ev["event"], how, "removed: hypothetical strategy", np.nan)
                for r in post.itertuples(index=False)
            ]
        elif how == "treatment_policy":
            kept.append(post)
            flags += [
                _flag(r, ev["event"], how, "used: treatment policy", r.CHG)
                for r in post.itertuples(index=False)
            ]
        if how in ("hypothetical", "treatment_policy"):
            seen = set(post["AVISITN"].astype(float))
            assumption = strategy.assumption if how == "treatment_policy" else "MAR"
            for vis in post_visits.itertuples(index=False):
                if float(vis.AVISITN) not in seen:
                    flags.append(
                        {
                            "USUBJID": subject,
                            "TRTP": arm,
                            "AVISIT": vis.AVISIT,
                            "AVISITN": float(vis.AVISITN),
                            "CHG_OBSERVED": np.nan,
                            "CHG_ANALYSED": np.nan,
                            "ICEFL": "Y",
                            "ICEVENT": ev["event"],
                            "STRATEGY": how,
                            "HANDLING": f"missing after the event: {assumption}",
                        }
                    )
        else:
            last = pre.dropna(subset=["CHG"])
            for vis in post_visits.itertuples(index=False):
                if how == "while_on_treatment":
                    value = float(last["CHG"].iloc[-1]) if len(last) else np.nan
                    handling = (
                        "replaced: last value on treatment" if len(last) else "removed: no value on treatment"
                    )
                elif strategy.value == "worst":
                    value, handling = (
                        worst.get(float(vis.AVISITN), np.nan),
                        "replaced: worst change observed (composite)",
                    )
                else:
                    value, handling = 0.0, "replaced: no improvement (composite)"
                existing = post[post["AVISITN"].astype(float) == float(vis.AVISITN)]
                if len(existing):
                    row = existing.iloc[[0]].copy()
                else:
                    row = pd.DataFrame(
                        [
                            {
                                **per_subject.loc[subject].to_dict(),
                                "USUBJID": subject,
                                "AVISIT": vis.AVISIT,
                                "AVISITN": vis.AVISITN,
                            }
                        ]
                    )
                    handling = handling.replace("replaced", "added")
                observed = (
                    float(row["CHG"].iloc[0]) if "CHG" in row and pd.notna(row["CHG"].iloc[0]) else np.nan
                )
                row["CHG"] = value
                if "AVAL" in row.columns and "BASE" in row.columns:
                    row["AVAL"] = pd.to_numeric(row["BASE"], errors="coerce") + value
                kept.append(row.dropna(subset=["CHG"]))
                flags.append(
                    {
                        "USUBJID": subject,
                        "TRTP": row["TRTP"].iloc[0],
                        "AVISIT": vis.AVISIT,
                        "AVISITN": float(vis.AVISITN),
                        "CHG_OBSERVED": observed,
                        "CHG_ANALYSED": value,
                        "ICEFL": "Y",
                        "ICEVENT": ev["event"],
                        "STRATEGY": how,
                        "HANDLING": handling,
                    }
                )
        out_rows.append(pd.concat(kept, ignore_index=True))
        event_rows.append(
            {
                "USUBJID": subject,
                "TRTP": arm,
                "event": ev["event"],
                "date": ev["date"].date().isoformat() if pd.notna(ev["date"]) else "",
                "study_day": ev["study_day"],
                "reason": ev["reason"],
                "source": ev["source"],
                "first_visit_affected": first_visit or "none (after the last visit)",
                "strategy": how,
                "post_event_records": int(len(post)),
                "missing_after_event": int(len(post_visits) - len(post)),
            }
        )
    analysed = pd.concat(out_rows, ignore_index=True) if out_rows else records.iloc[0:0]
    flag_frame = pd.DataFrame(
        flags,
        columns=[
            "USUBJID",
            "TRTP",
            "AVISIT",
            "AVISITN",
            "CHG_OBSERVED",
            "CHG_ANALYSED",
            "ICEFL",
            "ICEVENT",
            "STRATEGY",
            "HANDLING",
        ],
    )
    flag_frame = flag_frame.sort_values(["USUBJID", "AVISITN"], kind="stable").reset_index(drop=True)
    return Applied(
        analysed,
        flag_frame,
        pd.DataFrame(
            event_rows,
            columns=[
                "USUBJID",
                "TRTP",
                "event",
                "date",
                "study_day",
                "reason",
                "source",
                "first_visit_affected",
                "strategy",
                "post_event_records",
                "missing_after_event",
            ],
        ),
        per_subject.reset_index(),
    )


def _flag(
    row: Any, event: str | None, strategy: str | None, handling: str, analysed: float
) -> dict[str, Any]:
    return {
        "USUBJID": row.USUBJID,
        "TRTP": row.TRTP,
        "AVISIT": row.AVISIT,
        "AVISITN": float(row.AVISITN),
        "CHG_OBSERVED": row.CHG,
        "CHG_ANALYSED": analysed,
        "ICEFL": "Y" if event else "",
        "ICEVENT": event or "",
        "STRATEGY": strategy or "",
        "HANDLING": handling,
    }


def _worst_change(records: pd.DataFrame, better: str) -> dict[float, float]:
    """Per visit number: the least favourable change observed."""
    chg = pd.to_numeric(records["CHG"], errors="coerce")
    grouped = chg.groupby(pd.to_numeric(records["AVISITN"], errors="coerce"))
    worst = grouped.max() if better == "lower" else grouped.min()
    return {float(k): float(v) for k, v in worst.items()}
