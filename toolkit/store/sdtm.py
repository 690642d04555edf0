"""SDTM-like tabulation domains: DM, EX, AE and the facial-skin findings domain XF.

XF (a sponsor-defined findings domain) holds both photo measurements (``XFCAT = "PHOTO METRIC"``, one
record per photo, region and metric) and clinician scale scores (``XFCAT = "CLINICIAN SCALE"``).
While the study is blinded, treatment names are replaced by codes and EX withholds the delivered dose
(charge and energy differ between electroporation and microcurrent and would reveal the arm).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import pandas as pd

from toolkit.store.datasets import Dataset, StudyRecords, Variable, variable_name

__all__ = ["XF_QC_FAILED", "XF_QC_WARNINGS", "ae_domain", "dm_domain", "ds_domain", "dv_domain", "ex_domain",
           "sdtm_domains", "sdtm_qualifiers", "test_code", "xf_domain", "xf_qualifiers"]

_YN = "Y; N"
_PHOTO_TESTCD = {
    "wrinkle_count": "WRKCNT",
    "wrinkle_length_mm": "WRKLEN",
    "wrinkle_density_mm_per_cm2": "WRKDENS",
    "wrinkle_area_fraction": "WRKAREA",
    "ridge_strength": "RIDGESTR",
    "lift_mm": "LIFT",
    "displacement_mm": "DISPL",
}
_SIDE = {"left": "LEFT", "right": "RIGHT", "_l": "LEFT", "_r": "RIGHT"}


def _dtc(value: Any) -> str | None:
    """ISO 8601 text of a date or instant (SDTM --DTC)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def test_code(name: str, taken: dict[str, str]) -> str:
    """A ``--TESTCD`` (≤ 8) for a metric or scale name, stable within one export."""
    if name in taken:
        return taken[name]
    code = _PHOTO_TESTCD.get(name) or variable_name(name, set(taken.values()))
    taken[name] = code
    return code


def dm_domain(rec: StudyRecords) -> Dataset:
    """Demographics: one record per enrolled subject."""
    subj = rec.subjects
    rows = []
    first = rec.deliveries.groupby("subject_id")["started_at"].min() if not rec.deliveries.empty else {}
    last = rec.deliveries.groupby("subject_id")["ended_at"].max() if not rec.deliveries.empty else {}
    treated = rec.treated_subjects()
    for s in subj.itertuples(index=False):
        side_map = s.side_map if isinstance(s.side_map, dict) else None
        if side_map:
            armcd, arm = rec.sequence_code(side_map), rec.sequence_label(side_map, rec.arm_name)
        else:
            armcd, arm = rec.arm_code(s.arm_id), rec.arm_name(s.arm_id)
        if armcd is None:
            armcd, arm = "NOTASSGN", "Not Assigned"
        act = (armcd, arm) if s.subject_id in treated else ("NOTTRT", "Not Treated")
        rows.append(
            {
                "STUDYID": rec.study_id,
                "DOMAIN": "DM",
                "USUBJID": rec.usubjid(s.subject_id),
                "SUBJID": s.subject_id,
                "SITEID": s.site,
                "RFICDTC": _dtc(s.consent_on),
                "RFSTDTC": _dtc(first.get(s.subject_id)) if len(first) else None,
                "RFENDTC": _dtc(last.get(s.subject_id)) if len(last) else None,
                "AGE": s.age,
                "AGEU": "YEARS",
                "SEX": s.sex,
                "RACE": s.race,
                "FITZTYPE": s.fitzpatrick,
                "ARMCD": armcd,
                "ARM": arm,
                "ACTARMCD": act[0],
                "ACTARM": act[1],
            }
        )
    variables = [
        Variable("STUDYID", "Study Identifier", origin="Assigned"),
        Variable("DOMAIN", "Domain Abbreviation", codelist="DM", origin="Assigned"),
        Variable("USUBJID", "Unique Subject Identifier", origin="Derived: STUDYID-SUBJID"),
        Variable("SUBJID", "Subject Identifier for the Study", origin="CRF"),
        Variable("SITEID", "Study Site Identifier", origin="CRF"),
        Variable("RFICDTC", "Date/Time of Informed Consent", origin="CRF"),
        Variable("RFSTDTC", "Subject Reference Start Date/Time", origin="Derived: first delivery start"),
        Variable("RFENDTC", "Subject Reference End Date/Time", origin="Derived: last delivery end"),
        Variable("AGE", "Age", "Num", origin="CRF"),
        Variable("AGEU", "Age Units", codelist="YEARS", origin="Assigned"),
        Variable("SEX", "Sex", codelist="F; M; U", origin="CRF"),
        Variable("RACE", "Race", origin="CRF"),
        Variable("FITZTYPE", "Fitzpatrick Skin Type", codelist="I; II; III; IV; V; VI", origin="CRF"),
        Variable("ARMCD", "Planned Arm Code", codelist=rec.subject_arm_codelists()[0], origin="Allocation list"),
        Variable("ARM", "Description of Planned Arm", codelist=rec.subject_arm_codelists()[1],
                 origin="Allocation list"),
        Variable("ACTARMCD", "Actual Arm Code", origin="Derived: delivery records"),
        Variable("ACTARM", "Description of Actual Arm", origin="Derived: delivery records"),
    ]
    return Dataset("DM", "Demographics", pd.DataFrame(rows), variables)


def ex_domain(rec: StudyRecords) -> Dataset:
    """Exposure: one record per delivery session (resumed sessions link to the first by EXLNKID)."""
    rows = []
    seq: dict[str, int] = {}
    for d in rec.deliveries.itertuples(index=False):
        seq[d.subject_id] = seq.get(d.subject_id, 0) + 1
        dose = d.dose if isinstance(d.dose, dict) else {}
        charge = dose.get("charge_C")
        energy = dose.get("energy_J")
        duration = dose.get("duration_s")
        on_time = dose.get("on_time_s")
        rms = dose.get("rms_current_A")
        pulses = dose.get("pulse_count")
        withheld = rec.blinded
        rows.append(
            {
                "STUDYID": rec.study_id,
                "DOMAIN": "EX",
                "USUBJID": rec.usubjid(d.subject_id),
                "EXSEQ": seq[d.subject_id],
                "EXREFID": str(d.delivery_id),
                "EXLNKID": str(int(d.resumed_from)) if pd.notna(d.resumed_from) else None,
                "EXTRT": rec.arm_name(d.arm_id),
                "EXDOSE": None if withheld or charge is None else float(charge) * 1e3,
                "EXDOSU": "mC",
                "EXENRGJ": None if withheld or energy is None else float(energy),
                "EXDURS": None if duration is None else float(duration),
                "EXONTS": None if on_time is None else float(on_time),
                "EXIRMS": None if withheld or rms is None else float(rms) * 1e3,
                "EXNPULS": None if withheld or pulses is None else float(pulses),
                "EXLAT": _SIDE.get(str(d.side).lower()) if d.side else None,
                "EXSESS": d.session_number,
                "EXOUTCM": str(d.status).upper(),
                "EXADJ": d.reason,
                "EXSTDTC": _dtc(d.started_at),
                "EXENDTC": _dtc(d.ended_at),
            }
        )
    dose_origin = "Instrument: charge ∫|i|dt from scope captures"
    if rec.blinded:
        dose_origin += " (withheld while blinded)"
    variables = [
        Variable("STUDYID", "Study Identifier", origin="Assigned"),
        Variable("DOMAIN", "Domain Abbreviation", codelist="EX", origin="Assigned"),
        Variable("USUBJID", "Unique Subject Identifier", origin="Derived"),
        Variable("EXSEQ", "Sequence Number", "Num", origin="Derived"),
        Variable("EXREFID", "Reference ID (delivery record)", origin="Assigned"),
        Variable("EXLNKID", "Link ID (first record if resumed)", origin="Assigned"),
        Variable("EXTRT", "Name of Treatment", codelist=rec.arm_codelist(), origin="Delivery record"),
        Variable("EXDOSE", "Dose (delivered charge)", "Num", origin=dose_origin),
        Variable("EXDOSU", "Dose Units", codelist="mC", origin="Assigned"),
        Variable(
            "EXENRGJ", "Delivered Energy (J)", "Num", origin=dose_origin.replace("charge ∫|i|dt", "∫v·i dt")
        ),
        Variable("EXDURS", "Delivery Duration (s)", "Num", origin="Delivery record: treatment time"),
        Variable("EXONTS", "Output On-Time (s)", "Num", origin="Instrument: time carrying bursts"),
        Variable("EXIRMS", "R.M.S. Current (mA)", "Num", origin=dose_origin.replace("charge ∫|i|dt", "√(∫i²dt/T)")),
        Variable("EXNPULS", "Pulses or Cycles Delivered", "Num", origin=dose_origin.replace("charge ∫|i|dt",
                                                                                          "count")),
        Variable("EXLAT", "Laterality", codelist="LEFT; RIGHT", origin="Delivery record"),
        Variable("EXSESS", "Session Number", "Num", origin="Delivery record"),
        Variable(
            "EXOUTCM",
            "Session Outcome",
            codelist="COMPLETED; ABORTED; OUTPUT_STATE_UNKNOWN; IN_PROGRESS",
            origin="Delivery record",
        ),
        Variable("EXADJ", "Reason for Dose Adjustment (abort)", origin="Delivery record"),
        Variable("EXSTDTC", "Start Date/Time of Treatment", origin="Delivery record"),
        Variable("EXENDTC", "End Date/Time of Treatment", origin="Delivery record"),
    ]
    return Dataset("EX", "Exposure", pd.DataFrame(rows), variables)


def ae_domain(rec: StudyRecords) -> Dataset:
    """Adverse events: one record per event."""
    rows = []
    seq: dict[str, int] = {}
    dictionary = rec.ae_dictionary
    for a in rec.adverse_events.itertuples(index=False):
        seq[a.subject_id] = seq.get(a.subject_id, 0) + 1
        coded = dictionary.code(a.term) if dictionary is not None else None
        decod, bodsys = (a.term, a.soc) if dictionary is None else (
            (coded.preferred_term, coded.system_organ_class) if coded else (None, "UNCODED"))
        rows.append(
            {
                "STUDYID": rec.study_id,
                "DOMAIN": "AE",
                "USUBJID": rec.usubjid(a.subject_id),
                "AESEQ": seq[a.subject_id],
                "AETERM": a.term,
                "AEDECOD": decod,
                "AEBODSYS": bodsys,
                "AESEV": str(a.severity).upper(),
                "AESER": "Y" if a.serious else "N",
                "AEREL": str(a.relation).upper(),
                "AESTDTC": _dtc(a.onset),
                "AEENDTC": _dtc(a.resolved),
                "AEENRF": None if a.resolved is not None and pd.notna(a.resolved) else "ONGOING",
                "AEACN": _upper(getattr(a, "action_taken", None)),
                "AEOUT": _upper(getattr(a, "outcome", None)) or (
                    "RECOVERED/RESOLVED" if a.resolved is not None and pd.notna(a.resolved)
                    else "NOT RECOVERED/NOT RESOLVED"),
            }
        )
    variables = [
        Variable("STUDYID", "Study Identifier", origin="Assigned"),
        Variable("DOMAIN", "Domain Abbreviation", codelist="AE", origin="Assigned"),
        Variable("USUBJID", "Unique Subject Identifier", origin="Derived"),
        Variable("AESEQ", "Sequence Number", "Num", origin="Derived"),
        Variable("AETERM", "Reported Term for the Adverse Event", origin="CRF"),
        Variable("AEDECOD", "Dictionary-Derived Term", origin="Derived: study AE dictionary"
                 if dictionary is not None else "CRF (term as reported)"),
        Variable("AEBODSYS", "Body System or Organ Class", origin="Derived: study AE dictionary"
                 if dictionary is not None else "CRF"),
        Variable("AESEV", "Severity/Intensity", codelist="MILD; MODERATE; SEVERE", origin="CRF"),
        Variable("AESER", "Serious Event", codelist=_YN, origin="CRF"),
        Variable(
            "AEREL", "Causality", codelist="NOT RELATED; UNLIKELY; POSSIBLE; PROBABLE; RELATED", origin="CRF"
        ),
        Variable("AESTDTC", "Start Date/Time of Adverse Event", origin="CRF"),
        Variable("AEENDTC", "End Date/Time of Adverse Event", origin="CRF"),
        Variable("AEENRF", "End Relative to Reference Period", codelist="ONGOING", origin="Derived"),
        Variable("AEACN", "Action Taken with Study Treatment", codelist=_AEACN, origin="CRF"),
        Variable("AEOUT", "Outcome of Adverse Event", codelist=_AEOUT, origin="CRF (else from the end date)"),
    ]
    return Dataset("AE", "Adverse Events", pd.DataFrame(rows), variables)


_AEACN = "DOSE NOT CHANGED; DOSE REDUCED; TREATMENT INTERRUPTED; TREATMENT WITHDRAWN; NOT APPLICABLE; UNKNOWN"
_AEOUT = ("RECOVERED/RESOLVED; RECOVERING/RESOLVING; NOT RECOVERED/NOT RESOLVED; RECOVERED/RESOLVED WITH SEQUELAE; "
          "FATAL; UNKNOWN")


def _upper(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return str(value).upper()


#: start of XFREASND for the metrics of a photo whose analysis failed QC (followed by its codes, comma-separated)
XF_QC_FAILED = "PHOTO FAILED QC: "


def xf_domain(rec: StudyRecords) -> Dataset:
    """Facial skin findings: photo metrics (per photo, region, metric) and clinician scale scores."""
    codes: dict[str, str] = {}
    visits = {v.id: v for v in rec.info.visits}
    frames = []
    meas = rec.measurements
    if not meas.empty:
        # a photo whose analysis failed QC was not measured validly: its findings are not done, with the reason
        failed = rec.failed_photos
        f_codes = [failed.get(int(p)) for p in meas["photo_id"]]
        f = pd.DataFrame(
            {
                "USUBJID": [rec.usubjid(s) for s in meas["subject_id"]],
                "XFCAT": "PHOTO METRIC",
                "XFTESTCD": [test_code(x, codes) for x in meas["metric"]],
                "XFTEST": [x.replace("_", " ")[:40] for x in meas["metric"]],
                "XFLOC": meas["region"].str.upper(),
                "XFLAT": [_SIDE.get(r[-2:]) for r in meas["region"]],
                "XFSTRESN": [float("nan") if c else float(v) for v, c in zip(meas["value"], f_codes, strict=True)],
                "XFSTRESU": meas["unit"],
                "XFREASND": [f"{XF_QC_FAILED}{c.upper()}" if c else None for c in f_codes],
                "XFMETHOD": meas["algorithm_version"],
                "XFEVAL": "IMAGE ANALYSIS",
                "XFREFID": [f"PHOTO {p} {v}" for p, v in zip(meas["photo_id"], meas["view"], strict=True)],
                "VISITID": meas["visit_id"],
                "XFDTC": [_dtc(x) for x in meas["captured_at"]],
            }
        )
        frames.append(f)
    ass = rec.assessments
    if not ass.empty:
        frames.append(
            pd.DataFrame(
                {
                    "USUBJID": [rec.usubjid(s) for s in ass["subject_id"]],
                    "XFCAT": "CLINICIAN SCALE",
                    "XFTESTCD": [test_code(x, codes) for x in ass["scale"]],
                    "XFTEST": [x.replace("_", " ")[:40] for x in ass["scale"]],
                    "XFLOC": "FACE",
                    "XFLAT": [_SIDE.get(str(s).lower()) if s else None for s in ass["side"]],
                    "XFSTRESN": ass["score"].astype(float),
                    "XFSTRESU": None,
                    "XFREASND": None,
                    "XFMETHOD": None,
                    "XFEVAL": ass["assessor"],
                    # a grade of the rating station names its photo set, and a blind re-grade says so
                    "XFREFID": _rating_refs(ass),
                    "VISITID": ass["visit_id"],
                    # the day assessed; rows from before it was kept fall back to when they were recorded
                    "XFDTC": [_dtc(d) if pd.notna(d) else _dtc(r) for d, r in zip(ass["assessed_on"],
                                                                                  ass["recorded_at"], strict=True)],
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not frame.empty:
        frame.insert(0, "STUDYID", rec.study_id)
        frame.insert(1, "DOMAIN", "XF")
        frame["XFORRES"] = [None if pd.isna(v) else f"{v:.6g}" for v in frame["XFSTRESN"]]
        frame["XFSTAT"] = [None if pd.notna(v) else "NOT DONE" for v in frame["XFSTRESN"]]
        frame["VISIT"] = [visits[v].name if v in visits else v for v in frame["VISITID"]]
        frame["VISITNUM"] = [visits[v].number if v in visits else None for v in frame["VISITID"]]
        frame = frame.sort_values(["USUBJID", "VISITNUM", "XFCAT", "XFTESTCD"], kind="stable")
        frame["XFSEQ"] = frame.groupby("USUBJID").cumcount() + 1
    variables = [
        Variable("STUDYID", "Study Identifier", origin="Assigned"),
        Variable("DOMAIN", "Domain Abbreviation", codelist="XF", origin="Assigned"),
        Variable("USUBJID", "Unique Subject Identifier", origin="Derived"),
        Variable("XFSEQ", "Sequence Number", "Num", origin="Derived"),
        Variable("XFCAT", "Category", codelist="PHOTO METRIC; CLINICIAN SCALE", origin="Assigned"),
        Variable(
            "XFTESTCD",
            "Short Name of Finding",
            codelist="; ".join(sorted(set(codes.values()))),
            origin="Assigned",
        ),
        Variable("XFTEST", "Name of Finding", origin="Assigned"),
        Variable("XFLOC", "Location (facial region)", origin="Image analysis / CRF"),
        Variable("XFLAT", "Laterality", codelist="LEFT; RIGHT", origin="Derived from region or side"),
        Variable("XFORRES", "Result in Original Units", origin="Image analysis / CRF"),
        Variable("XFSTRESN", "Numeric Result in Standard Units", "Num", origin="Image analysis / CRF"),
        Variable("XFSTRESU", "Standard Units", origin="Image analysis"),
        Variable("XFSTAT", "Completion Status", codelist="NOT DONE", origin="Derived"),
        Variable("XFREASND", "Reason Not Done", origin="Derived (photo QC)"),
        Variable("XFMETHOD", "Method (algorithm version)", origin="Image analysis"),
        Variable("XFEVAL", "Evaluator", origin="CRF"),
        Variable("XFREFID", "Reference ID (photo or rating set)", origin="Assigned"),
        Variable("VISITNUM", "Visit Number", "Num", origin="Study schedule"),
        Variable("VISIT", "Visit Name", origin="Study schedule"),
        Variable("XFDTC", "Date/Time of Collection", origin="Photo capture / CRF"),
    ]
    return Dataset("XF", "Facial Skin Findings", frame, variables)


def ds_domain(rec: StudyRecords) -> Dataset:
    """Disposition: consent and randomisation milestones, then the end of study treatment and of the study
    (COMPLETED or the NCOMPLT reason, with the verbatim detail in DSTERM)."""
    from toolkit.store.adam import disposition

    status = disposition(rec).set_index("subject_id")
    d = rec.deliveries
    ended = d[d["status"] != "in_progress"] if not d.empty else d
    rows = []
    for s in rec.subjects.itertuples(index=False):
        sid = s.subject_id
        events = []
        if s.consent_on is not None and pd.notna(s.consent_on):
            events.append(("PROTOCOL MILESTONE", None, "INFORMED CONSENT OBTAINED", "INFORMED CONSENT OBTAINED",
                           s.consent_on))
        if pd.notna(s.rand_no):
            events.append(("PROTOCOL MILESTONE", None, "RANDOMIZED", "RANDOMIZED", s.allocated_at))
        st = status.loc[sid] if sid in status.index else None
        stopped = rec.disposition_event(sid, "treatment")
        left = rec.disposition_event(sid, "study")
        mine = ended[ended["subject_id"] == sid] if not ended.empty else ended
        if st is not None and st["EOTSTT"] == "COMPLETED" and not mine.empty:
            events.append(("DISPOSITION EVENT", "STUDY TREATMENT", "COMPLETED", "COMPLETED",
                           mine["ended_at"].max()))
        elif stopped is not None:
            events.append(("DISPOSITION EVENT", "STUDY TREATMENT", stopped["reason"],
                           stopped["detail"] or stopped["reason"], stopped["on"]))
        if left is not None:
            events.append(("DISPOSITION EVENT", "STUDY PARTICIPATION", left["reason"], left["detail"] or left["reason"],
                           left["on"]))
        elif st is not None and st["EOSSTT"] == "COMPLETED":
            events.append(("DISPOSITION EVENT", "STUDY PARTICIPATION", "COMPLETED", "COMPLETED", None))
        for k, (cat, scat, decod, term, when) in enumerate(events, start=1):
            rows.append({"STUDYID": rec.study_id, "DOMAIN": "DS", "USUBJID": rec.usubjid(sid), "DSSEQ": k,
                         "DSTERM": str(term).upper(), "DSDECOD": decod, "DSCAT": cat, "DSSCAT": scat,
                         "DSSTDTC": _dtc(when)})
    variables = [
        Variable("STUDYID", "Study Identifier", origin="Assigned"),
        Variable("DOMAIN", "Domain Abbreviation", codelist="DS", origin="Assigned"),
        Variable("USUBJID", "Unique Subject Identifier", origin="Derived"),
        Variable("DSSEQ", "Sequence Number", "Num", origin="Derived"),
        Variable("DSTERM", "Reported Term for the Disposition Event", origin="CRF"),
        Variable("DSDECOD", "Standardized Disposition Term", codelist="NCOMPLT", origin="Assigned"),
        Variable("DSCAT", "Category for Disposition Event", codelist="DISPOSITION EVENT; PROTOCOL MILESTONE",
                 origin="Assigned"),
        Variable("DSSCAT", "Subcategory for Disposition Event", codelist="STUDY TREATMENT; STUDY PARTICIPATION",
                 origin="Assigned"),
        Variable("DSSTDTC", "Start Date/Time of Disposition Event", origin="CRF / delivery records"),
    ]
    return Dataset("DS", "Disposition", pd.DataFrame(rows), variables)


def dv_domain(rec: StudyRecords) -> Dataset:
    """Protocol deviations: one record per deviation, major or minor."""
    rows = []
    seq: dict[str, int] = {}
    for dv in rec.deviations.itertuples(index=False):
        seq[dv.subject_id] = seq.get(dv.subject_id, 0) + 1
        rows.append({"STUDYID": rec.study_id, "DOMAIN": "DV", "USUBJID": rec.usubjid(dv.subject_id),
                     "DVSEQ": seq[dv.subject_id], "DVTERM": dv.description, "DVCAT": str(dv.category).upper(),
                     "DVSTDTC": _dtc(dv.recorded_at)})
    variables = [
        Variable("STUDYID", "Study Identifier", origin="Assigned"),
        Variable("DOMAIN", "Domain Abbreviation", codelist="DV", origin="Assigned"),
        Variable("USUBJID", "Unique Subject Identifier", origin="Derived"),
        Variable("DVSEQ", "Sequence Number", "Num", origin="Derived"),
        Variable("DVTERM", "Protocol Deviation Term", origin="CRF"),
        Variable("DVCAT", "Category for Protocol Deviation", codelist="MAJOR; MINOR", origin="CRF"),
        Variable("DVSTDTC", "Start Date/Time of Deviation", origin="Recorded time"),
    ]
    return Dataset("DV", "Protocol Deviations", pd.DataFrame(rows), variables)


def sdtm_domains(rec: StudyRecords) -> list[Dataset]:
    """DM, DS, EX, AE, DV and XF."""
    return [dm_domain(rec), ds_domain(rec), ex_domain(rec), ae_domain(rec), dv_domain(rec), xf_domain(rec)]


def sdtm_qualifiers(rec: StudyRecords) -> dict[str, list[dict]]:
    """Supplemental qualifiers of the domains (domain -> SUPP-- rows without STUDYID and RDOMAIN)."""
    return {"XF": xf_qualifiers(rec)}


#: QNAM of the QC warnings of a photo that passed QC (SUPPXF, one record per photo, by XFREFID)
XF_QC_WARNINGS = "PHQCWARN"


def xf_qualifiers(rec: StudyRecords) -> list[dict]:
    """SUPPXF: the QC warnings of each measured photo that passed QC with warnings (new spots on the skin, a
    smile, spectacles ...), one record per photo identified by its XFREFID, so that a reader of the findings
    knows which photos to look at (new spots after a session may be a skin reaction)."""
    meas = rec.measurements
    flagged = rec.flagged_photos
    if meas.empty or not flagged:
        return []
    photos = meas.drop_duplicates("photo_id")
    photos = photos[photos["photo_id"].astype(int).isin(list(flagged))]
    rows = [{"USUBJID": rec.usubjid(s), "IDVAR": "XFREFID", "IDVARVAL": f"PHOTO {p} {v}", "QNAM": XF_QC_WARNINGS,
             "QLABEL": "Photo QC Warnings", "QVAL": flagged[int(p)].upper(), "QORIG": "Derived"}
            for s, p, v in zip(photos["subject_id"], photos["photo_id"], photos["view"], strict=True)]
    # by subject, then photo
    return sorted(rows, key=lambda r: (r["USUBJID"], int(r["IDVARVAL"].split()[1])))


def _rating_refs(ass: pd.DataFrame) -> list[str | None]:
    """XFREFID of clinician grades: ``RATING SET <id>`` (``… REGRADE`` for the blind second grade of the
    intra-rater subset), none for a grade entered or imported without the station."""
    sets = ass["rating_set"] if "rating_set" in ass else pd.Series([None] * len(ass), index=ass.index)
    again = ass["repeat"] if "repeat" in ass else pd.Series([0] * len(ass), index=ass.index)
    return [None if s is None or pd.isna(s) else f"RATING SET {s}" + (" REGRADE" if r == 1 else "")
            for s, r in zip(sets, again.fillna(0), strict=True)]
