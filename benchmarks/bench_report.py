"""Benchmark of the report room: bundle build time and static figure export, reused browser vs one per figure.

Run: ``.venv/bin/python benchmarks/bench_report.py``. Figures are printed as ratios against the named peer
measured in the same run (plotly.io.write_image, which starts a new browser for every call).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    import plotly.io as pio

    from toolkit.report import FigureExporter, build_report
    from toolkit.report.export import StaticExportUnavailable, find_browser
    from toolkit.report.synthetic import write_sample_study

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TOOLKIT_DATA_DIR"] = tmp
        study = Path(tmp) / "BENCH-1"
        write_sample_study(study, n_per_arm=20, seed=1)

        t0 = time.perf_counter()
        bundle = build_report(study, static=False)
        html_s = time.perf_counter() - t0
        n_fig = len(bundle.figures)
        print(f"report build, HTML only: {html_s:.1f} s for {n_fig} figures and {len(bundle.tables)} tables")

        try:
            find_browser()
        except StaticExportUnavailable as exc:
            print(f"static export not measured: {exc}")
            return 0

        t0 = time.perf_counter()
        bundle = build_report(study, static=True)
        static_s = time.perf_counter() - t0
        print(f"report build with PNG+SVG+PDF: {static_s:.1f} s ({3 * n_fig} static files; "
              f"{(static_s - html_s) / (3 * n_fig):.2f} s per static file over the HTML-only build)")

        # six report figures, PNG only, both ways
        figs = _figures(study / "analysis")
        out = Path(tmp) / "bench"
        out.mkdir()

        t0 = time.perf_counter()
        with FigureExporter(formats=["png"]) as exporter:
            start_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            for k, fig in enumerate(figs):
                exporter.export(fig, out / f"reused_{k}")
            reused_each = (time.perf_counter() - t1) / len(figs)
        reused_total = time.perf_counter() - t0

        # the peer starts a browser per call, so three figures give a stable per-figure time
        peer_figs = figs[:3]
        t0 = time.perf_counter()
        for k, fig in enumerate(peer_figs):
            pio.write_image(fig, out / f"peer_{k}.png", format="png", scale=300 / 96)
        peer_each = (time.perf_counter() - t0) / len(peer_figs)

        print(f"static PNG export of {len(figs)} figures:")
        print(f"  reused browser session: {reused_each:.2f} s per figure (+ {start_s:.1f} s once to start; "
              f"{reused_total:.1f} s in all)")
        print(f"  peer plotly.io.write_image (new browser per figure, first {len(peer_figs)} figures): "
              f"{peer_each:.2f} s per figure (≈ {peer_each * len(figs):.1f} s for all {len(figs)})")
        print(f"  ratio peer / reused per figure: {peer_each / reused_each:.1f}x; "
              f"for the batch including start-up: {peer_each * len(figs) / reused_total:.1f}x")
    return 0


def _figures(analysis: Path) -> list:
    import pandas as pd

    from toolkit.report import figures as F

    eff = pd.read_csv(analysis / "adeff.csv")
    eff = eff[eff["PARAMCD"] == "WRKAREA"]
    last = eff[eff["AVISIT"] == "Week 12"]
    return [F.fig_mean_change(eff), F.fig_box(eff), F.fig_trajectories(eff), F.fig_waterfall(last),
            F.fig_km(pd.read_csv(analysis / "adtte.csv")), F.fig_ae_incidence(pd.read_csv(analysis / "adae.csv"))]


if __name__ == "__main__":
    sys.exit(main())
