"""Statistical analysis: ANCOVA, MMRM, split-face, responders, safety tables."""
