"""ADaM-like analysis datasets: ADSL (one record per subject) and ADEFF, the efficacy BDS dataset.

ADEFF has one parameter per efficacy endpoint of the study:

* a photo endpoint's ``AVAL`` at a visit is the mean, over that visit's photos, of the endpoint's metric
  in its region(s) (several regions are first combined per photo by the endpoint's ``combine``, mean or
  sum; a sum needs every region);
* a scale endpoint's ``AVAL`` is the visit's score (the mean when several assessors scored; the rating
  station's blind re-ratings, kept for intra-rater agreement, are left out).

``BASE`` is the value at the baseline visit (flagged ``ABLFL = "Y"``); ``CHG = AVAL − BASE`` and
``PCHG = 100 · CHG / BASE`` on later visits. In split-face studies each subject has one record per side
(``SIDE``): the endpoint's regions are mirrored to the other side and ``TRTP`` is the arm given on that side.

Populations: ITT = randomised; SAFETY = at least one delivery session that ended (completed, aborted or with
output state unknown); PP = ITT and SAFETY without a major protocol deviation and not withdrawn.
"""

from __future__ import annotations

import pandas as pd

from toolkit.store.datasets import Dataset, StudyRecords, Variable
from toolkit.store.study_view import EndpointInfo

__all__ = ["adeff_dataset", "adsl_dataset", "endpoint_values"]

_YN = "Y; N"
_SIDES = {"left": "_l", "right": "_r"}


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


def _mirror(regions: tuple[str, ...], side: str) -> list[str]:
    suffix = _SIDES[side]
    return [r[:-2] + suffix if r.endswith(("_l", "_r")) else r for r in regions]


def _arm_number(rec: StudyRecords, arm_id: str | None) -> float | None:
    if arm_id is None:
        return None
    if rec.blinded:
        code = rec.codes.get(arm_id)
        return float(ord(code[0]) - ord("A") + 1) if code else None
    ids = [a.id for a in rec.info.arms] or sorted(rec.codes)
    return float(ids.index(arm_id) + 1) if arm_id in ids else None


def _actual_arms(rec: StudyRecords) -> dict[tuple[str, str | None], str]:
    """(subject, side) -> the arm most often delivered in sessions that ended."""
    d = rec.deliveries
    if d.empty:
        return {}
    d = d[d["status"] != "in_progress"]
    out: dict[tuple[str, str | None], str] = {}
    for (sid, side), grp in d.groupby(["subject_id", d["side"].fillna("")], sort=False):
        out[(sid, side or None)] = grp["arm_id"].mode().iloc[0]
    return out


def completed_sessions(rec: StudyRecords) -> dict[str, int]:
    """Subject -> number of sessions completed (in a split-face study, completed on every side treated)."""
    d = rec.deliveries
    if d.empty:
        return {}
    d = d[d["status"] != "in_progress"]
    per_session = d.groupby(["subject_id", "session_number"])["status"].agg(lambda x: bool((x == "completed").all()))
    return {str(k): int(v) for k, v in per_session.groupby(level=0).sum().items()}


def _photo_visits(rec: StudyRecords) -> set[tuple[str, str]]:
    """(subject, visit) pairs with at least one measured photo that passed QC."""
    meas = rec.passed_qc(rec.measurements)
    if meas.empty:
        return set()
    return set(zip(meas["subject_id"].astype(str), meas["visit_id"].astype(str), strict=True))


def per_protocol_rule_text(rule: dict | None) -> str:
    """The per-protocol rule in words (for the variable's derivation)."""
    if not rule:
        return "Derived: ITT, SAFETY, no major deviation, not withdrawn"
    parts = ["ITT"]
    if rule.get("min_sessions"):
        parts.append(f">= {rule['min_sessions']} completed sessions")
    if rule.get("photos_at"):
        parts.append("photo measured and passing QC at " + ", ".join(rule["photos_at"]))
    if rule.get("no_major_deviation"):
        parts.append("no major deviation")
    return "Derived (study.yaml PP rule): " + ", ".join(parts)


def _flags(rec: StudyRecords) -> pd.DataFrame:
    subj = rec.subjects
    treated = rec.treated_subjects()
    major = rec.major_deviation_subjects()
    itt = subj["rand_no"].notna()
    saf = subj["subject_id"].isin(treated)
    withdrawn = subj["withdrawn_on"].notna()
    rule = rec.info.per_protocol
    if rule:  # the analysis plan's own definition
        done = completed_sessions(rec)
        photos = _photo_visits(rec)
        pp = itt.copy()
        for k, sid in enumerate(subj["subject_id"].astype(str)):
            ok = bool(itt.iloc[k])
            if rule.get("min_sessions"):
                ok &= done.get(sid, 0) >= int(rule["min_sessions"])
            ok &= all((sid, v) in photos for v in rule.get("photos_at") or ())
            if rule.get("no_major_deviation"):
                ok &= sid not in major
            pp.iloc[k] = ok
    else:
        pp = itt & saf & ~subj["subject_id"].isin(major) & ~withdrawn
    return pd.DataFrame(
        {
            "subject_id": subj["subject_id"],
            "ITTFL": [_yn(x) for x in itt],
            "SAFFL": [_yn(x) for x in saf],
            "PPROTFL": [_yn(x) for x in pp],
            "RANDFL": [_yn(x) for x in itt],
        }
    )


def _strata_columns(rec: StudyRecords) -> tuple[pd.DataFrame, list[Variable]]:
    names = rec.strata_variables()
    subj = rec.subjects
    data = {"subject_id": subj["subject_id"]}
    variables = []
    for factor, var in names.items():
        data[var] = [s.get(factor) if isinstance(s, dict) else None for s in subj["strata"]]
        levels = rec.info.strata_levels.get(factor, ())
        variables.append(
            Variable(
                var,
                f"Stratum: {factor}"[:40],
                codelist="; ".join(levels),
                origin="CRF (randomisation strata)",
            )
        )
    return pd.DataFrame(data), variables


#: SAS dates count days from 1960-01-01
_SAS_EPOCH = pd.Timestamp("1960-01-01")


def sas_date(value: object) -> float | None:
    """A date (or date-time) as a SAS date number (days since 1960-01-01), ``None`` when missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return float((pd.Timestamp(value).normalize().tz_localize(None) - _SAS_EPOCH).days)


def disposition(rec: StudyRecords) -> pd.DataFrame:
    """Per subject: sessions planned and completed, compliance, treatment duration, end-of-treatment and
    end-of-study status with date and reason.

    Columns ``subject_id``, ``NSESSPL``, ``CSESS``, ``COMPLPCT``, ``TRTDURD``, ``EOTSTT``, ``EOSSTT``,
    ``EOSDT``, ``DCSREAS``. Treatment is COMPLETED when every planned session was completed, DISCONTINUED
    when the subject left the study before that, else ONGOING; the study is COMPLETED when the last scheduled
    visit has a photo or a rating, DISCONTINUED when the subject withdrew.
    """
    subj = rec.subjects
    planned = rec.info.sessions_planned
    done = completed_sessions(rec)
    d = rec.deliveries
    ended = d[d["status"] != "in_progress"] if not d.empty else d
    last_visit = max(rec.info.visits, key=lambda v: v.number).id if rec.info.visits else None
    seen = _photo_visits(rec)
    if not rec.assessments.empty:
        seen |= set(zip(rec.assessments["subject_id"].astype(str), rec.assessments["visit_id"].astype(str),
                        strict=True))
    rows = []
    for s in subj.itertuples(index=False):
        sid = str(s.subject_id)
        mine = ended[ended["subject_id"] == s.subject_id] if not ended.empty else ended
        n_done = done.get(sid, 0)
        left = rec.disposition_event(sid, "study")
        stopped = rec.disposition_event(sid, "treatment")
        withdrawn = left is not None or (s.withdrawn_on is not None and not pd.isna(s.withdrawn_on))
        if planned and n_done >= planned:
            eot = "COMPLETED"
        elif stopped is not None or withdrawn:
            eot = "DISCONTINUED"
        else:
            eot = "ONGOING" if pd.notna(s.rand_no) else None
        if withdrawn:
            eos = "DISCONTINUED"
        elif last_visit and (sid, last_visit) in seen:
            eos = "COMPLETED"
        else:
            eos = "ONGOING"
        duration = None
        if not mine.empty and mine["ended_at"].notna().any():
            first = pd.Timestamp(mine["started_at"].min()).normalize()
            last = pd.Timestamp(mine["ended_at"].max()).normalize()
            duration = float((last - first).days + 1)
        rows.append({
            "subject_id": s.subject_id,
            "NSESSPL": float(planned) if planned else None,
            "CSESS": float(n_done),
            "COMPLPCT": round(100.0 * n_done / planned, 1) if planned else None,
            "TRTDURD": duration,
            "EOTSTT": eot,
            "EOSSTT": eos,
            "EOTDT": sas_date(stopped["on"]) if stopped is not None and eot == "DISCONTINUED" else None,
            "DCTREAS": stopped["reason"] if stopped is not None and eot == "DISCONTINUED" else None,
            "EOSDT": sas_date(left["on"] if left is not None else s.withdrawn_on) if withdrawn else None,
            "DCSREAS": (left["reason"] if left is not None else "OTHER") if withdrawn else None,
            "DCSREASP": left["detail"] if left is not None else None,
        })
    return pd.DataFrame(rows, columns=["subject_id", "NSESSPL", "CSESS", "COMPLPCT", "TRTDURD", "EOTSTT",
                                       "EOTDT", "DCTREAS", "EOSSTT", "EOSDT", "DCSREAS", "DCSREASP"])


#: ADSL variables of :func:`disposition`
DISPOSITION_VARIABLES = [
    Variable("NSESSPL", "Number of Sessions Planned", "Num", origin="Protocol: schedule.sessions"),
    Variable("CSESS", "Number of Sessions Completed", "Num", origin="Derived: completed delivery records"),
    Variable("COMPLPCT", "Compliance (%): Completed / Planned", "Num", origin="Derived: 100 * CSESS / NSESSPL"),
    Variable("TRTDURD", "Treatment Duration (days)", "Num", origin="Derived: last end - first start + 1"),
    Variable("EOTSTT", "End of Treatment Status", codelist="COMPLETED; DISCONTINUED; ONGOING",
             origin="Derived: sessions completed vs planned, withdrawal"),
    Variable("EOTDT", "End of Treatment Date (discontinued)", "Num", origin="CRF: treatment discontinuation",
             format="DATE9"),
    Variable("DCTREAS", "Reason for Discontinuation of Treatment", codelist="NCOMPLT",
             origin="CRF: treatment discontinuation"),
    Variable("EOSSTT", "End of Study Status", codelist="COMPLETED; DISCONTINUED; ONGOING",
             origin="Derived: withdrawal, last visit reached"),
    Variable("EOSDT", "End of Study Date", "Num", origin="CRF: withdrawal date", format="DATE9"),
    Variable("DCSREAS", "Reason for Discontinuation from Study", codelist="NCOMPLT",
             origin="CRF: withdrawal reason"),
    Variable("DCSREASP", "Reason Spec for Discont from Study", origin="CRF: withdrawal detail"),
]


def adsl_dataset(rec: StudyRecords) -> Dataset:
    """ADSL: subject-level analysis dataset."""
    subj = rec.subjects
    actual = _actual_arms(rec)
    d = rec.deliveries
    done = d[d["status"] != "in_progress"] if not d.empty else d
    rows = []
    for s in subj.itertuples(index=False):
        side_map = s.side_map if isinstance(s.side_map, dict) else None
        if side_map:
            planned = rec.sequence_label(side_map)
            act = rec.sequence_label({k: actual.get((s.subject_id, k)) for k in side_map}) or None
            pn = an = None
        else:
            planned = rec.treatment(s.arm_id) if isinstance(s.arm_id, str) else None
            act_id = actual.get((s.subject_id, None))
            act = rec.treatment(act_id) if act_id else None
            pn = _arm_number(rec, s.arm_id) if isinstance(s.arm_id, str) else None
            an = _arm_number(rec, act_id)
        mine = done[done["subject_id"] == s.subject_id] if not done.empty else done
        rows.append(
            {
                "subject_id": s.subject_id,
                "STUDYID": rec.study_id,
                "USUBJID": rec.usubjid(s.subject_id),
                "SUBJID": s.subject_id,
                "SITEID": s.site,
                "AGE": s.age,
                "AGEU": "YEARS",
                "SEX": s.sex,
                "RACE": s.race,
                "FITZTYPE": s.fitzpatrick,
                "RANDNO": s.rand_no,
                "TRT01P": planned,
                "TRT01PN": pn,
                "TRT01A": act,
                "TRT01AN": an,
                "NSESS": int(mine["session_number"].nunique()) if not mine.empty else 0,
                "TRTSDTC": mine["started_at"].min().strftime("%Y-%m-%dT%H:%M:%S") if not mine.empty else None,
                "TRTEDTC": mine["ended_at"].max().strftime("%Y-%m-%dT%H:%M:%S")
                if not mine.empty and mine["ended_at"].notna().any()
                else None,
            }
        )
    frame = pd.DataFrame(rows)
    strata, strata_vars = _strata_columns(rec)
    if not frame.empty:
        frame = frame.merge(strata, on="subject_id", how="left").merge(
            _flags(rec), on="subject_id", how="left"
        ).merge(disposition(rec), on="subject_id", how="left")
    variables = [
        Variable("STUDYID", "Study Identifier", origin="Assigned"),
        Variable("USUBJID", "Unique Subject Identifier", origin="Derived"),
        Variable("SUBJID", "Subject Identifier for the Study", origin="CRF"),
        Variable("SITEID", "Study Site Identifier", origin="CRF"),
        Variable("AGE", "Age", "Num", origin="CRF"),
        Variable("AGEU", "Age Units", codelist="YEARS", origin="Assigned"),
        Variable("SEX", "Sex", codelist="F; M; U", origin="CRF"),
        Variable("RACE", "Race", origin="CRF"),
        Variable("FITZTYPE", "Fitzpatrick Skin Type", codelist="I; II; III; IV; V; VI", origin="CRF"),
        Variable("RANDNO", "Randomization Number", "Num", origin="Allocation list"),
        Variable(
            "TRT01P",
            "Planned Treatment for Period 01",
            codelist=rec.subject_treatment_codelist(),
            origin="Allocation list",
        ),
        Variable("TRT01PN", "Planned Treatment for Period 01 (N)", "Num", origin="Derived"),
        Variable("TRT01A", "Actual Treatment for Period 01", codelist=rec.subject_treatment_codelist(),
                 origin="Derived: delivery records"),
        Variable("TRT01AN", "Actual Treatment for Period 01 (N)", "Num", origin="Derived"),
        Variable("NSESS", "Number of Sessions Delivered", "Num", origin="Derived: delivery records"),
        Variable("TRTSDTC", "Date/Time of First Exposure", origin="Derived: delivery records"),
        Variable("TRTEDTC", "Date/Time of Last Exposure", origin="Derived: delivery records"),
        *DISPOSITION_VARIABLES,
        *strata_vars,
        Variable("RANDFL", "Randomized Population Flag", codelist=_YN, origin="Derived: allocated"),
        Variable("ITTFL", "Intent-To-Treat Population Flag", codelist=_YN, origin="Derived: randomised"),
        Variable("SAFFL", "Safety Population Flag", codelist=_YN, origin="Derived: >= 1 session delivered"),
        Variable(
            "PPROTFL",
            "Per-Protocol Population Flag",
            codelist=_YN,
            origin=per_protocol_rule_text(rec.info.per_protocol),
        ),
    ]
    return Dataset("ADSL", "Subject-Level Analysis Dataset", frame, variables)


#: photo metrics measured relative to the subject's baseline photo (their baseline value is 0)
RELATIVE_METRICS = ("lift_mm", "displacement_mm")


def endpoint_values(rec: StudyRecords, endpoint: EndpointInfo) -> pd.DataFrame:
    """Per subject, side and visit: ``AVAL`` of one endpoint (columns subject_id, side, visit_id, AVAL)."""
    split = rec.info.design == "split-face"
    sides = list(_SIDES) if split else [None]
    parts = []
    if endpoint.kind == "photo":
        meas = rec.passed_qc(rec.metric_values(endpoint.metric))  # a photo that failed QC gives no value
        if meas.empty:
            return pd.DataFrame(columns=["subject_id", "side", "visit_id", "AVAL"])
        for side in sides:
            regions = _mirror(endpoint.regions, side) if side else list(endpoint.regions)
            if not regions:
                continue
            sub = meas[meas["region"].isin(regions)]
            if sub.empty:
                continue
            per_photo = sub.groupby(["subject_id", "visit_id", "photo_id"])["value"]
            if endpoint.combine == "sum":
                # a sum over regions is only meaningful when every region was measured on the photo
                counts = per_photo.count()
                photo_value = per_photo.sum(min_count=1).where(counts == len(regions))
            else:
                photo_value = per_photo.mean()
            visit_value = photo_value.groupby(["subject_id", "visit_id"]).mean().rename("AVAL").reset_index()
            visit_value["side"] = side
            parts.append(visit_value)
    elif endpoint.kind == "scale":
        ass = rec.assessments
        if ass.empty:
            return pd.DataFrame(columns=["subject_id", "side", "visit_id", "AVAL"])
        ass = ass[ass["scale"] == endpoint.metric]
        if "repeat" in ass:  # a blind re-rating measures the rater, not the subject: it stays out of efficacy
            ass = ass[ass["repeat"].fillna(0) != 1]
        for side in sides:
            sub = ass[ass["side"] == side] if side else ass
            if sub.empty:
                continue
            v = sub.groupby(["subject_id", "visit_id"])["score"].mean().rename("AVAL").reset_index()
            v["side"] = side
            parts.append(v)
    if not parts:
        return pd.DataFrame(columns=["subject_id", "side", "visit_id", "AVAL"])
    out = pd.concat(parts, ignore_index=True)
    if endpoint.visits:
        out = out[out["visit_id"].isin(endpoint.visits)]
    return out[["subject_id", "side", "visit_id", "AVAL"]]


def adeff_dataset(rec: StudyRecords) -> Dataset:
    """ADEFF: efficacy BDS dataset, one record per subject, side, parameter and visit."""
    visits = {v.id: v for v in rec.info.visits}
    baseline = rec.info.baseline_visit
    subj = rec.subjects.set_index("subject_id")
    actual = _actual_arms(rec)
    frames = []
    for ep in rec.info.endpoints:
        if ep.kind not in ("photo", "scale"):
            continue
        values = endpoint_values(rec, ep)
        if values.empty:
            continue
        values = values.copy()
        values["PARAMCD"] = ep.code
        values["PARAM"] = ep.label[:40]
        values["PARCAT1"] = "PHOTO METRIC" if ep.kind == "photo" else "CLINICIAN SCALE"
        frames.append(values)
    if frames:
        frame = pd.concat(frames, ignore_index=True)
    else:
        frame = pd.DataFrame(
            columns=["subject_id", "side", "visit_id", "AVAL", "PARAMCD", "PARAM", "PARCAT1"]
        )
    frame["AVISIT"] = [visits[v].name if v in visits else v for v in frame["visit_id"]]
    frame["AVISITN"] = [float(visits[v].number) if v in visits else None for v in frame["visit_id"]]
    frame["ADY"] = [
        float(visits[v].day) if v in visits and visits[v].day is not None else None for v in frame["visit_id"]
    ]
    # baseline and change from baseline, within subject, side and parameter
    key = ["subject_id", "side_key", "PARAMCD"]
    frame["side_key"] = frame["side"].fillna("")
    is_base = frame["visit_id"] == (baseline.id if baseline else None)
    # lift and displacement are measured against the baseline photo itself: zero there by definition
    relative = frame["PARAMCD"].isin(
        [e.code for e in rec.info.endpoints if e.kind == "photo" and e.metric in RELATIVE_METRICS]
    )
    frame.loc[relative & is_base, "AVAL"] = frame.loc[relative & is_base, "AVAL"].fillna(0.0)
    base = frame.loc[is_base, [*key, "AVAL"]].rename(columns={"AVAL": "BASE"})
    frame = frame.merge(base, on=key, how="left")
    frame["ABLFL"] = [
        ("Y" if b else None) for b in (frame["visit_id"] == (baseline.id if baseline else None))
    ]
    after = frame["AVISITN"] > (float(baseline.number) if baseline else float("inf"))
    frame["CHG"] = (frame["AVAL"] - frame["BASE"]).where(after)
    frame["PCHG"] = (100.0 * frame["CHG"] / frame["BASE"]).where(after & (frame["BASE"] != 0))
    # treatment per record
    trtp, trtpn, trta = [], [], []
    for sid, side in zip(frame["subject_id"], frame["side"], strict=True):
        row = subj.loc[sid] if sid in subj.index else None
        arm = None
        if row is not None:
            side_map = row["side_map"] if isinstance(row["side_map"], dict) else None
            arm = (
                side_map.get(side)
                if side_map and side
                else (row["arm_id"] if isinstance(row["arm_id"], str) else None)
            )
        trtp.append(rec.treatment(arm))
        trtpn.append(_arm_number(rec, arm))
        act = actual.get((sid, side if side else None))
        trta.append(rec.treatment(act))
    frame["TRTP"], frame["TRTPN"], frame["TRTA"] = trtp, trtpn, trta
    frame["SIDE"] = [s.upper() if isinstance(s, str) else None for s in frame["side"]]
    frame["STUDYID"] = rec.study_id
    frame["USUBJID"] = [rec.usubjid(s) for s in frame["subject_id"]]
    demo = rec.subjects[["subject_id", "site", "age", "sex", "fitzpatrick"]].rename(
        columns={"site": "SITEID", "age": "AGE", "sex": "SEX", "fitzpatrick": "FITZTYPE"}
    )
    strata, strata_vars = _strata_columns(rec)
    frame = frame.merge(demo, on="subject_id", how="left").merge(strata, on="subject_id", how="left")
    frame = frame.merge(_flags(rec)[["subject_id", "ITTFL", "SAFFL", "PPROTFL"]], on="subject_id", how="left")
    frame = frame.sort_values(["USUBJID", "PARAMCD", "side_key", "AVISITN"], kind="stable").reset_index(
        drop=True
    )
    variables = [
        Variable("STUDYID", "Study Identifier", origin="Assigned"),
        Variable("USUBJID", "Unique Subject Identifier", origin="ADSL.USUBJID"),
        Variable("SITEID", "Study Site Identifier", origin="ADSL.SITEID"),
        Variable(
            "SIDE", "Treated Side (split-face)", codelist="LEFT; RIGHT", origin="Derived: allocation side map"
        ),
        Variable("TRTP", "Planned Treatment", codelist=rec.treatment_codelist(), origin="Allocation list"),
        Variable("TRTPN", "Planned Treatment (N)", "Num", origin="Derived"),
        Variable(
            "TRTA", "Actual Treatment", codelist=rec.treatment_codelist(), origin="Derived: delivery records"
        ),
        Variable(
            "PARAMCD",
            "Parameter Code",
            codelist="; ".join(e.code for e in rec.info.endpoints),
            origin="Study endpoints",
        ),
        Variable("PARAM", "Parameter", origin="Study endpoints"),
        Variable(
            "PARCAT1",
            "Parameter Category 1",
            codelist="PHOTO METRIC; CLINICIAN SCALE",
            origin="Study endpoints",
        ),
        Variable("AVISIT", "Analysis Visit", origin="Study schedule"),
        Variable("AVISITN", "Analysis Visit (N)", "Num", origin="Study schedule"),
        Variable("ADY", "Analysis Relative Day", "Num", origin="Study schedule"),
        Variable("AVAL", "Analysis Value", "Num", origin="Derived: visit mean of photo metric or score"),
        Variable("BASE", "Baseline Value", "Num", origin="Derived: AVAL at baseline visit"),
        Variable("CHG", "Change from Baseline", "Num", origin="Derived: AVAL - BASE"),
        Variable("PCHG", "Percent Change from Baseline", "Num", origin="Derived: 100 * CHG / BASE"),
        Variable("ABLFL", "Baseline Record Flag", codelist="Y", origin="Derived"),
        Variable("ITTFL", "Intent-To-Treat Population Flag", codelist=_YN, origin="ADSL.ITTFL"),
        Variable("SAFFL", "Safety Population Flag", codelist=_YN, origin="ADSL.SAFFL"),
        Variable("PPROTFL", "Per-Protocol Population Flag", codelist=_YN, origin="ADSL.PPROTFL"),
        Variable("AGE", "Age", "Num", origin="ADSL.AGE"),
        Variable("SEX", "Sex", codelist="F; M; U", origin="ADSL.SEX"),
        Variable("FITZTYPE", "Fitzpatrick Skin Type", origin="ADSL.FITZTYPE"),
        *strata_vars,
    ]
    return Dataset("ADEFF", "Efficacy Analysis Dataset (BDS)", frame, variables)
