"""ADEX: exposure per delivery session as a BDS dataset, one record per session and parameter.

Parameters come from the dose each delivery record carries (integrated by the bench from scope captures):
charge, energy, r.m.s. current, pulses, output on-time and treatment time. Sham sessions carry zero dose.
Dose values are withheld (empty) while the study is blinded, as in EX, because they reveal the arm.
"""

from __future__ import annotations

import pandas as pd

from toolkit.store.datasets import Dataset, StudyRecords, Variable

__all__ = ["ADEX_PARAMETERS", "adex_dataset"]

#: PARAMCD -> (PARAM, unit, dose key, factor to the unit, withheld while blinded)
ADEX_PARAMETERS = {
    "CHARGE": ("Delivered charge per session (mC)", "mC", "charge_C", 1e3, True),
    "ENERGY": ("Delivered energy per session (J)", "J", "energy_J", 1.0, True),
    "IRMS": ("R.m.s. current per session (mA)", "mA", "rms_current_A", 1e3, True),
    "NPULSE": ("Pulses or cycles per session", "COUNT", "pulse_count", 1.0, True),
    "ONTIME": ("Output on-time per session (s)", "s", "on_time_s", 1.0, False),
    "DURATION": ("Treatment time per session (s)", "s", "duration_s", 1.0, False),
}


def adex_dataset(rec: StudyRecords) -> Dataset:
    """ADEX: exposure per session (see the module description)."""
    from toolkit.store.adam import _arm_number

    rows = []
    for d in rec.deliveries.itertuples(index=False):
        if d.status == "in_progress":
            continue
        dose = d.dose if isinstance(d.dose, dict) else {}
        for code, (param, unit, key, factor, secret) in ADEX_PARAMETERS.items():
            value = dose.get(key)
            withheld = secret and rec.blinded
            rows.append({
                "STUDYID": rec.study_id,
                "USUBJID": rec.usubjid(d.subject_id),
                "TRTA": rec.treatment(d.arm_id),
                "TRTAN": _arm_number(rec, d.arm_id),
                "SIDE": str(d.side).upper() if isinstance(d.side, str) and d.side else None,
                "ASESSN": float(d.session_number),
                "EXREFID": str(d.delivery_id),
                "EXOUTCM": str(d.status).upper(),
                "PARAMCD": code,
                "PARAM": param,
                "AVAL": None if withheld or value is None else float(value) * factor,
                "AVALU": unit,
                "ADT": _date(d.started_at),
            })
    variables = [
        Variable("STUDYID", "Study Identifier", origin="Assigned"),
        Variable("USUBJID", "Unique Subject Identifier", origin="Derived"),
        Variable("TRTA", "Actual Treatment", codelist=rec.treatment_codelist(), origin="Delivery record"),
        Variable("TRTAN", "Actual Treatment (N)", "Num", origin="Derived"),
        Variable("SIDE", "Treated Side of the Face", codelist="LEFT; RIGHT", origin="Delivery record"),
        Variable("ASESSN", "Session Number", "Num", origin="Delivery record"),
        Variable("EXREFID", "Reference ID (delivery record)", origin="Assigned"),
        Variable("EXOUTCM", "Session Outcome", codelist="COMPLETED; ABORTED; OUTPUT_STATE_UNKNOWN",
                 origin="Delivery record"),
        Variable("PARAMCD", "Parameter Code", codelist="; ".join(ADEX_PARAMETERS), origin="Assigned"),
        Variable("PARAM", "Parameter", origin="Assigned"),
        Variable("AVAL", "Analysis Value", "Num",
                 origin="Instrument: dose integrated from scope captures" + (" (withheld while blinded)"
                                                                             if rec.blinded else "")),
        Variable("AVALU", "Analysis Value Unit", origin="Assigned"),
        Variable("ADT", "Analysis Date", "Num", origin="Delivery record: session start", format="DATE9"),
    ]
    return Dataset("ADEX", "Exposure Analysis Dataset", pd.DataFrame(rows), variables)


def _date(value: object) -> float | None:
    from toolkit.store.adam import sas_date

    return sas_date(value)
