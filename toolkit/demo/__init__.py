"""The end-to-end demonstration: a complete simulated study on the embedded defaults.

``toolkit demo`` (and ``make demo``) runs, in order:

1. randomize the demo study and enrol a synthetic cohort (consent, patch test, allocation);
2. deliver every session through the digital twin bench over loopback TCP (pyvisa-py), with verification;
3. make each visit's photos from real portraits that ship in installed packages (scikit-image's astronaut,
   matplotlib's Grace Hopper) with a known lift and wrinkle change per arm — the truth saved beside them;
4. analyse the photos; two simulated blinded raters grade every photo set at the rating station, with a
   blind re-grade of the re-rating subset (:mod:`toolkit.demo.raters`; a split-face study's per-side grades
   come through the checked CSV import instead); adverse events through the checked CSV import;
5. unblind (recorded), export the analysis datasets, run the statistical analysis plan;
6. build the report, whose closed-loop section compares the estimated treatment effects with the truth, and
   whose rater agreement table shows how the raters agreed with each other and with themselves.

Everything goes to ``data/<study-id>/`` (``$TOOLKIT_DATA_DIR`` moves it). A folder made by an earlier demo
run is replaced; a folder with real study data is never touched.
"""

from __future__ import annotations

from toolkit.demo.run import DemoResult, run_demo

__all__ = ["DemoResult", "run_demo"]
