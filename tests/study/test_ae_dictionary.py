"""The study's AE dictionary: coding, and a bad file refused with its file, line and field."""

from __future__ import annotations

import pytest

from toolkit.errors import ConfigurationError
from toolkit.study.ae_dictionary import STARTER, load_ae_dictionary


def test_the_starter_codes_the_local_reactions_of_these_treatments() -> None:
    d = load_ae_dictionary(STARTER)
    for verbatim, pt in (("Redness at electrode site", "Application site erythema"),
                         ("  TINGLING ", "Application site paraesthesia"), ("twitching", "Muscle twitching"),
                         ("swelling", "Application site oedema"), ("itching", "Application site pruritus"),
                         ("burning sensation", "Burning sensation"), ("skin irritation", "Application site irritation")):
        coded = d.code(verbatim)
        assert coded is not None and coded.preferred_term == pt and coded.local_reaction, verbatim
    assert d.code("Headache").local_reaction is False
    assert d.code("Application site erythema").preferred_term == "Application site erythema"  # a PT codes to itself
    assert d.code("felt warm around the jaw") is None  # never guessed


def test_duplicate_terms_unknown_classes_and_empty_fields_name_file_line_and_field(tmp_path) -> None:
    path = tmp_path / "dict.csv"
    path.write_text("verbatim,preferred_term,system_organ_class,local_reaction\n"
                    "redness,Erythema,Skin and subcutaneous tissue disorders,Y\n"
                    "Redness,Erythema,Skin and subcutaneous tissue disorders,Y\n"
                    "tingling,Paraesthesia,Nerve disorders,Y\n"
                    "itch,,Skin and subcutaneous tissue disorders,maybe\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as err:
        load_ae_dictionary(path)
    text = str(err.value)
    assert f"{path}, line 3, verbatim: 'Redness' is already on line 2" in text
    assert f"{path}, line 4, system_organ_class: 'Nerve disorders' is not a MedDRA system organ class" in text
    assert f"{path}, line 5, preferred_term: empty" in text
    assert f"{path}, line 5, local_reaction: 'maybe'; accepted: Y, N" in text
    path.write_text("term,code\nx,y\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="line 1: missing column"):
        load_ae_dictionary(path)


def test_a_study_naming_a_bad_dictionary_is_refused_at_load(tmp_path, repo_root) -> None:
    from toolkit.study import load_study

    text = (repo_root / "studies" / "epmc-demo" / "study.yaml").read_text(encoding="utf-8")
    folder = tmp_path / "epmc-demo"
    folder.mkdir()
    (folder / "study.yaml").write_text(text.replace("ae_dictionary: starter", "ae_dictionary: coding.csv"),
                                       encoding="utf-8")
    with pytest.raises(ConfigurationError, match="ae_dictionary") as err:
        load_study(folder)
    assert "coding.csv" in str(err.value)
    (folder / "coding.csv").write_text("verbatim,preferred_term,system_organ_class\nredness,Erythema,"
                                       "Skin and subcutaneous tissue disorders\n", encoding="utf-8")
    assert load_study(folder).ae_dictionary_path == str(folder / "coding.csv")
