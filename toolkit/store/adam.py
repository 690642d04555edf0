"""ADaM-like analysis datasets: ADSL (one record per subject) and ADEFF, the efficacy BDS dataset.

ADEFF has one parameter per efficacy endpoint of the study:

* a photo endpoint's ``AVAL`` at a visit is the mean, over that visit's photos, of the endpoint's metric
  in its region(s) (several regions are first combined per photo by the endpoint's ``combine``, mean or
  sum; a sum needs every region);
* a scale endpoint's ``AVAL`` is the visit's score (the mean when several assessors scored).

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


def _flags(rec: StudyRecords) -> pd.DataFrame:
    subj = rec.subjects
    treated = rec.treated_subjects()
    major = rec.major_deviation_subjects()
    itt = subj["rand_no"].notna()
    saf = subj["subject_id"].isin(treated)
    withdrawn = subj["withdrawn_on"].notna()
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
            planned = "; ".join(f"{rec.treatment(side_map[k])} {k}" for k in sorted(side_map))
            acts = {k: actual.get((s.subject_id, k)) for k in side_map}
            act = "; ".join(f"{rec.treatment(v)} {k}" for k, v in sorted(acts.items()) if v) or None
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
        )
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
            codelist=rec.treatment_codelist(),
            origin="Allocation list",
        ),
        Variable("TRT01PN", "Planned Treatment for Period 01 (N)", "Num", origin="Derived"),
        Variable("TRT01A", "Actual Treatment for Period 01", origin="Derived: delivery records"),
        Variable("TRT01AN", "Actual Treatment for Period 01 (N)", "Num", origin="Derived"),
        Variable("NSESS", "Number of Sessions Delivered", "Num", origin="Derived: delivery records"),
        Variable("TRTSDTC", "Date/Time of First Exposure", origin="Derived: delivery records"),
        Variable("TRTEDTC", "Date/Time of Last Exposure", origin="Derived: delivery records"),
        *strata_vars,
        Variable("RANDFL", "Randomized Population Flag", codelist=_YN, origin="Derived: allocated"),
        Variable("ITTFL", "Intent-To-Treat Population Flag", codelist=_YN, origin="Derived: randomised"),
        Variable("SAFFL", "Safety Population Flag", codelist=_YN, origin="Derived: >= 1 session delivered"),
        Variable(
            "PPROTFL",
            "Per-Protocol Population Flag",
            codelist=_YN,
            origin="Derived: ITT, SAFETY, no major deviation, not withdrawn",
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
        meas = rec.metric_values(endpoint.metric)
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
