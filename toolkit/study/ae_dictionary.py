"""The study's adverse-event dictionary: verbatim term → preferred term → system organ class.

A CSV file with the columns ``verbatim``, ``preferred_term``, ``system_organ_class`` and optionally
``local_reaction`` (Y/N: a reaction of the treated skin, counted in the local-reaction tables). The study names
it in ``study.yaml`` (``ae_dictionary: ae-dictionary.csv``, relative to the study folder), or ``starter`` for the
starter dictionary shipped with the toolkit, which covers the known local reactions of electroporation and
microcurrent (erythema, irritation, tingling/paraesthesia, muscle twitching, oedema, pruritus, burning …).
Its terms follow MedDRA's names; a sponsor codes against its licensed MedDRA version and supplies that file.

Verbatim terms match case- and space-insensitively. A term not in the dictionary stays verbatim and is flagged
uncoded (and listed), never guessed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from toolkit.errors import ConfigurationError

__all__ = ["STARTER", "SYSTEM_ORGAN_CLASSES", "AEDictionary", "CodedTerm", "load_ae_dictionary"]

#: the word that names the starter dictionary in study.yaml
STARTER = "starter"

#: MedDRA's 27 system organ classes
SYSTEM_ORGAN_CLASSES = (
    "Blood and lymphatic system disorders",
    "Cardiac disorders",
    "Congenital, familial and genetic disorders",
    "Ear and labyrinth disorders",
    "Endocrine disorders",
    "Eye disorders",
    "Gastrointestinal disorders",
    "General disorders and administration site conditions",
    "Hepatobiliary disorders",
    "Immune system disorders",
    "Infections and infestations",
    "Injury, poisoning and procedural complications",
    "Investigations",
    "Metabolism and nutrition disorders",
    "Musculoskeletal and connective tissue disorders",
    "Neoplasms benign, malignant and unspecified (incl cysts and polyps)",
    "Nervous system disorders",
    "Pregnancy, puerperium and perinatal conditions",
    "Product issues",
    "Psychiatric disorders",
    "Renal and urinary disorders",
    "Reproductive system and breast disorders",
    "Respiratory, thoracic and mediastinal disorders",
    "Skin and subcutaneous tissue disorders",
    "Social circumstances",
    "Surgical and medical procedures",
    "Vascular disorders",
)
_SOC = {s.lower(): s for s in SYSTEM_ORGAN_CLASSES}
_REQUIRED = ("verbatim", "preferred_term", "system_organ_class")


def _key(text: str) -> str:
    return " ".join(str(text).split()).casefold()


@dataclass(frozen=True)
class CodedTerm:
    """The coding of one verbatim term."""

    preferred_term: str
    system_organ_class: str
    local_reaction: bool = False


@dataclass
class AEDictionary:
    """Verbatim → coding; :meth:`code` returns ``None`` for a term the dictionary does not hold."""

    source: str
    terms: dict[str, CodedTerm] = field(default_factory=dict)

    def code(self, verbatim: str) -> CodedTerm | None:
        """The coding of ``verbatim`` (case and spacing ignored), or ``None`` when uncoded."""
        hit = self.terms.get(_key(verbatim))
        if hit is None:  # a verbatim that is itself a preferred term codes to it
            hit = self._by_pt().get(_key(verbatim))
        return hit

    def _by_pt(self) -> dict[str, CodedTerm]:
        return {_key(t.preferred_term): t for t in self.terms.values()}


def starter_path() -> Path:
    """The starter dictionary shipped with the toolkit."""
    return Path(str(resources.files("toolkit.study").joinpath("ae_dictionary_starter.csv")))


def load_ae_dictionary(path: str | Path) -> AEDictionary:
    """Read and check a dictionary file (or :data:`STARTER`).

    Raises
    ------
    ConfigurationError
        Naming the file, line and field: a missing column, an empty field, a system organ class that is not
        one of MedDRA's, a local_reaction other than Y/N, or a verbatim term listed twice.
    """
    file = starter_path() if str(path) == STARTER else Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigurationError(f"AE dictionary {file}: cannot read it ({exc.strerror or exc})") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise ConfigurationError(f"AE dictionary {file}, line 1: missing column(s) {', '.join(missing)}; "
                                 f"expected {', '.join(_REQUIRED)}[, local_reaction]")
    problems: list[str] = []
    out = AEDictionary(source=str(file))
    first_line: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        row = {str(k).strip(): str(v or "").strip() for k, v in row.items() if k is not None}
        if not any(row.values()):
            continue
        for col in _REQUIRED:
            if not row.get(col):
                problems.append(f"{file}, line {line}, {col}: empty")
        soc = _SOC.get(row.get("system_organ_class", "").lower())
        if row.get("system_organ_class") and soc is None:
            problems.append(f"{file}, line {line}, system_organ_class: {row['system_organ_class']!r} is not a "
                            "MedDRA system organ class (e.g. 'Skin and subcutaneous tissue disorders')")
        local = row.get("local_reaction", "").upper() or "N"
        if local not in ("Y", "N"):
            problems.append(f"{file}, line {line}, local_reaction: {row['local_reaction']!r}; accepted: Y, N")
        key = _key(row.get("verbatim", ""))
        if key and key in first_line:
            problems.append(f"{file}, line {line}, verbatim: {row['verbatim']!r} is already on line "
                            f"{first_line[key]}")
            continue
        if key:
            first_line[key] = line
        if row.get("preferred_term") and soc:
            out.terms[key] = CodedTerm(row["preferred_term"], soc, local == "Y")
    if problems:
        raise ConfigurationError(f"AE dictionary {file}: {len(problems)} problem(s)", details=problems)
    return out
