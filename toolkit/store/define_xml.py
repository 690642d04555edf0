"""Define-XML 2.1 for the exported datasets: datasets, variables, codelists, value-level metadata per PARAMCD
and derivations, built with odmlib, checked against the Define-XML 2.1 schema and rendered as ``define.html``
with the CDISC stylesheet (both through defineutils, offline).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from toolkit.errors import DataError
from toolkit.store.dataset_meta import DATASET_META, SUPP_META
from toolkit.store.datasets import Dataset, Variable
from toolkit.store.xpt import char_lengths

__all__ = ["build_define", "datasets_from_folder", "publish_metadata", "write_define"]

_OID = re.compile(r"[^A-Za-z0-9._-]")


def _oid(*parts: str) -> str:
    return ".".join(_OID.sub("_", str(p)) for p in parts)


def _origin_type(origin: str) -> str:
    head = origin.split(":")[0].strip().lower()
    if head.startswith(("crf", "collected")):
        return "Collected"
    if head.startswith(("assigned", "allocation list", "study schedule")):
        return "Assigned"
    if head.startswith("protocol"):
        return "Protocol"
    if head.startswith(("adsl.", "predecessor")) or re.match(r"^[a-z]{2,6}\.[a-z0-9]+$", head):
        return "Predecessor"
    return "Derived"


def _data_type(var: Variable, values: pd.Series) -> str:
    if var.type == "Char":
        return "text"
    if var.format.upper().startswith("DATE"):
        return "integer"
    x = pd.to_numeric(values, errors="coerce").dropna()
    return "integer" if len(x) and (x == x.round()).all() else "float"


def _codelist_items(spec: str) -> list[tuple[str, str | None]] | None:
    """``"Y; N"`` -> [(Y, None), (N, None)]; ``"1 = MILD; 2 = MODERATE"`` -> coded values with decodes; a single
    word naming a CDISC codelist (``NCOMPLT``) gives ``None``."""
    parts = [p.strip() for p in str(spec).split(";") if p.strip()]
    if not parts or (len(parts) == 1 and re.fullmatch(r"[A-Z]{4,}", parts[0]) and " " not in parts[0]
                     and "=" not in parts[0] and parts[0] not in ("YEARS", "SESSIONS")):
        return None
    items = []
    for p in parts:
        if " = " in p:
            code, decode = p.split(" = ", 1)
            items.append((code.strip(), decode.strip()))
        else:
            items.append((p, None))
    return items


def build_define(datasets: Sequence[Dataset], *, study_id: str, title: str, toolkit_version: str):
    """The Define-XML 2.1 document (an odmlib ``ODM`` object) describing ``datasets``."""
    import odmlib.define_2_1.model as DEF

    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    mdv = DEF.MetaDataVersion(OID=_oid("MDV", study_id), Name=f"{study_id} datasets",
                              Description=f"Datasets of study {study_id}", DefineVersion="2.1.0")
    mdv.Standards = DEF.Standards(Standard=[
        DEF.Standard(OID="STD.SDTMIG", Name="SDTMIG", Type="IG", Version="3.4", Status="Final"),
        DEF.Standard(OID="STD.ADAMIG", Name="ADaMIG", Type="IG", Version="1.3", Status="Final"),
    ])
    codelists: dict[str, object] = {}
    methods: list = []
    where_clauses: list = []
    value_lists: list = []
    for ds in datasets:
        meta = SUPP_META if ds.name.startswith("SUPP") else DATASET_META.get(ds.name)
        purpose, klass, subclass, structure, keys = meta or (
            "Analysis" if ds.name.startswith("AD") else "Tabulation",
            "BASIC DATA STRUCTURE" if ds.name.startswith("AD") else "FINDINGS", None, "One record per record", ())
        tabulation = purpose == "Tabulation"
        lengths = char_lengths(ds.frame)
        igd = DEF.ItemGroupDef(
            OID=_oid("IG", ds.name), Name=ds.name, Repeating="No" if ds.name in ("DM", "ADSL") else "Yes",
            IsReferenceData="No", SASDatasetName=ds.name, Purpose=purpose, Structure=structure,
            ArchiveLocationID=_oid("LF", ds.name), StandardOID="STD.SDTMIG" if tabulation else "STD.ADAMIG",
            Description=DEF.Description(TranslatedText=[DEF.TranslatedText(_content=ds.label, lang="en")]),
        )
        if tabulation:
            igd.Domain = ds.name[4:] if ds.name.startswith("SUPP") else ds.name
        igd.Class = DEF.Class(Name=klass, SubClass=[DEF.SubClass(Name=subclass)] if subclass else [])
        for order, var in enumerate(ds.variables, start=1):
            item_oid = _oid("IT", ds.name, var.name)
            ref = DEF.ItemRef(ItemOID=item_oid, OrderNumber=order,
                              Mandatory="Yes" if var.name in keys or var.name in ("STUDYID", "USUBJID") else "No")
            if var.name in keys:
                ref.KeySequence = keys.index(var.name) + 1
            kind = _origin_type(var.origin)
            if kind == "Derived":
                method_oid = _oid("MT", ds.name, var.name)
                methods.append(DEF.MethodDef(OID=method_oid, Name=f"Algorithm to derive {ds.name}.{var.name}",
                                             Type="Computation", Description=DEF.Description(TranslatedText=[
                                                 DEF.TranslatedText(_content=var.origin, lang="en")])))
                ref.MethodOID = method_oid
            igd.ItemRef.append(ref)
            item = DEF.ItemDef(OID=item_oid, Name=var.name, SASFieldName=var.name,
                               DataType=_data_type(var, ds.frame[var.name]),
                               Description=DEF.Description(TranslatedText=[DEF.TranslatedText(
                                   _content=var.label, lang="en")]))
            if var.type == "Char":
                item.Length = max(1, int(lengths.get(var.name, 1)))
            elif item.DataType == "float":
                item.Length = 8
                item.SignificantDigits = 3
            else:
                item.Length = 8
            if var.format:
                item.DisplayFormat = var.format if var.format.endswith(".") else var.format + "."
            item.Origin = [_origin(DEF, var.origin)]
            items = _codelist_items(var.codelist) if var.codelist else None
            if items:
                cl_oid = _oid("CL", ds.name, var.name)
                data_type = "text" if var.type == "Char" else ("integer" if all(
                    re.fullmatch(r"-?\d+", c) for c, _ in items) else "float")
                cl = DEF.CodeList(OID=cl_oid, Name=f"{ds.name}.{var.name}", DataType=data_type)
                if any(d for _, d in items):
                    cl.CodeListItem = [DEF.CodeListItem(CodedValue=c, Decode=DEF.Decode(TranslatedText=[
                        DEF.TranslatedText(_content=d or c, lang="en")])) for c, d in items]
                else:
                    cl.EnumeratedItem = [DEF.EnumeratedItem(CodedValue=c) for c, _ in items]
                codelists[cl_oid] = cl
                item.CodeListRef = DEF.CodeListRef(CodeListOID=cl_oid)
            key, make = _VALUE_LEVEL.get(var.name, (None, None))
            if key in ds.frame.columns and not ds.frame.empty:
                vl = _value_level(DEF, ds, var.name, key, item_oid, where_clauses)
                if vl is not None:
                    value_lists.append(vl)
                    item.ValueListRef = DEF.ValueListRef(ValueListOID=vl.OID)
                    for sub in vl.ItemRef:
                        mdv.ItemDef.append(make(DEF, ds, sub.ItemOID))
            mdv.ItemDef.append(item)
        igd.leaf = DEF.leaf(ID=_oid("LF", ds.name), href=f"{ds.name.lower()}.xpt",
                            title=DEF.title(_content=f"{ds.name.lower()}.xpt"))
        mdv.ItemGroupDef.append(igd)
    mdv.ValueListDef = value_lists
    mdv.WhereClauseDef = where_clauses
    mdv.CodeList = list(codelists.values())
    mdv.MethodDef = methods
    mdv.leaf = []
    study = DEF.Study(OID=_oid("ST", study_id), GlobalVariables=DEF.GlobalVariables(
        StudyName=DEF.StudyName(_content=study_id), StudyDescription=DEF.StudyDescription(_content=title or study_id),
        ProtocolName=DEF.ProtocolName(_content=study_id)), MetaDataVersion=mdv)
    return DEF.ODM(FileType="Snapshot", FileOID=_oid("DEF", study_id), CreationDateTime=now, ODMVersion="1.3.2",
                   Originator="EPMC toolkit", SourceSystem="toolkit", SourceSystemVersion=toolkit_version,
                   Context="Submission", Study=study)


def _origin(DEF, text: str):
    """A ``def:Origin`` from a variable's origin text (its type, source and, where it helps, the text)."""
    kind = _origin_type(text)
    origin = DEF.Origin(Type=kind)
    if kind == "Collected":
        origin.Source = "Investigator"
    elif kind == "Assigned":
        origin.Source = "Sponsor"
    if kind in ("Derived", "Predecessor", "Collected") and text:
        origin.Description = DEF.Description(TranslatedText=[DEF.TranslatedText(_content=text, lang="en")])
    return origin


def _value_level(DEF, ds: Dataset, var_name: str, key: str, item_oid: str, where_clauses: list):
    refs = []
    for k, code in enumerate(ds.frame[key].dropna().astype(str).drop_duplicates(), start=1):
        wc_oid = _oid("WC", ds.name, key, code)
        where_clauses.append(DEF.WhereClauseDef(OID=wc_oid, RangeCheck=[DEF.RangeCheck(
            Comparator="EQ", SoftHard="Soft", ItemOID=_oid("IT", ds.name, key),
            CheckValue=[DEF.CheckValue(_content=code)])]))
        refs.append(DEF.ItemRef(ItemOID=_oid(item_oid, code), OrderNumber=k, Mandatory="No",
                                WhereClauseRef=[DEF.WhereClauseRef(WhereClauseOID=wc_oid)]))
    if not refs:
        return None
    return DEF.ValueListDef(OID=_oid("VL", ds.name, var_name), ItemRef=refs)


def _qualifier_item(DEF, ds: Dataset, item_oid: str):
    """The QVAL of one QNAM of a SUPP-- dataset: text as long as its longest value, labelled by its QLABEL."""
    code = item_oid.rsplit(".", 1)[-1]
    rows = ds.frame[ds.frame["QNAM"].astype(str).map(lambda c: _OID.sub("_", c)) == code]
    label = str(rows["QLABEL"].iloc[0]) if "QLABEL" in rows.columns and len(rows) else code
    longest = max((len(str(v).encode("utf-8")) for v in rows["QVAL"].dropna()), default=1)
    item = DEF.ItemDef(OID=item_oid, Name="QVAL", SASFieldName="QVAL", DataType="text", Length=max(1, longest),
                       Description=DEF.Description(TranslatedText=[DEF.TranslatedText(
                           _content=f"{label} ({rows['QNAM'].iloc[0] if len(rows) else code})"[:200],
                           lang="en")]))
    qorig = rows["QORIG"].dropna().astype(str) if "QORIG" in rows.columns else pd.Series(dtype=str)
    item.Origin = [_origin(DEF, qorig.iloc[0] if len(qorig) else "Derived")]
    return item


def _value_item(DEF, ds: Dataset, item_oid: str):
    code = item_oid.rsplit(".", 1)[-1]
    rows = ds.frame[ds.frame["PARAMCD"].astype(str).map(lambda c: _OID.sub("_", c)) == code]
    label = str(rows["PARAM"].iloc[0]) if "PARAM" in rows.columns and len(rows) else code
    unit = ""
    for col in ("AVALU", "PARAMU"):
        if col in rows.columns and rows[col].notna().any():
            unit = f" ({rows[col].dropna().iloc[0]})"
    values = pd.to_numeric(rows["AVAL"], errors="coerce").dropna()
    integer = len(values) > 0 and bool((values == values.round()).all())
    item = DEF.ItemDef(OID=item_oid, Name="AVAL", SASFieldName="AVAL", DataType="integer" if integer else "float",
                       Length=8, Description=DEF.Description(TranslatedText=[DEF.TranslatedText(
                           _content=f"{label}{unit}"[:200], lang="en")]))
    if not integer:
        item.SignificantDigits = 3
    item.Origin = [DEF.Origin(Type="Derived", Description=DEF.Description(TranslatedText=[DEF.TranslatedText(
        _content=f"Analysis value of {code}: {label}", lang="en")]))]
    return item


def write_define(datasets: Sequence[Dataset], folder: Path, *, study_id: str, title: str = "") -> list[Path]:
    """Write ``define.xml`` (schema-checked) and ``define.html`` into ``folder``; return both paths.

    Raises
    ------
    DataError
        When the document does not validate against the Define-XML 2.1 schema (a defect to report: the
        message carries the schema's finding).
    """
    import toolkit

    folder = Path(folder)
    odm = build_define(datasets, study_id=study_id, title=title, toolkit_version=toolkit.__version__)
    tmp = folder / ".define.xml.tmp"
    odm.write_xml(str(tmp))
    try:
        _validate(tmp)
    except DataError:
        tmp.unlink(missing_ok=True)
        raise
    final = folder / "define.xml"
    tmp.replace(final)
    html = folder / "define.html"
    from defineutils.definehtml.definehtml import DefineHtml

    DefineHtml(final).transform_to_html_file(html)
    return [final, html]


def _validate(path: Path) -> None:
    from defineutils.validate import DefineSchemaValidationError, DefineSchemaValidator

    try:
        DefineSchemaValidator(path).validate_define_file()
    except DefineSchemaValidationError as exc:
        raise DataError("define.xml does not validate against the Define-XML 2.1 schema",
                        details=str(exc).splitlines()[:12]) from None


#: the variable metadata table written beside the datasets
METADATA_CSV = "define.csv"
#: conformance findings written beside the datasets
CONFORMANCE_CSV = "conformance.csv"


def metadata_rows(ds: Dataset) -> list[dict[str, object]]:
    """Rows of ``define.csv`` for one dataset (dataset, labels, order, type, length, codelist, origin, format)."""
    lengths = char_lengths(ds.frame)
    return [{"dataset": ds.name, "dataset_label": ds.label, "order": k, "variable": v.name, "label": v.label,
             "type": v.type, "length": 8 if v.type == "Num" else lengths.get(v.name, 1), "codelist": v.codelist,
             "origin": v.origin, "format": v.format} for k, v in enumerate(ds.variables, start=1)]


def add_to_metadata(folder: Path, ds: Dataset) -> None:
    """Put ``ds``'s rows into the folder's ``define.csv`` (replacing an older version of the same dataset)."""
    path = Path(folder) / METADATA_CSV
    rows = pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() else pd.DataFrame()
    if not rows.empty:
        rows = rows[rows["dataset"] != ds.name]
    out = pd.concat([rows, pd.DataFrame(metadata_rows(ds)).astype(str)], ignore_index=True)
    tmp = path.with_name(f".{path.name}.tmp")
    out.to_csv(tmp, index=False)
    tmp.replace(path)


def datasets_from_folder(folder: Path) -> list[Dataset]:
    """The datasets of ``folder`` as :class:`Dataset` objects: values from each ``<name>.xpt``, metadata from
    ``define.csv`` (datasets without an XPT file are left out)."""
    from toolkit.store.xpt import read_xpt

    folder = Path(folder)
    meta = pd.read_csv(folder / METADATA_CSV, dtype=str, keep_default_na=False)
    out = []
    for name, rows in meta.groupby("dataset", sort=False):
        path = folder / f"{str(name).lower()}.xpt"
        if not path.is_file():
            continue
        frame, _, _ = read_xpt(path)
        variables = [Variable(r["variable"], r["label"], r["type"], r["codelist"], r["origin"],
                              r.get("format", "") or "") for r in rows.to_dict("records")]
        out.append(Dataset(str(name), str(rows["dataset_label"].iloc[0]), frame, variables))
    return out


def publish_metadata(folder: Path, *, study_id: str, title: str = "") -> list[Path]:
    """Check the datasets of ``folder`` and describe them: ``conformance.csv``, ``define.xml`` (Define-XML
    2.1, schema-checked) and ``define.html``; return the paths written."""
    from toolkit.store.conformance import check_datasets, findings_frame

    folder = Path(folder)
    datasets = datasets_from_folder(folder)
    findings = findings_frame(check_datasets(datasets))
    conformance = folder / CONFORMANCE_CSV
    findings.to_csv(conformance, index=False)
    return [conformance, *write_define(datasets, folder, study_id=study_id, title=title)]


#: variables described value by value (Define-XML value-level metadata): variable -> (the variable whose value
#: selects the definition, the function that defines it); an analysis value per parameter, a supplemental
#: qualifier's value per QNAM
_VALUE_LEVEL = {"AVAL": ("PARAMCD", _value_item), "QVAL": ("QNAM", _qualifier_item)}
