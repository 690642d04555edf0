"""Report-ready figures, tables, datasets and the report bundle.

- figures: ``fig_*`` functions (tidy DataFrame + column names in, plotly figure in the house style out)
- export: :func:`write_html` (self-contained), :class:`FigureExporter` (PNG 300 dpi, SVG, PDF; one browser)
- tables: :class:`Table` with ICH E3 numbering, written as DOCX, RTF and CSV; builders for 14.1/14.2/14.3/16.2
- bundle: :func:`build_report` assembles ``data/<study-id>/report/`` with an index and a manifest
"""

from toolkit.report.bundle import ReportBundle, ReportItem, build_report, closed_loop_check, resolve_study
from toolkit.report.export import (
    FigureExporter,
    StaticExportUnavailable,
    find_browser,
    set_png_dpi,
    write_html,
)
from toolkit.report.figures import (
    ConsortCounts,
    ae_incidence,
    consort_counts,
    fig_ae_incidence,
    fig_box,
    fig_consort,
    fig_dose,
    fig_forest,
    fig_km,
    fig_mean_change,
    fig_photo_panel,
    fig_trajectories,
    fig_waterfall,
    fig_waveform,
    kaplan_meier,
)
from toolkit.report.manifest import software_versions, verify_manifest, write_manifest
from toolkit.report.style import TEMPLATE_NAME, ArmStyle, FigureInfo, arm_styles, figure_info, order_arms
from toolkit.report.tables import (
    Table,
    ae_table,
    demographics_table,
    listing_table,
    results_table,
    write_csv,
    write_docx,
    write_rtf,
)

__all__ = [
    "TEMPLATE_NAME",
    "ArmStyle",
    "ConsortCounts",
    "FigureExporter",
    "FigureInfo",
    "ReportBundle",
    "ReportItem",
    "StaticExportUnavailable",
    "Table",
    "ae_incidence",
    "ae_table",
    "arm_styles",
    "build_report",
    "closed_loop_check",
    "consort_counts",
    "demographics_table",
    "fig_ae_incidence",
    "fig_box",
    "fig_consort",
    "fig_dose",
    "fig_forest",
    "fig_km",
    "fig_mean_change",
    "fig_photo_panel",
    "fig_trajectories",
    "fig_waterfall",
    "fig_waveform",
    "figure_info",
    "find_browser",
    "kaplan_meier",
    "listing_table",
    "order_arms",
    "resolve_study",
    "results_table",
    "set_png_dpi",
    "software_versions",
    "verify_manifest",
    "write_csv",
    "write_docx",
    "write_html",
    "write_manifest",
    "write_rtf",
]
