"""The report bundle: ``data/<study-id>/report/`` with an index, figures, tables, datasets and a manifest.

The builder assembles whatever the study's data folder holds and says plainly what it could not use: each
missing or unreadable input becomes a "not available" line in the index (and in :attr:`ReportBundle.missing`)
instead of an error. The bundle is written to a temporary folder beside the target and moved into place at the
end, so an interrupted build never leaves a half-written report.

Inputs (all optional; ``<d>`` is the study data folder):

==========================================  =========================================================
``<d>/analysis/adsl.*``                     CONSORT diagram (Figure 14.1.1), demographics (Table 14.1.1),
                                            subject listing (Listing 16.2.1)
``<d>/analysis/<bds>.*``                    any dataset with ``PARAMCD``, ``AVAL`` and a visit column
                                            (e.g. ``adeff``): mean change, box plots, trajectories, waterfall
``<d>/analysis/adtte.*``                    Kaplan–Meier of time to first visible improvement
``<d>/analysis/adae.*`` or ``ae.*``         AE incidence figure and Table 14.3.1
``<d>/analysis/adex.*``                     dose per session
``<d>/analysis/results/*.csv|json``         results tables (stats vocabulary) and subgroup forest plots
``<d>/photos/derived/<subject>/*.png|jpg``  photo panels (overlays as the imaging step drew them)
``<d>/analysis/xf.*``                       listing of photographs that failed QC (metrics NOT DONE)
``<d>/waveforms/**/*.npz``                  delivered waveforms (read by ``toolkit.delivery.captures``)
``<d>/truth.json``                          closed-loop check of estimates against simulated truth
``<d>/photo-truth.csv``                     measurement validation: each photo's measured change against its
                                            known true change (simulated studies)
``<d>/analysis/*.xpt`` and metadata         copied to ``datasets/``
==========================================  =========================================================
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from toolkit.errors import DataError, ToolkitError
from toolkit.paths import study_data_dir
from toolkit.report import figures as F
from toolkit.report import safety_tables as S
from toolkit.report.estimand_tables import estimand_report, is_estimand_table
from toolkit.report.export import FigureExporter, StaticExportUnavailable, write_html
from toolkit.report.inputs import find_dataset, pick_column, read_results, read_table, read_truth
from toolkit.report.manifest import MANIFEST_NAME, verify_manifest, write_manifest
from toolkit.report.plan_tables import COLUMN_WORDS, plan_tables
from toolkit.report.style import figure_info
from toolkit.report.tables import (
    Table,
    ae_table,
    demographics_table,
    format_p_value,
    listing_table,
    results_table,
    to_html,
    write_csv,
    write_docx,
    write_rtf,
)

__all__ = ["ReportBundle", "ReportItem", "build_report", "resolve_study"]

_ARM_COLUMNS = ("TRT01A", "TRTA", "TRT01P", "TRTP", "ARM", "arm")
_VISIT_COLUMNS = ("AVISIT", "VISIT", "visit")
_MAX_ENDPOINTS = 6
_MAX_PHOTO_FIGURES = 4
_MAX_WAVEFORMS = 3
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_SECTION_TITLES = {
    "14.1": "14.1 Demographic data and disposition",
    "14.2": "14.2 Efficacy",
    "14.3": "14.3 Safety",
    "16.2": "16.2 Subject data listings",
}


def _panel_images(files: list[Path]) -> list[Path]:
    """Up to four images of one subject for a panel.

    Overlays written by the photo analysis (``<visit number>_<visit>_<view>_<overlay>.jpg``, sorted in visit
    order) give the first and the last visit's wrinkle maps and the last visit's displacement field; other
    files are taken in name order.
    """
    kinds: dict[str, list[Path]] = {}
    for f in files:
        kinds.setdefault(f.stem.rsplit("_", 1)[-1], []).append(f)
    wrinkles = kinds.get("wrinkles", [])
    if not wrinkles:
        return files[:4]
    chosen = [wrinkles[0]] + wrinkles[-1:] * (len(wrinkles) > 1)
    return chosen + kinds.get("displacement", [])[-1:]


def _panel_label(path: Path) -> str:
    """``004_S4_frontal_wrinkles`` → ``S4 frontal · wrinkles``; other names are shown as they are."""
    parts = path.stem.split("_")
    if len(parts) >= 3 and parts[0].isdigit():
        return " ".join(parts[1:-1]) + " · " + parts[-1]
    return path.stem


@dataclass
class ReportItem:
    """One figure, table or dataset of the bundle.

    Attributes
    ----------
    kind : {'figure', 'table', 'dataset'}
    number : str
        ICH E3 number (empty for datasets).
    title : str
    files : list of str
        Paths relative to the report folder.
    """

    kind: str
    number: str
    title: str
    files: list[str] = field(default_factory=list)

    @property
    def section(self) -> str:
        """``"14.2"`` for ``"14.2.3"``."""
        return ".".join(self.number.split(".")[:2])


@dataclass
class ReportBundle:
    """A built report.

    Attributes
    ----------
    study_id : str
    root : Path
        ``data/<study-id>/report``.
    figures, tables, datasets : list of ReportItem
    missing : list of str
        Inputs that were absent or unusable, with the reason (also listed in the index).
    static_export : bool
        Whether PNG/SVG/PDF files were written.
    static_message : str or None
        Why static export was skipped, and how to enable it.
    closed_loop : DataFrame or None
        Estimated vs true effects, when ``truth.json`` exists.
    measurement_validation : DataFrame or None
        Slope, bias and repeatability of each photo endpoint against the photos' known true change (simulated
        studies with ``photo-truth.csv``).
    """

    study_id: str
    root: Path
    figures: list[ReportItem] = field(default_factory=list)
    tables: list[ReportItem] = field(default_factory=list)
    datasets: list[ReportItem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    static_export: bool = False
    static_message: str | None = None
    closed_loop: pd.DataFrame | None = None
    measurement_validation: pd.DataFrame | None = None

    @property
    def index(self) -> Path:
        """The report's ``index.html``."""
        return self.root / "index.html"

    @property
    def manifest(self) -> Path:
        """The report's ``manifest.json``."""
        return self.root / MANIFEST_NAME

    def verify(self) -> list[str]:
        """Re-hash every file against the manifest; returns problems (empty when intact)."""
        return verify_manifest(self.root)

    def _repr_html_(self) -> str:
        lines = self.summary().splitlines()
        items = "".join(f"<li>{html.escape(line.strip())}</li>" for line in lines[1:])
        return (f"<b>Report for study {html.escape(self.study_id)}</b>: <a href='{self.index.as_uri()}' "
                f"target='_blank'>{html.escape(str(self.index))}</a><ul>{items}</ul>")

    def summary(self) -> str:
        """A few lines for the command line."""
        lines = [f"report for study {self.study_id}: {self.index}",
                 f"  {len(self.figures)} figures, {len(self.tables)} tables, {len(self.datasets)} datasets",
                 f"  static export: {'PNG/SVG/PDF written' if self.static_export else 'skipped'}"]
        if self.static_message:
            lines.append(f"  {self.static_message}")
        if self.closed_loop is not None and len(self.closed_loop):
            cov = self.closed_loop["covered"]
            lines.append(f"  closed-loop check: {int(cov.sum())} of {int(cov.notna().sum())} true effects "
                         "inside the 95% CI")
        for m in self.missing:
            lines.append(f"  not available: {m}")
        return "\n".join(lines)


def resolve_study(study: str | Path) -> tuple[str, Path]:
    """Find the study id and data folder from a study id, a study folder or ``study.yaml``, or a data folder.

    Parameters
    ----------
    study : str or Path
        ``"EPMC-01"`` (a folder under the data root), ``studies/EPMC-01`` or ``studies/EPMC-01/study.yaml``
        (the id is read from the study file), or ``data/EPMC-01`` itself.

    Returns
    -------
    (str, Path)
        Study id and data folder.

    Raises
    ------
    DataError
        If no data folder exists for the study.
    """
    path = Path(study).expanduser()
    study_file = None
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        study_file = path
    elif path.is_dir() and (path / "study.yaml").is_file():
        study_file = path / "study.yaml"
    if study_file is not None:
        study_id = _study_id_from_file(study_file)
        data_dir = study_data_dir(study_id)
    elif path.is_dir():
        study_id, data_dir = path.resolve().name, path.resolve()
    else:
        study_id = str(study)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", study_id):
            raise DataError(f"--study {study!r}: not a study id, a study folder/study.yaml, or a data folder")
        data_dir = study_data_dir(study_id)
    if not data_dir.is_dir():
        raise DataError(f"no data for study {study_id!r} at {data_dir}; run the study (or `toolkit demo`) first, "
                        "or set TOOLKIT_DATA_DIR to the data root that holds it")
    return study_id, data_dir


def _study_id_from_file(path: Path) -> str:
    try:
        from toolkit.study.loader import load_study
    except ImportError:  # the study model is optional for reading an id
        load_study = None
    if load_study is not None:
        return str(load_study(path).id)
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: cannot read the study id: {exc}") from None
    if not isinstance(doc, dict) or not doc.get("id"):
        raise DataError(f"{path}: no top-level 'id' field naming the study")
    return str(doc["id"])


class _Numbers:
    """Sequential ICH E3 numbers per section, separately for figures and tables."""

    def __init__(self) -> None:
        self._next: dict[tuple[str, str], int] = {}

    def next(self, kind: str, section: str) -> str:
        k = self._next.get((kind, section), 1)
        self._next[(kind, section)] = k + 1
        return f"{section}.{k}"


class _Builder:
    def __init__(self, study_id: str, data_dir: Path, work: Path) -> None:
        self.study_id = study_id
        self.data_dir = data_dir
        self.analysis = data_dir / "analysis"
        self.work = work
        self.numbers = _Numbers()
        self.figures: list[tuple[go.Figure, str]] = []  # figure, file stem
        self.tables: list[ReportItem] = []
        self.datasets: list[ReportItem] = []
        self.missing: list[str] = []
        self.results: dict[str, pd.DataFrame] = {}
        self.results_meta: dict = _results_meta(self.analysis / "results")
        from toolkit.report.privacy import report_privacy

        #: blinding state, publishable faces and audit head (decide what may be shown)
        self.privacy = report_privacy(study_id, data_dir)
        self.table_html: dict[str, str] = {}
        self.closed_loop: pd.DataFrame | None = None
        self.measurement_validation: pd.DataFrame | None = None
        self.adsl: pd.DataFrame | None = None

    # -- helpers -------------------------------------------------------------------------------------
    def attempt(self, what: str, step: Callable[[], None]) -> None:
        """Run one part of the report; a user-data problem becomes a 'not available' note."""
        try:
            step()
        except ToolkitError as exc:
            self.missing.append(f"{what}: {exc}")
        except (ValueError, KeyError, TypeError) as exc:
            # inputs written by other steps may not match what a figure expects; say so, keep building
            self.missing.append(f"{what}: unexpected content ({type(exc).__name__}: {exc})")

    def add_figure(self, fig: go.Figure) -> None:
        info = figure_info(fig)
        self.figures.append((fig, "figure_" + info.number.replace(".", "_")))

    def fig_number(self, section: str) -> str:
        return self.numbers.next("figure", section)

    def add_table(self, table: Table, *, landscape: bool = False) -> None:
        tables_dir = self.work / "tables"
        files = []
        for suffix, writer in (("docx", write_docx), ("rtf", write_rtf)):
            path = tables_dir / f"{table.slug}.{suffix}"
            writer(table, path, landscape=landscape)
            files.append(path.relative_to(self.work).as_posix())
        csv = write_csv(table, tables_dir / f"{table.slug}.csv")
        files.append(csv.relative_to(self.work).as_posix())
        self.tables.append(ReportItem("table", table.number, table.title, files))
        self.table_html[table.number] = to_html(table)

    def dataset(self, names: tuple[str, ...], label: str) -> pd.DataFrame | None:
        path = find_dataset(self.analysis, names)
        if path is None:
            self.missing.append(f"{label}: no {' / '.join(n + '.csv' for n in names[:2])} in {self.analysis}")
            return None
        return read_table(path)

    # -- parts ---------------------------------------------------------------------------------------
    def subject_level(self) -> None:
        adsl = self.dataset(("adsl",), "subject-level data (CONSORT, demographics)")
        if adsl is None:
            return
        self.adsl = adsl
        arm = pick_column(adsl, ("TRT01P", "TRTP", "ARM", "TRT01A", "arm"))
        if arm is None:
            raise DataError(f"adsl in {self.analysis}: no treatment column (one of TRT01P, ARM, TRT01A)")
        self.add_figure(F.fig_consort(adsl, arm=arm, number=self.fig_number("14.1"), source="ADSL"))
        cont = {c: lbl for c, lbl in (("AGE", "Age (years)"), ("BMIBL", "BMI (kg/m2)"),
                                      ("HEIGHTBL", "Height (cm)"), ("WEIGHTBL", "Weight (kg)")) if c in adsl}
        cat = {c: lbl for c, lbl in (("SEX", "Sex"), ("RACE", "Race"), ("ETHNIC", "Ethnicity"),
                                     ("FITZPAT", "Fitzpatrick skin type"), ("SKINTYPE", "Skin type"),
                                     ("AGEGR1", "Age group")) if c in adsl}
        pop = adsl
        pop_label = "All randomised subjects"
        for flag, label in (("SAFFL", "Safety population"), ("ITTFL", "Intent-to-treat population")):
            if flag in adsl.columns:
                pop, pop_label = adsl[adsl[flag].astype(str).str.upper() == "Y"], label
                break
        if cont or cat:
            self.add_table(demographics_table(pop, arm=arm, continuous=cont, categorical=cat,
                                              number=self.numbers.next("table", "14.1"), population=pop_label))
        else:
            self.missing.append("demographics table: ADSL has none of AGE, SEX, RACE, BMIBL")
        words = {"USUBJID": "Subject", arm: "Treatment", "AGE": "Age (years)", "SEX": "Sex", "RACE": "Race",
                 "SAFFL": "Safety", "ITTFL": "ITT", "PPROTFL": "Per protocol", "EFFFL": "Efficacy",
                 "CSESS": "Sessions completed", "COMPLPCT": "Compliance (%)", "EOTSTT": "End of treatment",
                 "DCTREAS": "Reason treatment ended", "EOSSTT": "End of study", "DCSREAS": "Reason study ended"}
        cols = {c: label for c, label in words.items() if c in adsl.columns}
        self.add_table(listing_table(adsl, columns=cols, number=self.numbers.next("table", "16.2"),
                                     title="Subject disposition and demographics listing", source="ADSL",
                                     footnotes=["Safety, ITT, Per protocol, Efficacy: Y when the subject belongs "
                                                "to that analysis population (ADSL SAFFL, ITTFL, PPROTFL, EFFFL)."]),
                       landscape=True)

    def efficacy(self) -> None:
        if not self.analysis.is_dir():
            self.missing.append(f"efficacy datasets: no analysis folder {self.analysis}")
            return
        skip = {"adsl", "adae", "ae", "adtte", "adex", "ds", "dv", "dm", "ex", "xf"}
        # one dataset per stem: the same data exported as CSV and Parquet is drawn once
        stems: dict[str, Path] = {}
        for path in sorted(self.analysis.iterdir()):
            if path.suffix.lower() in (".csv", ".parquet") and path.stem.lower() not in skip:
                stems.setdefault(path.stem.lower(), path)
        for path in stems.values():
            self.attempt(f"efficacy dataset {path.name}", lambda p=path: self._bds(p))
        if not any(f.layout.meta.get("kind") == "mean_change" for f, _ in self.figures):
            self.missing.append("efficacy figures: no BDS dataset (PARAMCD, AVAL, AVISIT) in "
                                f"{self.analysis} with change from baseline (CHG or BASE)")

    def _bds(self, path: Path) -> None:
        data = read_table(path)
        visit = pick_column(data, _VISIT_COLUMNS)
        arm = pick_column(data, _ARM_COLUMNS)
        if not {"PARAMCD", "AVAL"} <= set(data.columns) or visit is None or arm is None:
            return  # not a BDS dataset; nothing to say
        if "CHG" not in data.columns and "BASE" in data.columns:
            data = data.assign(CHG=pd.to_numeric(data["AVAL"], errors="coerce") - pd.to_numeric(data["BASE"],
                                                                                                  errors="coerce"))
        visit_num = pick_column(data, ("AVISITN", "VISITNUM"))
        subject = pick_column(data, ("USUBJID", "SUBJID")) or "USUBJID"
        params = list(dict.fromkeys(data["PARAMCD"].dropna().astype(str)))
        planned = [str(a.get("endpoint")) for a in self.results_meta.get("plan") or []]
        rank = {p: k for k, p in enumerate(dict.fromkeys(planned))}
        params.sort(key=lambda p: rank.get(p, len(rank)))  # endpoints in plan order (primary first)
        if len(params) > _MAX_ENDPOINTS:
            self.missing.append(f"{path.name}: {len(params)} parameters; figures drawn for the first "
                                f"{_MAX_ENDPOINTS} only")
        for k, param in enumerate(params[:_MAX_ENDPOINTS]):
            sub = data[data["PARAMCD"].astype(str) == param]
            label = str(sub["PARAM"].iloc[0]) if "PARAM" in sub.columns and sub["PARAM"].notna().any() else param
            source = f"{path.name} (PARAMCD={param})"
            common = {"arm": arm, "visit": visit, "visit_num": visit_num}
            if "CHG" in sub.columns and pd.to_numeric(sub["CHG"], errors="coerce").notna().any():
                self.add_figure(F.fig_mean_change(sub, **common, value="CHG", parameter=f"Change in {label}",
                                                  number=self.fig_number("14.2"),
                                                  title=f"Mean change from baseline in {label} by arm",
                                                  source=source))
            self.add_figure(F.fig_box(sub, **common, value="AVAL", parameter=label, number=self.fig_number("14.2"),
                                      source=source))
            if k == 0:
                self.add_figure(F.fig_trajectories(sub, **common, subject=subject, value="AVAL", parameter=label,
                                                   number=self.fig_number("14.2"),
                                                   title=f"Individual trajectories of {label}", source=source))
                if "CHG" in sub.columns:
                    order = F.efficacy.visit_order(sub, visit, visit_num, None, what=source)
                    last = sub[sub[visit].astype(str) == order[-1]].drop_duplicates(subject)
                    if not last.empty:
                        self.add_figure(F.fig_waterfall(last, subject=subject, arm=arm, value="CHG",
                                                        parameter=f"Change in {label} at {order[-1]}",
                                                        number=self.fig_number("14.2"),
                                                        title=f"Individual change in {label} at {order[-1]}",
                                                        source=source))

    def rater_agreement(self) -> None:
        """Inter- and intra-rater agreement of the blinded rating station's grades (see
        :mod:`toolkit.report.agreement_table`)."""
        from toolkit.report.agreement_table import agreement_table, station_grades

        found = station_grades(self.study_id, self.data_dir)
        if found is None or found[0].empty:  # a study graded without the station (imported scores): no section
            return
        grades, levels = found
        table = agreement_table(grades, levels=levels, number=self.numbers.next("table", "14.2"))
        if table is None:
            self.missing.append("rater agreement: no two raters (or no re-grades) share two photo sets yet")
            return
        self.add_table(table)

    def time_to_event(self) -> None:
        tte = self.dataset(("adtte",), "time to first visible improvement (Kaplan-Meier)")
        if tte is None:
            return
        arm = pick_column(tte, _ARM_COLUMNS)
        if "PARAMCD" in tte.columns:
            tte = tte[tte["PARAMCD"] == tte["PARAMCD"].iloc[0]]
        unit = "days"
        if "AVALU" in tte.columns and tte["AVALU"].notna().any():
            unit = str(tte["AVALU"].dropna().iloc[0]).lower()
        param = str(tte["PARAM"].dropna().iloc[0]) if "PARAM" in tte.columns and tte["PARAM"].notna().any() else ""
        unit_word = "sessions" if unit.startswith("session") else unit
        title = f"Time to first visible improvement in {unit_word} (Kaplan–Meier)"
        notes = [f"Event: {param}." if param else "", "Subjects without improvement are censored at their last "
                 "assessed " + ("session." if unit_word == "sessions" else "time.")]
        self.add_figure(F.fig_km(tte, arm=arm or "TRT01A", number=self.fig_number("14.2"), source="ADTTE",
                                 time_unit=unit_word, title=title, footnotes=[n for n in notes if n]))
        results = read_results(self.analysis / "results") if (self.analysis / "results").is_dir() else {}
        medians = results.get("time_to_improvement_medians")
        if "SIDE" in tte.columns and tte["SIDE"].notna().any():
            notes.append("Split-face study: each side of the face is a unit, treated with one arm (n counts "
                         "sides); the two sides of a subject are a pair.")
        test = results.get("time_to_improvement_logrank")
        if test is not None and {"statistic", "p_value"} <= set(test.columns) and len(test):
            row = test.iloc[0]
            paired = str(row.get("method", "")).startswith("stratified")
            p_text = format_p_value(float(row["p_value"]))
            notes.append(f"{'Log-rank test stratified by subject (paired sides)' if paired else 'Log-rank test'}: "
                         f"chi-square {float(row['statistic']):.2f}, {int(row.get('df', 1))} df, p "
                         f"{p_text if p_text.startswith('<') else '= ' + p_text}.")
        if medians is not None and {"treatment", "median_session"} <= set(medians.columns):
            body = medians[[c for c in ("treatment", "n", "events", "median_session", "ci_low", "ci_high")
                            if c in medians.columns]].copy()
            ci = [f"({_num_or_blank(lo)}, {_num_or_blank(hi)})" if pd.notna(lo) or pd.notna(hi) else ""
                  for lo, hi in zip(body.pop("ci_low"), body.pop("ci_high"), strict=True)] \
                if "ci_low" in body.columns else None
            body["median_session"] = [_num_or_blank(v) or "not reached" for v in body["median_session"]]
            body = body.rename(columns=COLUMN_WORDS)
            if ci is not None:
                body["95% CI of the median"] = [c.replace("(, )", "") for c in ci]
            self.add_table(Table(number=self.numbers.next("table", "14.2"), title=title.replace(
                " (Kaplan–Meier)", ": Kaplan–Meier median by arm"), body=body, source="ADTTE",
                population="Intent-to-treat population", footnotes=[
                    *[n for n in notes if n], "Median with its Brookmeyer-Crowley 95% confidence interval; 'not "
                    "reached' when fewer than half improved."]))

    def results_tables(self) -> None:
        try:
            self.results = read_results(self.analysis / "results")
        except DataError as exc:
            self.missing.append(f"analysis results: {exc}")
            return
        if not self.results:
            self.missing.append(f"analysis results: no CSV/JSON tables in {self.analysis / 'results'}")
            return
        planned, used = plan_tables(self.results, self.results_meta,
                                    next_number=lambda: self.numbers.next("table", "14.2"))
        for table in planned:
            self.add_table(table)
        for name, frame in self.results.items():
            if "estimate" not in frame.columns or is_estimand_table(name):
                continue
            title = name.replace("_", " ").replace(".", ": ")
            if name in used:
                if {"treatment", "visit", "ci_low", "ci_high"} <= set(frame.columns) and "contrast" not in frame:
                    self.attempt(f"LS means figure {name}", lambda f=frame, n=name: self._lsmeans_figures(
                        f, "treatment", "visit", n))
                continue
            arm_col = pick_column(frame, ("treatment", "arm", "TRT01A", "TRTA", "TRT01P"))
            visit_col = pick_column(frame, ("visit", "AVISIT"))
            if arm_col and visit_col and {"ci_low", "ci_high"} <= set(frame.columns) and "contrast" not in frame:
                self.attempt(f"LS means figure {name}", lambda f=frame, a=arm_col, v=visit_col, n=name:
                             self._lsmeans_figures(f, a, v, n))
            if {"subgroup", "level", "ci_low", "ci_high"} <= set(frame.columns):
                self.attempt(f"forest plot {name}", lambda f=frame, t=title, n=name: self.add_figure(F.fig_forest(
                    f, contrast="contrast" if "contrast" in f.columns else None, number=self.fig_number("14.2"),
                    title=f"Treatment effect by subgroup ({t})", source=f"analysis/results/{n}")))
            self.attempt(f"results table {name}", lambda f=frame, t=title, n=name: self.add_table(results_table(
                f, number=self.numbers.next("table", "14.2"), title=t.capitalize(),
                source=f"analysis/results/{n}")))

    def estimands(self) -> None:
        """Per estimand: its attributes, main and sensitivity estimates (forest plot), tipping point, events."""
        if not self.results or not self.results_meta.get("estimands"):
            return
        part = estimand_report(self.results, self.results_meta,
                               next_table=lambda: self.numbers.next("table", "14.2"),
                               next_listing=lambda: self.numbers.next("table", "16.2"),
                               next_figure=lambda: self.fig_number("14.2"))
        for table, landscape in part.tables:
            self.add_table(table, landscape=landscape)
        for fig in part.figures:
            self.add_figure(fig)
        self.missing += part.missing

    def _lsmeans_figures(self, frame: pd.DataFrame, arm: str, visit: str, name: str) -> None:
        endpoint = pick_column(frame, ("endpoint", "PARAMCD", "param", "parameter"))
        groups = frame.groupby(endpoint, sort=False) if endpoint else [(None, frame)]
        planned = {str(a["id"]): a for a in self.results_meta.get("plan") or []}
        item = planned.get(name.rsplit("_", 1)[0])
        for key, sub in groups:
            label = f" of {key}" if key is not None else ""
            if item is not None:
                label = (f" of change from baseline in {item['endpoint_label']} ({item['model_label'].split(' (')[0]}, "
                         f"{item['population']} population)")
            self.add_figure(F.fig_mean_change(
                sub, arm=arm, visit=visit, visit_num=None, value="estimate", ci_low="ci_low", ci_high="ci_high",
                parameter=f"LS mean{label}", number=self.fig_number("14.2"),
                title=f"Model-based LS means{label} by visit and arm", source=f"analysis/results/{name}"))

    def safety(self) -> None:
        ae = self.dataset(("adae", "ae"), "adverse events")
        if ae is None:
            return
        arm = pick_column(ae, ("TRTA", "TRT01A", "ARM", "arm"))
        population, pop_arm = None, "TRT01A"
        if self.adsl is not None:
            pop_arm = pick_column(self.adsl, ("TRT01A", "TRT01P", "ARM")) or "TRT01A"
            population = self.adsl
            if "SAFFL" in self.adsl.columns:
                population = self.adsl[self.adsl["SAFFL"].astype(str).str.upper() == "Y"]
        if arm is None:
            raise DataError("adverse events: no treatment column (one of TRTA, TRT01A, ARM); export ADAE with "
                            "`toolkit data export`")
        soc = pick_column(ae, ("AEBODSYS", "AESOC")) or "AEBODSYS"
        pt = pick_column(ae, ("AEDECOD", "AETERM")) or "AEDECOD"
        if pt == "AEDECOD" and "AETERM" in ae.columns:  # an uncoded term is shown verbatim, marked
            ae = ae.assign(AEDECOD=ae["AEDECOD"].where(ae["AEDECOD"].notna() & (ae["AEDECOD"].astype(str) != ""),
                                                       ae["AETERM"].astype(str) + " (uncoded)"))
        kw = {"arm": arm, "soc": soc, "pt": pt, "population": population, "population_arm": pop_arm}
        self.add_figure(F.fig_ae_incidence(ae, **kw, number=self.fig_number("14.3"), source="ADAE"))
        section = "14.3.1"
        if self.adsl is not None and "SAFFL" in self.adsl.columns and "TRTEMFL" in ae.columns:
            self.add_table(S.ae_overview_table(ae, self.adsl, number=self.numbers.next("table", section),
                                               arm=pop_arm, ae_arm=arm))
        self.add_table(ae_table(ae, **kw, number=self.numbers.next("table", section)))
        if self.adsl is None or "SAFFL" not in self.adsl.columns:
            return
        if "AESEV" in ae.columns:
            self.add_table(S.ae_severity_table(ae, self.adsl, number=self.numbers.next("table", section),
                                               arm=pop_arm, ae_arm=arm))
        for flag, title in (("RELFL", "Treatment-related treatment-emergent adverse events by system organ class "
                                      "and preferred term"),
                            ("AESER", "Serious treatment-emergent adverse events by system organ class and "
                                      "preferred term")):
            if flag in ae.columns:
                sub = ae[ae[flag].astype(str).str.upper() == "Y"]
                if "TRTEMFL" in sub.columns:
                    sub = sub[sub["TRTEMFL"].astype(str).str.upper() == "Y"]
                number = self.numbers.next("table", section)
                self.add_table(ae_table(sub, **kw, number=number, title=title) if not sub.empty else
                               S.no_events_table(self.adsl, number=number, title=title, arm=pop_arm))
        adex = read_table(find_dataset(self.analysis, ("adex",))) if find_dataset(self.analysis, ("adex",)) else None
        if "ASESSN" in ae.columns:
            self.add_table(S.local_reactions_by_session_table(ae, self.adsl, adex, arm=pop_arm, ae_arm=arm,
                                                              number=self.numbers.next("table", section)))
        if adex is not None and {"PARAMCD", "AVAL", "TRTA"} <= set(adex.columns):
            self.add_table(S.exposure_table(adex, self.adsl, arm=pop_arm, number=self.numbers.next("table", "14.3.2")))
        self.safety_listings(ae)

    def safety_listings(self, ae: pd.DataFrame) -> None:
        """Listings of adverse events, protocol deviations and sessions that did not complete."""
        cols = {c: h for c, h in (("USUBJID", "Subject"), ("TRTA", "Treatment"), ("AETERM", "Reported term"),
                                  ("AEDECOD", "Preferred term"), ("AEBODSYS", "System organ class"),
                                  ("AESEV", "Severity"), ("AESER", "Serious"), ("AEREL", "Relation"),
                                  ("AEOUT", "Outcome"), ("ASTDY", "Onset day"), ("ASESSN", "Session"),
                                  ("TRTEMFL", "Emergent"), ("UNCODFL", "Uncoded")) if c in ae.columns}
        notes = ["Onset day relative to the first session (day 1); session: last session on or before onset."]
        if "UNCODFL" in ae.columns and (ae["UNCODFL"].astype(str) == "Y").any():
            n = int((ae["UNCODFL"].astype(str) == "Y").sum())
            notes.append(f"{n} reported term(s) are not in the study's AE dictionary: kept verbatim, flagged "
                         "Uncoded = Y.")
        self.add_table(listing_table(ae, columns=cols, sort_by=("USUBJID", "ASTDY"),
                                     number=self.numbers.next("table", "16.2"), title="Listing of adverse events",
                                     population="Safety population", source="ADAE", footnotes=notes),
                       landscape=True)
        dv_path = find_dataset(self.analysis, ("dv",))
        if dv_path is not None:
            dv = read_table(dv_path)
            body = dv if not dv.empty else pd.DataFrame({"USUBJID": ["(none)"], "DVCAT": [""], "DVTERM": [""],
                                                         "DVSTDTC": [""]})
            self.add_table(listing_table(body, columns={"USUBJID": "Subject", "DVCAT": "Category",
                                                        "DVTERM": "Deviation", "DVSTDTC": "Recorded"},
                                         number=self.numbers.next("table", "16.2"),
                                         title="Listing of protocol deviations", source="DV"), landscape=True)
        ex_path = find_dataset(self.analysis, ("ex",))
        if ex_path is not None:
            ex = read_table(ex_path)
            if "EXOUTCM" in ex.columns:
                bad = ex[ex["EXOUTCM"].astype(str).str.upper() != "COMPLETED"]
                if bad.empty:
                    bad = pd.DataFrame({"USUBJID": ["(none)"]})
                cols = {c: h for c, h in (("USUBJID", "Subject"), ("EXTRT", "Treatment"), ("EXSESS", "Session"),
                                          ("EXLAT", "Side"), ("EXOUTCM", "Outcome"), ("EXADJ", "Reason"),
                                          ("EXSTDTC", "Start")) if c in bad.columns}
                self.add_table(listing_table(bad, columns=cols, number=self.numbers.next("table", "16.2"),
                                             title="Listing of aborted or interrupted sessions and device "
                                                   "deficiencies", source="EX", footnotes=[
                                                 "Sessions whose outcome is not COMPLETED: aborted by the bench's "
                                                 "checks or the operator, or ended with the output state "
                                                 "unknown (a device deficiency)."]), landscape=True)

    def dose(self) -> None:
        if self.privacy.blinded:
            self.missing.append("dose per session: withheld while the study is blinded (the dose reveals the arm)")
            return
        ex = self.dataset(("adex",), "dose per session")
        if ex is None:
            return
        session = pick_column(ex, ("ASESSN", "SESSION", "SESSNUM", "EXSEQ", "AVISITN", "session"))
        arm = pick_column(ex, _ARM_COLUMNS)
        value = pick_column(ex, ("AVAL", "dose", "DOSE"))
        if session is None or arm is None or value is None:
            raise DataError("adex: needs a session column (ASESSN/AVISITN), an arm (TRTA) and a value (AVAL)")
        if "PARAMCD" in ex.columns:
            ex = ex[ex["PARAMCD"] == ex["PARAMCD"].dropna().iloc[0]]
        unit = str(ex["AVALU"].dropna().iloc[0]) if "AVALU" in ex.columns and ex["AVALU"].notna().any() else None
        param = str(ex["PARAM"].dropna().iloc[0]) if "PARAM" in ex.columns and ex["PARAM"].notna().any() else "Dose"
        if not pd.to_numeric(ex[value], errors="coerce").notna().any():
            self.missing.append("dose per session: ADEX holds no dose values (withheld while the study is blinded)")
            return
        self.add_figure(F.fig_dose(ex, arm=arm, session=session, value=value, parameter=param, unit=unit,
                                   number=self.fig_number("14.3"), source="ADEX"))

    def photos(self) -> None:
        derived = self.data_dir / "photos" / "derived"
        images = sorted(p for p in derived.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES) \
            if derived.is_dir() else []
        if not images:
            self.missing.append(f"photo panels: no overlay images under {derived}")
            return
        groups: dict[Path, list[Path]] = {}
        for p in images:
            groups.setdefault(p.parent, []).append(p)
        from toolkit.report.privacy import masked_face

        for folder, files in list(groups.items())[:_MAX_PHOTO_FIGURES]:
            chosen = _panel_images(files)
            # a face is shown only with the subject's recorded consent to publication; others are pixelated
            consented = folder.name in self.privacy.publishable
            panel = pd.DataFrame({
                "image": [str(f) if consented else masked_face(f) for f in chosen],
                "label": [_panel_label(f) + ("" if consented else " (face masked)") for f in chosen],
            })
            rel = folder.relative_to(self.data_dir).as_posix()
            self.attempt(f"photo panel {rel}", lambda d=panel, r=rel: self.add_figure(F.fig_photo_panel(
                d, number=self.fig_number("14.2"), title=f"Photographs with overlays ({Path(r).name})",
                source=r)))

    def photo_qc(self) -> None:
        """Listings of the photographs whose analysis failed QC, from XF (their metrics are NOT DONE with the
        reason), and of those that passed with warnings, from SUPPXF: a reader sees which photos the photo
        endpoints left out and why, and which to look at (new spots after a session may be a skin reaction)."""
        path = find_dataset(self.analysis, ("xf",))
        if path is None:
            return  # a study without photo findings (or outputs without XF): nothing to list
        xf = read_table(path)
        if "XFCAT" not in xf.columns:
            raise DataError(f"{path.name}: no XFCAT column; export the findings with `toolkit data export`")
        photos = xf[xf["XFCAT"].astype(str) == "PHOTO METRIC"]
        if photos.empty:
            return
        need = ["USUBJID", "XFREFID", "XFREASND", "VISIT"]
        if missing := [c for c in need if c not in photos.columns]:
            raise DataError(f"{path.name}: photo findings without {', '.join(missing)}; export the findings "
                            "with `toolkit data export`")
        from toolkit.store.sdtm import XF_QC_FAILED

        photos = photos.assign(USUBJID=photos["USUBJID"].astype(str), XFREFID=photos["XFREFID"].astype(str))
        reason = photos["XFREASND"].astype("string").fillna("")
        failed = photos[reason.str.startswith(XF_QC_FAILED)].drop_duplicates(["USUBJID", "XFREFID"])
        photos = photos.drop_duplicates(["USUBJID", "XFREFID"])  # one row per photograph
        n_all = len(photos)
        body = _photo_rows(failed, [_qc_reason_words(r.removeprefix(XF_QC_FAILED))
                                    for r in failed["XFREASND"].astype(str)])
        notes = [
            f"{len(failed)} of {n_all} analysed photograph(s) failed quality control. Their metrics are not used: "
            "no endpoint value rests on them and they do not count as the measured photo a per-protocol rule "
            "asks for; XF reports them as not done (XFSTAT = NOT DONE, reason in XFREASND).",
            f"Every photo's QC status with the full reasons: toolkit photos qc --study {self.study_id}",
        ]
        self._photo_listing(body, "Failed check(s)", "Listing of photographs excluded from the photo endpoints "
                            "(failed quality control)", path.name.split(".")[0].upper(), notes)
        self._photo_warnings(photos)

    def _photo_warnings(self, photos: pd.DataFrame) -> None:
        """Listing of the photographs (``photos``: one XF row each) that passed QC with warnings (SUPPXF, QNAM
        PHQCWARN, one record per photo by XFREFID), with their visit and capture time from XF."""
        from toolkit.store.sdtm import XF_QC_WARNINGS

        need = ["USUBJID", "IDVAR", "IDVARVAL", "QNAM", "QVAL"]
        path = find_dataset(self.analysis, ("suppxf",))
        supp = read_table(path) if path is not None else pd.DataFrame()
        if supp.empty:
            supp = pd.DataFrame(columns=need)
        elif missing := [c for c in need if c not in supp.columns]:
            raise DataError(f"{path.name}: supplemental qualifiers without {', '.join(missing)}; export the "
                            "findings with `toolkit data export`")
        supp = supp[(supp["QNAM"].astype(str) == XF_QC_WARNINGS) & (supp["IDVAR"].astype(str) == "XFREFID")]
        warned = pd.DataFrame({"USUBJID": supp["USUBJID"].astype(str), "XFREFID": supp["IDVARVAL"].astype(str),
                               "QVAL": supp["QVAL"]})
        rows = photos.merge(warned, on=["USUBJID", "XFREFID"])
        words = [_qc_reason_words(str(v)) for v in rows["QVAL"]]
        body = _photo_rows(rows, words)
        counts = pd.Series([w for ws in words for w in ws.split("; ")]).value_counts(sort=False)
        notes = [
            f"{len(rows)} of {len(photos)} analysed photograph(s) passed quality control with warnings"
            + (f" ({', '.join(f'{w}: {n}' for w, n in counts.items())})" if len(counts) else "")
            + ". Their metrics are used; the warnings ask for a look at the photograph (SUPPXF, QNAM = PHQCWARN).",
        ]
        spotted = [k for k, w in enumerate(words) if "new spots" in w.split("; ")]
        if spotted:
            notes.append("new spots: ten or more spots on the skin (red dots, a breakout, a rash) that the baseline "
                         "photograph does not have; the wrinkle measures leave them out. A spot that appeared after "
                         "a session may be a skin reaction: look at the photograph and record any adverse event "
                         "(the photographs are listed again with the adverse events ongoing that day).")
        notes.append(f"Every photo's warnings in full: toolkit photos qc --study {self.study_id}")
        self._photo_listing(body, "Warning(s)", "Listing of photographs measured with quality-control warnings",
                            "XF, SUPPXF", notes)
        if spotted:
            self._new_spots(body.iloc[spotted])

    def _new_spots(self, body: pd.DataFrame) -> None:
        """Listing of the photographs with new spots on the skin beside the subject's adverse events ongoing on
        the day each was taken (AE), so that a skin reaction without a recorded adverse event stands out."""
        path = find_dataset(self.analysis, ("ae",))
        ae = read_table(path) if path is not None else pd.DataFrame()
        need = ["USUBJID", "AESTDTC"]
        if ae.empty:
            ae = pd.DataFrame(columns=need)
        elif missing := [c for c in need if c not in ae.columns]:
            raise DataError(f"{path.name}: adverse events without {', '.join(missing)}; export them with "
                            "`toolkit data export`")
        ae = ae.assign(USUBJID=ae["USUBJID"].astype(str), _start=_day(ae["AESTDTC"]),
                       _end=_day(ae["AEENDTC"]) if "AEENDTC" in ae else pd.NaT)
        events = []
        for subject, taken in zip(body["USUBJID"], _day(body["XFDTC"]), strict=True):
            if pd.isna(taken):
                events.append("unknown (no capture date)")
                continue
            # started on or before the day, and not ended before it (no end date: ongoing)
            mine = ae[(ae["USUBJID"] == subject) & (ae["_start"] <= taken) & ~(ae["_end"] < taken)]
            events.append("; ".join(f"{_ae_term(row)} (from {row['_start']:%Y-%m-%d})"
                                    for _, row in mine.iterrows()) or "none recorded")
        listing = body.assign(REASON=events)
        none = sum(e == "none recorded" for e in events)
        notes = [
            "Photographs flagged new_spots: ten or more spots on the skin that the subject's baseline photograph does "
            "not have. Beside each, the subject's adverse events ongoing on the day it was taken (AE: start on or "
            "before that day, not ended before it).",
        ]
        if none:
            notes.append(f"{none} of {len(events)} such photograph(s) with no adverse event recorded that day: look "
                         "at the photograph, and record the skin reaction as an adverse event if it is one.")
        self._photo_listing(listing, "Adverse events ongoing that day", "Listing of photographs with new spots on "
                            "the skin (possible skin reactions) and adverse events", "XF, SUPPXF, AE", notes)

    def _photo_listing(self, body: pd.DataFrame, what: str, title: str, source: str, notes: list[str]) -> None:
        self.add_table(listing_table(body, columns={"USUBJID": "Subject", "VISIT": "Visit", "XFREFID": "Photograph",
                                                    "XFDTC": "Captured", "REASON": what},
                                     sort_by=("USUBJID", "VISITNUM", "XFREFID"),
                                     number=self.numbers.next("table", "16.2"), title=title, source=source,
                                     footnotes=notes), landscape=True)

    def waveforms(self) -> None:
        if self.privacy.blinded:
            self.missing.append(
                "waveform figures: withheld while the study is blinded (a delivered waveform reveals the arm)"
            )
            return
        folder = self.data_dir / "waveforms"
        captures = sorted(folder.rglob("*.npz")) if folder.is_dir() else []
        if not captures:
            self.missing.append(f"waveform figures: no captures (*.npz) under {folder}")
            return
        for path, what in _representative_captures(captures, _MAX_WAVEFORMS):
            self.attempt(f"waveform {path.name}", lambda p=path, w=what: self._waveform(p, w))

    def _waveform(self, path: Path, what: str = "") -> None:
        from toolkit.delivery.captures import read_capture
        from toolkit.errors import StoreError

        try:
            capture = read_capture(path)
        except StoreError as exc:  # it names the file and what is wrong with it
            raise DataError(str(exc)) from None
        title = f"Delivered waveform: {what}" if what else "Delivered waveform"
        rel = path.relative_to(self.data_dir)
        # waveforms/<subject>/<session>/<delivery>/<capture>.npz
        where = (f"subject {rel.parts[1]}, session {rel.parts[2]}" if len(rel.parts) == 5
                 else f"{path.parent.name}/{path.stem}")
        self.add_figure(F.fig_capture(capture, number=self.fig_number("14.3"), title=f"{title} ({where})",
                                      source=rel.as_posix()))

    def truth(self) -> None:
        truth = read_truth(self.data_dir / "truth.json")
        if truth is None:
            return
        if not self.results:
            self.missing.append("closed-loop check: truth.json exists but there are no analysis results")
            return
        self.closed_loop = closed_loop_check(truth, self.results)
        path = self.work / "tables" / "closed_loop_check.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.closed_loop.to_csv(path, index=False)

    def validation(self) -> None:
        """Slope, bias and repeatability of each photo endpoint against the photos' known true change."""
        from toolkit.stats.measurement_validation import measurement_agreement

        truth_path = self.data_dir / "photo-truth.csv"
        if not truth_path.is_file():
            return
        bds = self.dataset(("adeff",), "measurement validation")
        if bds is None:
            return
        truth = pd.read_csv(truth_path)
        keys = ["USUBJID", "AVISITN", "PARAMCD"]
        data = bds[[c for c in (*keys, "AVAL", "CHG", "BASE") if c in bds.columns]].copy()
        for c in ("AVAL", "CHG", "BASE", "AVISITN"):
            if c in data:
                data[c] = pd.to_numeric(data[c], errors="coerce")
        # the change from baseline where the endpoint has a baseline; a lift is itself a change
        chg = data["CHG"] if "CHG" in data else pd.Series(np.nan, index=data.index)
        data["MEASURED"] = chg.where(chg.notna(), data["AVAL"])
        side = pick_column(bds, ("SIDE",))
        if side is not None and bds[side].astype("string").fillna("").str.strip().ne("").any():
            return  # split-face rows are per side; the truth is per face
        merged = truth.merge(data, on=keys, how="inner").dropna(subset=["MEASURED", "TRUE_CHG"])
        if merged.empty:
            self.missing.append("measurement validation: no measured photo matches photo-truth.csv")
            return
        rows = []
        for param, g in merged.groupby("PARAMCD", sort=False):
            level = float(g["BASE"].mean()) if "BASE" in g and g["BASE"].notna().any() else None
            # a subject's follow-ups share one baseline photo and its error: the bias's interval is per subject
            res = measurement_agreement(g, truth="TRUE_CHG", measured="MEASURED", level=level,
                                        cluster="USUBJID" if g["USUBJID"].nunique() >= 2 else None)
            rows.append(res.assign(PARAMCD=param, level=level))
        self.measurement_validation = pd.concat(rows, ignore_index=True)[
            ["PARAMCD", "n", "slope", "slope_ci_low", "slope_ci_high", "bias", "bias_ci_low", "bias_ci_high",
             "relative_bias", "relative_bias_ci_low", "relative_bias_ci_high", "error_sd", "wsd", "rc", "wcv", "r",
             "level"]]
        path = self.work / "tables" / "measurement_validation.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.measurement_validation.to_csv(path, index=False)

    def copy_datasets(self) -> None:
        if not self.analysis.is_dir():
            return
        target = self.work / "datasets"
        picked = [p for p in sorted(self.analysis.iterdir()) if p.is_file() and (
            p.suffix.lower() == ".xpt" or any(w in p.stem.lower() for w in ("meta", "define", "variables",
                                                                          "conformance")))]
        if not picked:
            self.missing.append(f"datasets: no XPT files or variable metadata in {self.analysis}")
            return
        target.mkdir(parents=True, exist_ok=True)
        for p in picked:
            shutil.copy2(p, target / p.name)
            self.datasets.append(ReportItem("dataset", "", p.name, [f"datasets/{p.name}"]))


def _photo_rows(photos: pd.DataFrame, reasons: list[str]) -> pd.DataFrame:
    """The rows of a photo listing (one per photo of XF, with its reason), or one ``(none)`` row."""
    if photos.empty:
        return pd.DataFrame({"USUBJID": ["(none)"], "VISITNUM": [np.nan], "VISIT": [""], "XFREFID": [""],
                             "XFDTC": [""], "REASON": [""]})
    return pd.DataFrame({
        "USUBJID": photos["USUBJID"].astype(str).to_numpy(),
        "VISITNUM": pd.to_numeric(photos["VISITNUM"], errors="coerce").to_numpy() if "VISITNUM" in photos else np.nan,
        "VISIT": photos["VISIT"].astype(str).to_numpy(),
        "XFREFID": photos["XFREFID"].astype(str).to_numpy(),
        "XFDTC": photos["XFDTC"].astype("string").fillna("").to_numpy() if "XFDTC" in photos else "",
        "REASON": reasons,
    })


def _day(values: pd.Series) -> pd.Series:
    """ISO 8601 dates or date-times -> their day (NaT where there is none)."""
    return pd.to_datetime(values.astype("string").str[:10], errors="coerce")


def _ae_term(row: pd.Series) -> str:
    """An adverse event's coded term, else its verbatim term."""
    for col in ("AEDECOD", "AETERM"):
        if col in row.index and pd.notna(row[col]) and str(row[col]).strip():
            return str(row[col]).strip()
    return "adverse event"


def _qc_reason_words(codes_text: str) -> str:
    """'BLUR, BASELINE_MISMATCH' (XF's failed QC codes) -> 'blur; baseline mismatch' (each check once)."""
    codes = (c.strip().lower().replace("_", " ") for c in codes_text.split(","))
    return "; ".join(dict.fromkeys(c for c in codes if c))


def _num_or_blank(value: object) -> str:
    return "" if value is None or pd.isna(value) else f"{float(value):g}"


def _results_meta(results_dir: Path) -> dict:
    """``results.json`` of the analysis step (plan in words, models, failures), or empty when absent/unreadable."""
    path = results_dir / "results.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _norm(text: object) -> str:
    return re.sub(r"[\s_]+", " ", re.sub(r"\s*(-|vs\.?|versus)\s*", " - ", str(text).strip().lower()))


def _with_interval(value: float, low: float, high: float) -> str:
    """``+0.34 (-0.69, +1.37)``: three significant digits of the largest of the three, the same decimals for all."""
    if not np.isfinite([value, low, high]).all():
        return "" if not np.isfinite(value) else f"{value:+.3g}"
    top = max(abs(value), abs(low), abs(high))
    decimals = max(0, 2 - int(np.floor(np.log10(top)))) if top > 0 else 2
    return " ".join([f"{value:+.{decimals}f}", f"({low:+.{decimals}f}, {high:+.{decimals}f})"])


def _validation_html(table: pd.DataFrame | None) -> str:
    """The measurement-validation section of the index (nothing for a study without known truth)."""
    if table is None:
        return ""
    parts = ["<h2>Measurement validation: photo endpoints against simulated truth</h2>",
             "<p>Every follow-up photo of the simulated study has a known true change (fold length and depth "
             "drawn, lift applied). Measured against true change per photo: the slope of a least-squares fit "
             "(1 = proportional), the mean error (bias; its 95 % CI counts each subject once, as a subject's "
             "follow-ups share one baseline photo) and the repeatability of one measurement (within-subject SD, "
             "RC = 2.77 · wSD; wCV relative to the mean baseline value). The relative bias is the bias over the mean "
             "true change. A treatment contrast compares arms measured alike, so an error common to every photo "
             "cancels in it; what reaches the contrast is the slope "
             "(<a href='tables/measurement_validation.csv'>CSV</a>).</p><table class='data'><tr>"
             + "".join(f"<th>{_esc(c)}</th>" for c in ("endpoint", "photos", "slope (95% CI)", "bias (95% CI)",
                                                       "relative bias (95% CI)", "wSD", "RC", "wCV", "r")) + "</tr>"]
    for r in table.itertuples(index=False):
        wcv = "" if pd.isna(r.wcv) else f"{100 * r.wcv:.1f} %"
        rel = ("" if pd.isna(r.relative_bias) else
               f"{100 * r.relative_bias:+.1f} % ({100 * r.relative_bias_ci_low:+.1f}, {100 * r.relative_bias_ci_high:+.1f})")
        parts.append(f"<tr><td>{_esc(r.PARAMCD)}</td><td>{r.n}</td><td>{r.slope:.3f} ({r.slope_ci_low:.3f}, "
                     f"{r.slope_ci_high:.3f})</td><td>{_with_interval(r.bias, r.bias_ci_low, r.bias_ci_high)}</td>"
                     f"<td>{rel}</td><td>{r.wsd:.3g}</td><td>{r.rc:.3g}</td><td>{wcv}</td><td>{r.r:.3f}</td></tr>")
    parts.append("</table>")
    return "\n".join(parts)


def closed_loop_check(truth: pd.DataFrame, results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Match each true effect with its estimate in the results and say whether the CI covers it.

    Parameters
    ----------
    truth : DataFrame
        ``endpoint``, ``contrast``, ``visit`` (may be empty), ``value`` (see :func:`read_truth`).
    results : dict of DataFrame
        Results tables with a ``contrast`` column, ``estimate``, ``ci_low``, ``ci_high`` and an endpoint column
        (``endpoint``, ``PARAMCD``, ``param`` or ``parameter``) or the endpoint in the table name. When several
        visits match and truth names none, the last row (the final visit) is used.

    Returns
    -------
    DataFrame
        ``endpoint``, ``contrast``, ``visit``, ``truth``, ``estimate``, ``ci_low``, ``ci_high``, ``covered``
        (``None`` when no estimate was found), ``source``.
    """
    rows = []
    for t in truth.itertuples(index=False):
        best = None
        for name, frame in results.items():
            if not {"contrast", "estimate", "ci_low", "ci_high"} <= set(frame.columns):
                continue
            mask = frame["contrast"].map(_norm) == _norm(t.contrast)
            ep_col = pick_column(frame, ("endpoint", "PARAMCD", "param", "parameter", "paramcd"))
            if t.endpoint:
                if ep_col is not None:
                    mask &= frame[ep_col].astype(str).str.lower() == t.endpoint.lower()
                elif t.endpoint.lower() not in name.lower():
                    continue
            vis_col = pick_column(frame, ("visit", "AVISIT"))
            if t.visit and vis_col is not None:
                mask &= frame[vis_col].astype(str) == t.visit
            hit = frame[mask]
            if not hit.empty:
                best = (name, hit.iloc[-1])
                break
        rec = {"endpoint": t.endpoint, "contrast": t.contrast, "visit": t.visit, "truth": t.value,
               "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "covered": None, "source": ""}
        if best is not None:
            name, row = best
            lo, hi = float(row["ci_low"]), float(row["ci_high"])
            rec.update(estimate=float(row["estimate"]), ci_low=lo, ci_high=hi, covered=bool(lo <= t.value <= hi),
                       source=name)
            vis_col = pick_column(row.to_frame().T, ("visit", "AVISIT"))
            if not t.visit and vis_col is not None:
                rec["visit"] = str(row[vis_col])
        rows.append(rec)
    return pd.DataFrame(rows)


def build_report(
    study: str | Path,
    *,
    static: bool = True,
    browser_path: str | Path | None = None,
) -> ReportBundle:
    """Build ``data/<study-id>/report/`` from what the study's data folder holds.

    Parameters
    ----------
    study : str or Path
        Study id, study folder / ``study.yaml``, or the study's data folder (see :func:`resolve_study`).
    static : bool
        Also export PNG (300 dpi), SVG and PDF of every figure through one browser session. Without a usable
        browser the report is still built (HTML figures) and :attr:`ReportBundle.static_message` says how to
        enable static export.
    browser_path : str or Path, optional
        Chromium/Chrome binary for static export (default: ``$TOOLKIT_BROWSER`` or what kaleido finds).

    Returns
    -------
    ReportBundle

    Raises
    ------
    DataError
        If the study has no data folder or the report folder cannot be written.
    """
    study_id, data_dir = resolve_study(study)
    target = data_dir / "report"
    try:
        work = Path(tempfile.mkdtemp(prefix=".report-", dir=data_dir))
    except OSError as exc:
        raise DataError(f"cannot write the report under {data_dir}: {exc.strerror}") from None
    try:
        b = _Builder(study_id, data_dir, work)
        b.attempt("subject-level data", b.subject_level)
        b.attempt("efficacy", b.efficacy)
        b.attempt("analysis results", b.results_tables)  # first: the primary analysis is Table 14.2.1
        b.attempt("estimands", b.estimands)
        b.attempt("time to event", b.time_to_event)
        b.attempt("closed-loop check", b.truth)
        b.attempt("measurement validation", b.validation)
        b.attempt("rater agreement", b.rater_agreement)
        b.attempt("photos", b.photos)
        b.attempt("photo quality control", b.photo_qc)
        b.attempt("safety", b.safety)
        b.attempt("dose", b.dose)
        b.attempt("waveforms", b.waveforms)
        b.attempt("datasets", b.copy_datasets)
        bundle = ReportBundle(study_id=study_id, root=target, tables=b.tables, datasets=b.datasets,
                              missing=b.missing, closed_loop=b.closed_loop,
                              measurement_validation=b.measurement_validation)
        _write_figures(b, bundle, static=static, browser_path=browser_path)
        (work / "index.html").write_text(_index_html(bundle, b), encoding="utf-8")
        created = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        head = b.privacy.audit_head
        write_manifest(work, {"study_id": study_id, "created": created, "static_export": bundle.static_export,
                              "static_message": bundle.static_message, "not_available": bundle.missing,
                              "blinding": b.privacy.basis,
                              "audit_head": {"seq": head[0], "hash": head[1]} if head else None})
        old = None
        if target.exists():
            old = data_dir / f".report-old-{os.getpid()}"
            os.replace(target, old)
        os.replace(work, target)
        os.chmod(target, 0o755)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return bundle


def _write_figures(b: _Builder, bundle: ReportBundle, *, static: bool, browser_path) -> None:
    fig_dir = b.work / "figures"
    items = []
    for fig, stem in b.figures:
        info = figure_info(fig)
        # the pages of a bundle share one local plotly.min.js (offline) instead of 5 MB each
        html_path = write_html(fig, fig_dir / f"{stem}.html", plotlyjs="directory")
        item = ReportItem("figure", info.number, info.title, [html_path.relative_to(b.work).as_posix()])
        items.append(item)
    if static and b.figures:
        try:
            with FigureExporter(browser_path=browser_path) as exporter:
                written = exporter.export_many([(fig, fig_dir / stem) for fig, stem in b.figures])
            per_fig = len(written) // len(b.figures)
            for k, item in enumerate(items):
                item.files += [p.relative_to(b.work).as_posix() for p in written[k * per_fig:(k + 1) * per_fig]]
            bundle.static_export = True
        except StaticExportUnavailable as exc:
            bundle.static_message = str(exc)
        except ToolkitError as exc:  # a figure the browser could not render: keep the HTML report
            bundle.static_message = f"static export failed, HTML figures only: {exc}"
    elif not static:
        bundle.static_message = "static export (PNG/SVG/PDF) was not requested"
    bundle.figures = items


def _conformance_html(path: Path) -> str:
    """The appendix listing the conformance check's findings (from the export's ``conformance.csv``)."""
    head = "<h2>Appendix: conformance check of the datasets</h2>"
    if not path.is_file():
        return head + "<p class='na'>No conformance check was run (export the datasets as XPT).</p>"
    try:
        findings = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        return head + f"<p class='na'>conformance.csv cannot be read: {_esc(exc)}</p>"
    intro = ("<p>Checked before export: required and expected variables per dataset, names, labels and lengths, "
             "ISO 8601 dates, codelist values, one record per key. The datasets are described in "
             "<a href='datasets/define.xml'>define.xml</a> (Define-XML 2.1, schema-checked; "
             "<a href='datasets/define.html'>readable form</a>).</p>")
    if findings.empty:
        return head + intro + "<p>No findings.</p>"
    rows = "".join(f"<tr><td>{_esc(r.severity)}</td><td>{_esc(r.dataset)}</td><td>{_esc(r.variable)}</td>"
                   f"<td style='text-align:left'>{_esc(r.message)}</td></tr>" for r in findings.itertuples())
    return (head + intro + "<table class='data'><tr><th>Severity</th><th>Dataset</th><th>Variable</th>"
            f"<th>Finding</th></tr>{rows}</table>")


def _number_key(item: ReportItem) -> tuple[int, ...]:
    """``14.2.10`` after ``14.2.9`` and before ``16.2.1``: an item's number as integers."""
    return tuple(int(part) if part.isdigit() else 0 for part in item.number.split("."))


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _index_html(bundle: ReportBundle, b: _Builder) -> str:
    from plotly.offline import get_plotlyjs

    import toolkit

    divs = {}
    for (fig, _), item in zip(b.figures, bundle.figures, strict=True):
        divs[item.number] = fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False,
                                        config={"displaylogo": False, "responsive": False},
                                        div_id=f"fig-{item.number.replace('.', '-')}")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Report: study {_esc(bundle.study_id)}</title>",
        "<style>body{font-family:'Liberation Sans','DejaVu Sans',Arial,sans-serif;font-size:14px;margin:2em;"
        "max-width:1100px}h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #999;margin-top:2em}"
        "h3{font-size:15px}table.data{border-collapse:collapse}table.data td,table.data th{border:1px solid #bbb;"
        "padding:2px 8px;text-align:center}table.data td:first-child{text-align:left}table.data th{background:#eee}"
        "figure.table{margin:0 0 2em 0}figure.table figcaption{margin-bottom:.4em}.footnotes p{margin:.1em 0;"
        "font-size:12px;color:#333}.na{color:#7a2e00}"
        ".files a{margin-right:1em}.figure{margin-bottom:2.5em}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
        f"<h1>Report: study {_esc(bundle.study_id)}</h1>",
        f"<p>Built {_esc(_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC'))} by toolkit "
        f"{_esc(toolkit.__version__)}. Checksums and software versions: <a href='{MANIFEST_NAME}'>"
        f"{MANIFEST_NAME}</a>.</p>",
    ]
    if bundle.static_message:
        parts.append(f"<p class='na'><b>Static export:</b> {_esc(bundle.static_message)}</p>")
    parts.append("<h2>Contents</h2><ul>")
    # in the order of their numbers (a listing made while the efficacy tables are is numbered 16.2, not 14.2)
    for item in sorted(bundle.figures, key=_number_key):
        parts.append(f"<li><a href='#fig-{item.number.replace('.', '-')}'>Figure {_esc(item.number)}</a> "
                     f"{_esc(item.title)}</li>")
    for item in sorted(bundle.tables, key=_number_key):
        kind = "Listing" if item.number.startswith("16") else "Table"
        parts.append(f"<li><a href='{_esc(item.files[0])}'>{kind} {_esc(item.number)}</a> {_esc(item.title)}</li>")
    parts.append("</ul>")
    for section, heading in _SECTION_TITLES.items():
        figs = [f for f in bundle.figures if f.section == section]
        tabs = [t for t in bundle.tables if t.section == section]
        if not figs and not tabs:
            continue
        parts.append(f"<h2>{_esc(heading)}</h2>")
        for t in tabs:
            kind = "Listing" if t.number.startswith("16") else "Table"
            links = " ".join(f"<a href='{_esc(f)}'>{_esc(Path(f).suffix.lstrip('.').upper())}</a>" for f in t.files)
            parts.append(f"<h3>{kind} {_esc(t.number)} {_esc(t.title)}</h3><p class='files'>{links}</p>")
            parts.append(b.table_html.get(t.number, ""))
        for f in figs:
            links = " ".join(f"<a href='{_esc(p)}'>{_esc(Path(p).suffix.lstrip('.').upper())}</a>" for p in f.files)
            parts.append(f"<div class='figure'><h3>Figure {_esc(f.number)} {_esc(f.title)}</h3>"
                         f"<p class='files'>{links}</p>{divs[f.number]}</div>")
    parts.append("<h2>Closed-loop check: estimates against simulated truth</h2>")
    if bundle.closed_loop is None:
        parts.append("<p class='na'>not available: no truth.json in the study folder (only simulated studies "
                     "have one).</p>")
    else:
        cl = bundle.closed_loop
        parts.append("<p>Each simulated true effect against the estimate of the analysis and its 95% CI "
                     "(<a href='tables/closed_loop_check.csv'>CSV</a>).</p><table class='data'><tr>"
                     + "".join(f"<th>{_esc(c)}</th>" for c in ("endpoint", "contrast", "visit", "truth",
                                                               "estimate", "95% CI", "CI covers truth"))
                     + "</tr>")
        for r in cl.itertuples(index=False):
            ci = "" if pd.isna(r.ci_low) else f"({r.ci_low:.3g}, {r.ci_high:.3g})"
            cov = "no estimate" if r.covered is None else ("yes" if r.covered else "NO")
            est = "" if pd.isna(r.estimate) else f"{r.estimate:.3g}"
            parts.append(f"<tr><td>{_esc(r.endpoint)}</td><td>{_esc(r.contrast)}</td><td>{_esc(r.visit)}</td>"
                         f"<td>{r.truth:.3g}</td><td>{est}</td><td>{ci}</td><td>{cov}</td></tr>")
        parts.append("</table>")
    parts.append(_validation_html(bundle.measurement_validation))
    parts.append(_conformance_html(b.work / "datasets" / "conformance.csv"))
    parts.append("<h2>Datasets</h2>")
    if bundle.datasets:
        parts.append("<ul>" + "".join(f"<li><a href='{_esc(d.files[0])}'>{_esc(d.title)}</a></li>"
                                      for d in bundle.datasets) + "</ul>")
    else:
        parts.append("<p class='na'>not available: no XPT datasets were found.</p>")
    if bundle.missing:
        parts.append("<h2>Not available</h2><ul class='na'>")
        parts += [f"<li>not available: {_esc(m)}</li>" for m in bundle.missing]
        parts.append("</ul>")
    parts.append(f"<script>window.REPORT = {json.dumps({'figures': len(bundle.figures)})};</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


#: how many capture files are read, at most, to find one of each kind
_CAPTURES_SEARCHED = 2000


def _representative_captures(captures: list[Path], limit: int) -> list[tuple[Path, str]]:
    """One capture of each kind (in path order: the first subjects' first sessions), at most ``limit``: a live
    burst at full amplitude of each modality and view, then the dummy-load verification of a pulse train. A
    capture whose trigger was forced (nothing reached the electrodes) or whose level was not checked is not
    chosen. Files written without an envelope fall back to the first ``limit`` in path order."""
    words = {("V", "pulse"): "electroporation pulse", ("V", "train"): "electroporation pulse train",
             ("A", "cycles"): "microcurrent cycles"}
    found: dict[tuple, Path] = {}
    from toolkit.delivery.captures import read_capture_header
    from toolkit.errors import StoreError

    for path in captures[:_CAPTURES_SEARCHED]:
        try:
            names, meta = read_capture_header(path)
        except StoreError:
            continue  # drawn (and named as unreadable) only if it comes up among the first files below
        unit = next((k[-1] for k in names if k in ("envelope_V", "envelope_A")), None)
        if unit is None or meta.get("forced_trigger") or "unchecked" in (meta.get("envelope") or {}):
            continue  # no envelope, or a burst the session did not judge by level (they belong to the records)
        live = "live" in path.stem
        scale = meta.get("scale")
        if live and not (isinstance(scale, int | float) and scale >= 1.0):
            continue
        kind = (unit, str(meta.get("view")), live)
        found.setdefault(kind, path)
        if len(found) >= 2 * limit:
            break
    if not found:
        return [(p, "") for p in captures[:limit]]
    # live bursts first (electroporation, then microcurrent), then verifications, a pulse train before a pulse
    order = sorted(found, key=lambda k: (not k[2], k[0] != "V", k[1] != "train", k[1]))
    out = []
    for unit, view, live in order[:limit]:
        what = words.get((unit, view), f"{view} view")
        out.append((found[(unit, view, live)], what + (" during treatment" if live else ", dummy-load verification")))
    return out
