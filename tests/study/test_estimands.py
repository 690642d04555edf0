"""Estimands in study.yaml: the shipped ones load, and every mistake is refused at its field with its line."""

from __future__ import annotations

import pytest

from tests.study.conftest import replace_once
from tests.study.test_load_study import issues_of
from toolkit.study import load_study
from toolkit.study.estimands import ALLOWED_STRATEGIES

ANCHOR_EVENT = "        - {event: treatment_discontinuation, strategy: hypothetical}    # as if"
ANCHOR_SENS = "        - {method: reference_based, assumption: J2R, reference: SHAM, imputations: 100}\n        - {method: reference_based, assumption: CIR"


def test_the_demo_estimands_load(demo_text, write_study) -> None:
    study = load_study(write_study(demo_text))
    est = study.analysis.estimand("E_NLFLEN")
    assert est.analysis == "KEY1"
    assert est.strategy("treatment_discontinuation").strategy == "hypothetical"
    assert est.strategy("ae_withdrawal").assumption == "J2R"
    assert [s.method for s in est.sensitivity] == ["reference_based"] * 3 + ["tipping_point"]
    assert est.sensitivity[0].short_label == "J2R, Bayesian MI"
    assert "filler" in est.strategy("prohibited_procedure").procedure_terms
    with pytest.raises(KeyError, match="E_NLFLEN"):
        study.analysis.estimand("E_NONE")


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("      analysis: KEY1             # main", "      analysis: KEY9             # main",
         "analysis.estimands[0].analysis", "unknown analysis id 'KEY9'"),
        ("      analysis: KEY1             # main", "      analysis: KEY1\n      endpoint: WRINKLES  # main",
         "analysis.estimands[0].endpoint", "endpoint 'WRINKLES' is not the endpoint of analysis KEY1 (NLFLEN)"),
        ("      analysis: KEY1             # main", "      analysis: KEY1\n      population: PP  # main",
         "analysis.estimands[0].population", "not the population of analysis KEY1"),
        (ANCHOR_EVENT, "        - {event: sunburn, strategy: hypothetical}    # as if",
         "analysis.estimands[0].intercurrent_events[0].event", "treatment_discontinuation"),
        (ANCHOR_EVENT, "        - {event: treatment_discontinuation, strategy: principal_stratum}    # as if",
         "analysis.estimands[0].intercurrent_events[0]", "no estimator of a principal stratum"),
        (ANCHOR_EVENT, "        - {event: treatment_discontinuation, strategy: ignore}    # as if",
         "analysis.estimands[0].intercurrent_events[0].strategy", "treatment_policy"),
        ("        - {event: prohibited_procedure, strategy: composite, value: no_improvement}   # a filler",
         "        - {event: prohibited_procedure, strategy: while_on_treatment}   # a filler",
         "analysis.estimands[0].intercurrent_events[2]", "not allowed for prohibited_procedure"),
        ("assumption: J2R, reference: SHAM}\n        - {event: prohibited_procedure",
         "assumption: J2R, reference: PLACEBO}\n        - {event: prohibited_procedure",
         "analysis.estimands[0].intercurrent_events[1].reference", "reference arm 'PLACEBO' does not exist"),
        ("strategy: treatment_policy, assumption: J2R, reference: SHAM}",
         "strategy: treatment_policy, assumption: J2R}",
         "analysis.estimands[0].intercurrent_events[1]", "needs `reference`"),
        (ANCHOR_EVENT, "        - {event: treatment_discontinuation, strategy: hypothetical, assumption: CR, "
         "reference: SHAM}    # as if", "analysis.estimands[0].intercurrent_events[0]", "treatment_policy strategy only"),
        (ANCHOR_EVENT, ANCHOR_EVENT.split("    # ")[0] + "\n" + ANCHOR_EVENT,
         "analysis.estimands[0].intercurrent_events", "listed more than once"),
        (ANCHOR_SENS, ANCHOR_SENS.replace("reference: SHAM, imputations: 100}", "reference: CONTROL, imputations: 100}", 1),
         "analysis.estimands[0].sensitivity[0].reference", "reference arm 'CONTROL' does not exist"),
        (ANCHOR_SENS, ANCHOR_SENS.replace("imputations: 100}", "imputations: 1}", 1),
         "analysis.estimands[0].sensitivity[0].imputations", "greater than or equal to 2"),
        (ANCHOR_SENS, ANCHOR_SENS.replace("assumption: J2R, reference: SHAM, imputations: 100}",
                                          "assumption: J2R, imputations: 100}", 1),
         "analysis.estimands[0].sensitivity[0]", "needs `reference`"),
        (ANCHOR_SENS, ANCHOR_SENS.replace("imputations: 100}", "imputations: 100, deltas: [0, 1]}", 1),
         "analysis.estimands[0].sensitivity[0]", "belong to a tipping_point"),
        ("        - {method: tipping_point, inference: conditional_mean}     # MAR",
         "        - {method: tipping_point, deltas: [1]}     # MAR",
         "analysis.estimands[0].sensitivity[3]", "at least two deltas"),
        ("    - id: E_LIFTJAW", "    - id: E_NLFLEN", "analysis.estimands[1].id", "repeats"),
    ],
)
def test_estimand_mistakes_name_their_field(write_study, demo_text, old, new, field, words) -> None:
    issues = issues_of(write_study(replace_once(demo_text, old, new)))
    match = [i for i in issues if i.field == field]
    assert match, [str(i) for i in issues]
    assert words in match[0].message
    assert match[0].line is not None


def test_every_event_refuses_what_it_does_not_allow() -> None:
    from pydantic import ValidationError

    from toolkit.study.estimands import EventStrategy

    for event, allowed in ALLOWED_STRATEGIES.items():
        for strategy in ("treatment_policy", "hypothetical", "while_on_treatment", "composite", "principal_stratum"):
            if strategy in allowed:
                EventStrategy(event=event, strategy=strategy)
            else:
                with pytest.raises(ValidationError, match=event):
                    EventStrategy(event=event, strategy=strategy)


def test_a_split_face_study_refuses_reference_based_imputation(write_study, splitface_text) -> None:
    text = splitface_text.rstrip() + "\n"
    anchor = "  analyses:\n"
    assert anchor in text
    analysis_id = load_study(write_study(splitface_text, folder="epmc-splitface")).analysis.analyses[0].id
    block = (f"  estimands:\n    - id: E_SPLIT\n      analysis: {analysis_id}\n      sensitivity:\n"
             "        - {method: reference_based, assumption: MAR}\n")
    text = text.replace(anchor, block + anchor, 1)
    issues = issues_of(write_study(text, folder="epmc-splitface"))
    assert any(i.field == "analysis.estimands[0].sensitivity" and "split-face" in i.message for i in issues), [
        str(i) for i in issues
    ]
