"""Safety tables (ICH E3 14.3) from ADSL, ADAE and ADEX: adverse-event overview, by maximum severity, local skin
reactions by session, and exposure. Counts are subjects (each subject once per row); denominators are the
safety population of each arm; percentages are rounded half up.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from toolkit.report.style import order_arms
from toolkit.report.tables import Table
from toolkit.stats.rounding import format_half_up, format_percent

__all__ = ["ae_overview_table", "ae_severity_table", "exposure_table", "local_reactions_by_session_table",
           "safety_denominators"]

_SEVERITIES = ("MILD", "MODERATE", "SEVERE")


def safety_denominators(adsl: pd.DataFrame, arm: str = "TRT01A") -> tuple[pd.DataFrame, list[str], dict[str, int]]:
    """The safety population, its arms in display order and N per arm."""
    pop = adsl[adsl["SAFFL"].astype(str).str.upper() == "Y"] if "SAFFL" in adsl.columns else adsl
    arms = order_arms(pop[arm])
    return pop, arms, {a: int((pop[arm].astype(str) == a).sum()) for a in arms}


def _cell(n: int, total: int) -> str:
    return f"{n} ({format_percent(n, total)}%)" if total else str(n)


def _subjects(frame: pd.DataFrame, arm_col: str, a: str) -> set:
    return set(frame.loc[frame[arm_col].astype(str) == a, "USUBJID"])


def _emergent(adae: pd.DataFrame, pop: pd.DataFrame) -> pd.DataFrame:
    out = adae[adae["USUBJID"].isin(pop["USUBJID"])]
    if "TRTEMFL" in out.columns:
        out = out[out["TRTEMFL"].astype(str).str.upper() == "Y"]
    return out


def ae_overview_table(adae: pd.DataFrame, adsl: pd.DataFrame, *, number: str, arm: str = "TRT01A",
                      ae_arm: str = "TRTA", population: str = "Safety population") -> Table:
    """Overview: subjects with any TEAE, related, serious, severe, local skin reactions, leading to
    discontinuation of treatment, and uncoded terms, n (%) by arm."""
    pop, arms, n = safety_denominators(adsl, arm)
    te = _emergent(adae, pop)
    stopped = set(pop.loc[pop.get("DCTREAS", pd.Series(index=pop.index, dtype=object)).astype(str)
                          .str.upper() == "ADVERSE EVENT", "USUBJID"]) if "DCTREAS" in pop.columns else set()

    def yes(col: str) -> pd.Series:
        return te[col].astype(str).str.upper() == "Y" if col in te.columns else pd.Series(False, index=te.index)

    rows = [
        ("Subjects with any treatment-emergent AE", te),
        ("  related to treatment (possible or stronger)", te[yes("RELFL")]),
        ("  serious", te[yes("AESER")]),
        ("  severe", te[te["AESEV"].astype(str).str.upper() == "SEVERE"] if "AESEV" in te else te.iloc[0:0]),
        ("  local skin reaction", te[yes("LSRFL")]),
        ("  term not in the AE dictionary (uncoded)", te[yes("UNCODFL")]),
    ]
    body = [[label, *[_cell(len(_subjects(frame, ae_arm, a)), n[a]) for a in arms]] for label, frame in rows]
    body.append(["Subjects who stopped treatment because of an AE",
                 *[_cell(len(stopped & set(pop.loc[pop[arm].astype(str) == a, "USUBJID"])), n[a]) for a in arms]])
    body.append(["Number of treatment-emergent AEs (events)",
                 *[str(int((te[ae_arm].astype(str) == a).sum())) for a in arms]])
    frame = pd.DataFrame(body, columns=["Subjects with", *[f"{a} (N={n[a]})" for a in arms]])
    return Table(number=number, title="Overview of treatment-emergent adverse events", body=frame,
                 population=population, source="ADAE, ADSL", footnotes=[
                     "n (%): subjects with at least one event; percentages of N, the arm's safety population, "
                     "rounded half up.",
                     "Treatment-emergent: onset on or after the first session. Related: possible, probable or "
                     "definite relation as judged by the investigator."])


def ae_severity_table(adae: pd.DataFrame, adsl: pd.DataFrame, *, number: str, arm: str = "TRT01A",
                      ae_arm: str = "TRTA", population: str = "Safety population") -> Table:
    """TEAEs by preferred term and maximum severity per subject: n (%) by arm and severity."""
    pop, arms, n = safety_denominators(adsl, arm)
    te = _emergent(adae, pop).copy()
    te["_sev"] = te["AESEV"].astype(str).str.upper().map({s: k for k, s in enumerate(_SEVERITIES)})
    te["_term"] = te["AEDECOD"].where(te["AEDECOD"].notna() & (te["AEDECOD"].astype(str) != ""),
                                      te["AETERM"].astype(str) + " (uncoded)")
    terms = list(te.groupby("_term")["USUBJID"].nunique().sort_values(ascending=False, kind="stable").index)
    columns = pd.MultiIndex.from_tuples([("", "Preferred term")] + [(f"{a} (N={n[a]})", s.capitalize())
                                                                    for a in arms for s in _SEVERITIES])
    rows = []
    for term in ["Any treatment-emergent AE", *terms]:
        sub = te if term == "Any treatment-emergent AE" else te[te["_term"] == term]
        worst = sub.groupby([ae_arm, "USUBJID"])["_sev"].max().reset_index()
        cells = [term]
        for a in arms:
            mine = worst[worst[ae_arm].astype(str) == a]
            cells += [_cell(int((mine["_sev"] == k).sum()), n[a]) for k in range(len(_SEVERITIES))]
        rows.append(cells)
    return Table(number=number, title="Treatment-emergent adverse events by preferred term and maximum severity",
                 body=pd.DataFrame(rows, columns=columns), population=population, source="ADAE, ADSL",
                 footnotes=["A subject is counted once per term, at the most severe occurrence."])


def local_reactions_by_session_table(adae: pd.DataFrame, adsl: pd.DataFrame, adex: pd.DataFrame | None, *,
                                     number: str, arm: str = "TRT01A", ae_arm: str = "TRTA",
                                     population: str = "Safety population") -> Table:
    """Local skin reactions by session of onset: subjects with a reaction / subjects treated at that session."""
    pop, arms, n = safety_denominators(adsl, arm)
    te = _emergent(adae, pop)
    if "LSRFL" in te.columns:
        te = te[te["LSRFL"].astype(str).str.upper() == "Y"]
    sessions = sorted({int(s) for s in te["ASESSN"].dropna()}) if "ASESSN" in te.columns else []
    treated: dict[tuple[str, int], int] = {}
    if adex is not None and {"ASESSN", "USUBJID"} <= set(adex.columns):
        # subjects treated at each session, counted in the columns' own grouping (the ADSL arm: in a split-face
        # study the side sequence, whose subjects received both treatments at each session)
        per = adex.drop_duplicates(["USUBJID", "ASESSN"]).merge(pop[["USUBJID", arm]], on="USUBJID")
        sessions = sorted(set(sessions) | {int(s) for s in per["ASESSN"].dropna()})
        for (a, s), grp in per.groupby([per[arm].astype(str), per["ASESSN"].astype(int)]):
            treated[(a, s)] = grp["USUBJID"].nunique()
    rows = []
    for s in sessions:
        cells = [f"Session {s}"]
        for a in arms:
            hit = te[(te[ae_arm].astype(str) == a) & (te["ASESSN"] == s)]["USUBJID"].nunique()
            cells.append(_cell(int(hit), treated.get((a, s), n[a])))
        rows.append(cells)
    body = pd.DataFrame(rows, columns=["Session of onset", *[f"{a} (N={n[a]})" for a in arms]])
    return Table(number=number, title="Local skin reactions by session of onset", body=body, population=population,
                 source="ADAE, ADEX", footnotes=[
                     "Local skin reactions: terms flagged local_reaction in the study's AE dictionary (erythema, "
                     "irritation, paraesthesia, muscle twitching, oedema, pruritus, burning ...).",
                     "n (%): subjects whose reaction began at that session; percentage of the subjects treated at "
                     "that session."])


def _summary(values: Sequence[float], decimals: int) -> list[str]:
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if not len(x):
        return ["0", "", "", ""]
    sd = format_half_up(float(np.std(x, ddof=1)), decimals + 1) if len(x) > 1 else ""
    return [str(len(x)), f"{format_half_up(float(x.mean()), decimals)} ({sd})",
            format_half_up(float(np.median(x)), decimals),
            f"{format_half_up(float(x.min()), decimals)}, {format_half_up(float(x.max()), decimals)}"]


def _per_treatment_exposure(adex: pd.DataFrame, pop: pd.DataFrame) -> pd.DataFrame:
    """Split-face studies: sessions completed, compliance and treatment duration of each subject and treatment
    (side), from ADEX (``USUBJID``, ``TRTA``, ``CSESS``, ``COMPLPCT``, ``TRTDURD``)."""
    done = adex[adex["EXOUTCM"].astype(str).str.upper() == "COMPLETED"] if "EXOUTCM" in adex.columns else adex
    done = done.drop_duplicates(["USUBJID", "TRTA", "ASESSN"])
    treated = adex.drop_duplicates(["USUBJID", "TRTA"])[["USUBJID", "TRTA"]]
    counts = done.groupby(["USUBJID", "TRTA"]).agg(CSESS=("ASESSN", "nunique"), first=("ADT", "min"),
                                                  last=("ADT", "max")).reset_index()
    out = treated.merge(counts, on=["USUBJID", "TRTA"], how="left")
    out["CSESS"] = out["CSESS"].fillna(0)
    out["TRTDURD"] = out["last"] - out["first"] + 1
    if "NSESSPL" in pop.columns:
        planned = out["USUBJID"].map(pop.set_index("USUBJID")["NSESSPL"])
        out["COMPLPCT"] = 100.0 * out["CSESS"] / pd.to_numeric(planned, errors="coerce")
    return out


def exposure_table(adex: pd.DataFrame, adsl: pd.DataFrame, *, number: str, arm: str = "TRT01A",
                   population: str = "Safety population") -> Table:
    """Exposure by arm: sessions completed, compliance, treatment duration (per subject) and the dose per
    session of each ADEX parameter (per session), as n, mean (SD), median, min, max.

    In a split-face study (ADEX has ``SIDE``) the columns are the treatments, not the side sequences: every
    subject received both, one on each side, and each side's sessions, duration and dose count under its
    treatment.
    """
    pop, arms, n = safety_denominators(adsl, arm)
    notes = []
    subjects, column = pop, arm
    if "SIDE" in adex.columns and adex["SIDE"].notna().any() and "ADT" in adex.columns:
        adex = adex[adex["USUBJID"].isin(pop["USUBJID"])]
        subjects, column, arms = _per_treatment_exposure(adex, pop), "TRTA", order_arms(adex["TRTA"])
        n = {a: int(subjects.loc[subjects["TRTA"].astype(str) == a, "USUBJID"].nunique()) for a in arms}
        notes.append("Split-face study: each subject received both treatments, one on each side of the face; N is "
                     "the subjects treated with each, and a side's sessions and dose count under its treatment.")
    rows: list[list[str]] = []
    per_subject = [("CSESS", "Sessions completed", 1), ("COMPLPCT", "Compliance (%)", 1),
                   ("TRTDURD", "Treatment duration (days)", 1)]
    stats = ("n", "Mean (SD)", "Median", "Min, Max")
    for col, label, dec in per_subject:
        if col not in subjects.columns:
            continue
        cols = [_summary(pd.to_numeric(subjects.loc[subjects[column].astype(str) == a, col],
                                       errors="coerce").tolist(), dec) for a in arms]
        for k, stat in enumerate(stats):
            rows.append([label if k == 0 else "", stat, *[c[k] for c in cols]])
    done = adex[adex["EXOUTCM"].astype(str).str.upper() == "COMPLETED"] if "EXOUTCM" in adex.columns else adex
    # dose parameters are withheld (empty) while blinded; the output on-time and treatment time are not
    blinded = bool(len(done)) and pd.to_numeric(done.loc[done["PARAMCD"] == "CHARGE", "AVAL"],
                                                errors="coerce").isna().all()
    for code, grp in done.groupby("PARAMCD", sort=False):
        label = str(grp["PARAM"].iloc[0]) if "PARAM" in grp.columns else str(code)
        values = pd.to_numeric(grp["AVAL"], errors="coerce").abs()
        values = values[values > 0]
        small = float(values.min()) if len(values) else 0.0
        dec = 0 if small >= 100 else 2 if small >= 1 else 3  # three or more significant digits in every column
        cols = [_summary(pd.to_numeric(grp.loc[grp["TRTA"].astype(str) == a, "AVAL"], errors="coerce").tolist(),
                         dec) for a in arms]
        for k, stat in enumerate(stats):
            rows.append([label if k == 0 else "", stat, *[c[k] for c in cols]])
    body = pd.DataFrame(rows, columns=["Exposure", "Statistic", *[f"{a} (N={n[a]})" for a in arms]])
    return Table(number=number, title="Extent of exposure: sessions, compliance and dose per session",
                 body=body, population=population, source="ADSL, ADEX", footnotes=[
                     "Sessions, compliance (completed / planned sessions) and duration per subject; dose per "
                     "completed session, integrated by the bench from scope captures.",
                     *(["Dose values are empty while the study is blinded."] if blinded else []), *notes])


def no_events_table(adsl: pd.DataFrame, *, number: str, title: str, arm: str = "TRT01A",
                    population: str = "Safety population") -> Table:
    """A table whose events did not occur: the arms with their N and a row that says so."""
    _, arms, n = safety_denominators(adsl, arm)
    body = pd.DataFrame([["No subject had such an event", *["0"] * len(arms)]],
                        columns=["System organ class / Preferred term", *[f"{a} (N={n[a]})" for a in arms]])
    return Table(number=number, title=title, body=body, population=population, source="ADAE, ADSL")
