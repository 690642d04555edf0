"""Report figures: every ``fig_*`` function takes a tidy DataFrame plus column names and returns a plotly
figure in the house style, numbered (``"Figure 14.2.1 …"``) and footnoted with source, program and run time."""

from toolkit.report.figures.consort import ConsortCounts, consort_counts, fig_consort
from toolkit.report.figures.efficacy import (
    fig_box,
    fig_forest,
    fig_mean_change,
    fig_trajectories,
    fig_waterfall,
)
from toolkit.report.figures.photos import fig_photo_panel, load_image
from toolkit.report.figures.safety import ae_incidence, fig_ae_incidence
from toolkit.report.figures.sensitivity import fig_tipping_point
from toolkit.report.figures.survival import fig_km, kaplan_meier
from toolkit.report.figures.waveform import fig_capture, fig_dose, fig_waveform

__all__ = [
    "ConsortCounts",
    "ae_incidence",
    "consort_counts",
    "fig_ae_incidence",
    "fig_box",
    "fig_consort",
    "fig_capture",
    "fig_dose",
    "fig_forest",
    "fig_km",
    "fig_mean_change",
    "fig_photo_panel",
    "fig_tipping_point",
    "fig_trajectories",
    "fig_waterfall",
    "fig_waveform",
    "kaplan_meier",
    "load_image",
]
