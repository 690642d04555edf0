"""ADAE: adverse events for analysis, coded against the study's dictionary, with treatment-emergence,
onset day and session of onset.

* Coding: ``AEDECOD`` (preferred term) and ``AEBODSYS`` (system organ class) come from the study's AE
  dictionary by the verbatim term ``AETERM``; a term the dictionary does not hold keeps ``AEDECOD`` empty,
  ``AEBODSYS = "UNCODED"`` and ``UNCODFL = "Y"`` (listed, never guessed). Without a dictionary the terms are
  taken as entered.
* ``TRTEMFL = "Y"`` when the event began on or after the subject's first session (a pre-existing condition
  that worsened would need a worsening record, which the store does not hold).
* ``ASTDY`` is the study day of onset relative to the first session (day 1, no day 0); ``ASESSN`` the last
  session started on or before the onset day.
* ``RELFL = "Y"`` for a possible, probable or definite relation to the treatment; ``AEOUT`` is
  the recorded outcome, else ``RECOVERED/RESOLVED`` when a resolution date is recorded and ``NOT RECOVERED/NOT
  RESOLVED`` otherwise; ``AEACN`` the action taken with the treatment; a recorded session of onset wins over the
  derived one.
"""

from __future__ import annotations

import pandas as pd

from toolkit.store.datasets import Dataset, StudyRecords, Variable

__all__ = ["RELATED", "adae_dataset"]

#: relations counted as treatment-related
RELATED = ("POSSIBLE", "PROBABLE", "RELATED", "DEFINITE")
_SEVERITY_N = {"MILD": 1.0, "MODERATE": 2.0, "SEVERE": 3.0}
_YN = "Y; N"


def _sas_date(value: object) -> float | None:
    from toolkit.store.adam import sas_date

    return sas_date(value)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def _outcome(recorded: object, resolved: bool) -> str:
    if not _missing(recorded):
        return str(recorded).upper()
    return "RECOVERED/RESOLVED" if resolved else "NOT RECOVERED/NOT RESOLVED"


def adae_dataset(rec: StudyRecords, dictionary=None) -> Dataset:
    """ADAE of the study (see the module description); ``dictionary`` is an :class:`AEDictionary` or ``None``."""
    from toolkit.store.adam import _actual_arms, _arm_number

    subjects = rec.subjects.set_index("subject_id")
    actual = _actual_arms(rec)
    d = rec.deliveries
    ended = d[d["status"] != "in_progress"] if not d.empty else d
    starts: dict[str, pd.DataFrame] = {}
    if not ended.empty:
        for sid, grp in ended.groupby("subject_id"):
            starts[str(sid)] = grp.assign(day=pd.to_datetime(grp["started_at"]).dt.tz_localize(None).dt.normalize())
    treated = rec.treated_subjects()
    rows = []
    seq: dict[str, int] = {}
    for a in rec.adverse_events.itertuples(index=False):
        sid = str(a.subject_id)
        seq[sid] = seq.get(sid, 0) + 1
        coded = dictionary.code(a.term) if dictionary is not None else None
        if dictionary is None:
            decod, soc, local, uncoded = a.term, a.soc, None, None
        elif coded is None:
            decod, soc, local, uncoded = None, "UNCODED", None, "Y"
        else:
            decod, soc, local, uncoded = coded.preferred_term, coded.system_organ_class, coded.local_reaction, "N"
        onset = pd.Timestamp(a.onset).normalize()
        mine = starts.get(sid)
        first = mine["day"].min() if mine is not None else None
        study_day = session = None
        emergent = "N"
        if first is not None:
            delta = (onset - first).days
            study_day = float(delta + 1 if delta >= 0 else delta)
            emergent = "Y" if delta >= 0 else "N"
            before = mine[mine["day"] <= onset]
            session = float(before["session_number"].max()) if not before.empty else None
        recorded = getattr(a, "session_number", None)
        if recorded is not None and not pd.isna(recorded):  # the session the site recorded wins
            session = float(recorded)
        side_map = subjects.loc[sid, "side_map"] if sid in subjects.index else None
        if isinstance(side_map, dict) and side_map:
            trta = rec.sequence_label({k: actual.get((sid, k)) for k in side_map}) or None
            trtan = None
        else:
            act = actual.get((sid, None))
            trta, trtan = (rec.treatment(act) if act else None), _arm_number(rec, act)
        severity = str(a.severity).upper()
        relation = str(a.relation).upper()
        resolved = a.resolved is not None and not pd.isna(a.resolved)
        rows.append({
            "STUDYID": rec.study_id,
            "USUBJID": rec.usubjid(sid),
            "AESEQ": seq[sid],
            "TRTA": trta,
            "TRTAN": trtan,
            "AETERM": a.term,
            "AEDECOD": decod,
            "AEBODSYS": soc,
            "UNCODFL": uncoded,
            "LSRFL": None if local is None else ("Y" if local else "N"),
            "AESEV": severity,
            "ASEVN": _SEVERITY_N.get(severity),
            "AESER": "Y" if a.serious else "N",
            "AEREL": relation,
            "RELFL": "Y" if relation in RELATED else "N",
            "AEOUT": _outcome(getattr(a, "outcome", None), resolved),
            "AEACN": None if _missing(getattr(a, "action_taken", None)) else str(a.action_taken).upper(),
            "ASTDT": _sas_date(a.onset),
            "AENDT": _sas_date(a.resolved) if resolved else None,
            "ASTDY": study_day,
            "ASESSN": session,
            "TRTEMFL": emergent,
            "SAFFL": "Y" if sid in treated else "N",
        })
    variables = [
        Variable("STUDYID", "Study Identifier", origin="Assigned"),
        Variable("USUBJID", "Unique Subject Identifier", origin="Derived"),
        Variable("AESEQ", "Sequence Number", "Num", origin="Derived"),
        Variable("TRTA", "Actual Treatment", codelist=rec.subject_treatment_codelist(), origin="ADSL.TRT01A"),
        Variable("TRTAN", "Actual Treatment (N)", "Num", origin="ADSL.TRT01AN"),
        Variable("AETERM", "Reported Term for the Adverse Event", origin="CRF"),
        Variable("AEDECOD", "Dictionary-Derived Term", origin="Derived: study AE dictionary by AETERM"),
        Variable("AEBODSYS", "Body System or Organ Class", origin="Derived: study AE dictionary by AETERM"),
        Variable("UNCODFL", "Term Not in Dictionary Flag", codelist=_YN, origin="Derived: AETERM not in dictionary"),
        Variable("LSRFL", "Local Skin Reaction Flag", codelist=_YN, origin="Derived: dictionary local_reaction"),
        Variable("AESEV", "Severity/Intensity", codelist="MILD; MODERATE; SEVERE", origin="CRF"),
        Variable("ASEVN", "Analysis Severity (N)", "Num", codelist="1 = MILD; 2 = MODERATE; 3 = SEVERE",
                 origin="Derived: AESEV"),
        Variable("AESER", "Serious Event", codelist=_YN, origin="CRF"),
        Variable("AEREL", "Causality", codelist="NOT RELATED; UNLIKELY; POSSIBLE; PROBABLE; RELATED",
                 origin="CRF"),
        Variable("RELFL", "Treatment-Related Flag", codelist=_YN, origin="Derived: AEREL possible or stronger"),
        Variable("AEOUT", "Outcome of Adverse Event",
                 codelist="RECOVERED/RESOLVED; RECOVERING/RESOLVING; NOT RECOVERED/NOT RESOLVED; RECOVERED/RESOLVED "
                          "WITH SEQUELAE; FATAL; UNKNOWN", origin="CRF (else from the resolution date)"),
        Variable("AEACN", "Action Taken with Study Treatment",
                 codelist="DOSE NOT CHANGED; DOSE REDUCED; TREATMENT INTERRUPTED; TREATMENT WITHDRAWN; "
                          "NOT APPLICABLE; UNKNOWN", origin="CRF"),
        Variable("ASTDT", "Analysis Start Date", "Num", origin="CRF: onset date", format="DATE9"),
        Variable("AENDT", "Analysis End Date", "Num", origin="CRF: resolution date", format="DATE9"),
        Variable("ASTDY", "Analysis Start Relative Day", "Num",
                 origin="Derived: onset - first session date (+1 on or after it)"),
        Variable("ASESSN", "Session of Onset", "Num",
                 origin="CRF (else derived: last session on or before onset)"),
        Variable("TRTEMFL", "Treatment Emergent Analysis Flag", codelist=_YN,
                 origin="Derived: onset on or after the first session"),
        Variable("SAFFL", "Safety Population Flag", codelist=_YN, origin="ADSL.SAFFL"),
    ]
    return Dataset("ADAE", "Adverse Events Analysis Dataset", pd.DataFrame(rows), variables)
