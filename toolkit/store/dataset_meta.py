"""What each exported dataset is: purpose, CDISC class, structure and the variables that identify a record."""

from __future__ import annotations

__all__ = ["DATASET_META", "SUPP_META"]

#: dataset -> (purpose, class, subclass, structure, keys)
DATASET_META = {
    "DM": ("Tabulation", "SPECIAL PURPOSE", None, "One record per subject", ("STUDYID", "USUBJID")),
    "DS": ("Tabulation", "EVENTS", None, "One record per disposition status or protocol milestone per subject",
           ("STUDYID", "USUBJID", "DSSEQ")),
    "EX": ("Tabulation", "INTERVENTIONS", None, "One record per delivery session per subject",
           ("STUDYID", "USUBJID", "EXSEQ")),
    "AE": ("Tabulation", "EVENTS", None, "One record per adverse event per subject", ("STUDYID", "USUBJID", "AESEQ")),
    "DV": ("Tabulation", "EVENTS", None, "One record per protocol deviation per subject",
           ("STUDYID", "USUBJID", "DVSEQ")),
    "XF": ("Tabulation", "FINDINGS", None, "One record per finding per photo or rating per subject",
           ("STUDYID", "USUBJID", "XFTESTCD", "XFLOC", "XFLAT", "VISITNUM", "XFREFID", "XFEVAL")),
    "ADSL": ("Analysis", "SUBJECT LEVEL ANALYSIS DATASET", None, "One record per subject", ("STUDYID", "USUBJID")),
    "ADEFF": ("Analysis", "BASIC DATA STRUCTURE", None, "One record per subject per parameter per analysis visit",
              ("STUDYID", "USUBJID", "PARAMCD", "AVISITN")),
    "ADAE": ("Analysis", "OCCURRENCE DATA STRUCTURE", None, "One record per adverse event per subject",
             ("STUDYID", "USUBJID", "AESEQ")),
    "ADEX": ("Analysis", "BASIC DATA STRUCTURE", None, "One record per delivery session per parameter",
             ("STUDYID", "USUBJID", "EXREFID", "PARAMCD")),
    "ADTTE": ("Analysis", "BASIC DATA STRUCTURE", "TIME-TO-EVENT", "One record per subject per parameter",
              ("STUDYID", "USUBJID", "PARAMCD")),
}
#: SUPP-- datasets
SUPP_META = ("Tabulation", "RELATIONSHIP", None, "One record per supplemental qualifier per record",
         ("STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"))
