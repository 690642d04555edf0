"""define.xml (Define-XML 2.1) from an export, checked against the schema; the built-in conformance check."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pandas as pd

from toolkit.store import open_store
from toolkit.store.conformance import check_datasets
from toolkit.store.datasets import Dataset, Variable
from toolkit.store.export import export_datasets

from .conftest import enrol_eligible

NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1"}


def test_export_writes_a_schema_valid_define_with_value_level_metadata(demo_study, randomized, photo_file,
                                                                       tmp_path) -> None:
    from defineutils.validate import DefineSchemaValidator

    randomized(demo_study, 3)
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        store.allocate("S-001")
        for visit in ("BASELINE", "S12"):
            path, sha = photo_file(f"S-001-{visit}")
            pid = store.add_photo("S-001", visit_id=visit, path=path, sha256=sha)
            store.add_measurements(pid, pd.DataFrame({"region": ["nasolabial_l", "nasolabial_r"],
                                                      "metric": ["wrinkle_length_mm"] * 2, "value": [10.0, 12.0]}),
                                   algorithm_version="t",
                                   qc={} if visit == "BASELINE" else {"passed": True, "flag_codes": ["new_spots"]})
        written = export_datasets(store, tmp_path)
    define = written["define.xml"]
    assert "is valid" in DefineSchemaValidator(define).validate_define_file()  # Define-XML 2.1 schema
    assert written["define.html"].stat().st_size > 10_000
    root = ET.parse(define).getroot()
    groups = {g.get("Name"): g for g in root.iter(f"{{{NS['odm']}}}ItemGroupDef")}
    assert {"DM", "DS", "EX", "AE", "DV", "XF", "ADSL", "ADEFF", "ADAE", "ADEX"} <= set(groups)
    assert groups["ADSL"].get(f"{{{NS['def']}}}Structure") == "One record per subject"
    # value-level metadata: one AVAL definition per PARAMCD of ADEFF, each with its where clause
    where = [w.get("OID") for w in root.iter(f"{{{NS['def']}}}WhereClauseDef")]
    assert "WC.ADEFF.PARAMCD.NLFLEN" in where
    items = {i.get("OID"): i for i in root.iter(f"{{{NS['odm']}}}ItemDef")}
    assert "Nasolabial wrinkle length (mm)" in ET.tostring(items["IT.ADEFF.AVAL.NLFLEN"], encoding="unicode")
    # and one QVAL definition per QNAM of a SUPP-- dataset: the photo's QC warnings in SUPPXF
    assert "WC.SUPPXF.QNAM.PHQCWARN" in where
    qval = ET.tostring(items["IT.SUPPXF.QVAL.PHQCWARN"], encoding="unicode")
    assert "Photo QC Warnings (PHQCWARN)" in qval and 'DataType="text"' in qval and 'Length="9"' in qval
    lists = {v.get("OID") for v in root.iter(f"{{{NS['def']}}}ValueListDef")}
    assert {"VL.ADEFF.AVAL", "VL.SUPPXF.QVAL"} <= lists
    # derivations: the per-protocol flag says its rule
    methods = " ".join(" ".join(m.itertext()) for m in root.iter(f"{{{NS['odm']}}}MethodDef"))
    assert "PP rule" in methods and ">= 10 completed sessions" in methods
    assert pd.read_csv(written["conformance.csv"]).query("severity == 'error'").empty


def test_conformance_finds_missing_variables_bad_names_dates_codes_and_duplicate_keys() -> None:
    frame = pd.DataFrame({"STUDYID": ["S", "S"], "DOMAIN": ["AE", "AE"], "USUBJID": ["1", "1"], "AESEQ": [1, 1],
                          "AESTDTC": ["2026-01-05", "05/01/2026"], "AESEV": ["MILD", "EXTREME"],
                          "LONGNAME9": ["x", "y"]})
    variables = [Variable("STUDYID", "Study Identifier"), Variable("DOMAIN", "Domain"),
                 Variable("USUBJID", "Unique Subject Identifier"), Variable("AESEQ", "Sequence Number", "Num"),
                 Variable("AESTDTC", "Start Date/Time"), Variable("AESEV", "Severity", codelist="MILD; MODERATE; SEVERE"),
                 Variable("LONGNAME9", "A label that is far longer than forty characters allow")]
    found = {(f.severity, f.variable, f.message.split(" ")[0]) for f in
             check_datasets([Dataset("AE", "Adverse Events", frame, variables)])}
    assert ("error", "LONGNAME9", "variable") in found  # name over 8 characters
    assert ("error", "LONGNAME9", "label") in found
    assert ("warning", "AESTDTC", "1") in found  # one date not ISO 8601
    assert ("warning", "AESEV", "value(s)") in found  # EXTREME outside the codelist
    assert ("error", "STUDYID, USUBJID, AESEQ", "2") in found  # two records share a key
    assert ("warning", "AETERM", "expected") in found
