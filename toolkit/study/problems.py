"""Report several validation problems of one model at once, each at its own field path.

Cross-field rules (a visit after session 14 of 12, an endpoint naming an unknown visit) are checked after
pydantic has validated the fields. Raising one ``ValueError`` would stop at the first problem and point at
the whole model; :func:`raise_problems` raises one pydantic ``ValidationError`` holding every problem, each
with its location, so a study file shows all its mistakes in one run with their YAML lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = ["Problem", "raise_problems", "rule_error"]


@dataclass(frozen=True)
class Problem:
    """A rule broken at ``loc`` (a path of field names and list indices, relative to the model)."""

    #: field path relative to the model being validated
    loc: tuple[str | int, ...]
    #: what is wrong and what would be accepted
    message: str
    #: machine-readable kind of problem
    kind: str = "study_rule"
    #: the offending value, if any
    value: object = None


def raise_problems(title: str, problems: list[Problem]) -> None:
    """Raise a ``ValidationError`` holding every problem; do nothing when the list is empty.

    Parameters
    ----------
    title : str
        Name of the model (shown by pydantic).
    problems : list of Problem
        The problems found.

    Raises
    ------
    pydantic.ValidationError
        With one error per problem at its location.
    """
    if not problems:
        return
    details = [
        InitErrorDetails(
            type=PydanticCustomError(p.kind, "{message}", {"message": p.message}), loc=p.loc, input=p.value
        )
        for p in problems
    ]
    raise ValidationError.from_exception_data(title, details)


def rule_error(kind: str, template: str, values: dict[str, object] | None = None) -> PydanticCustomError:
    """A pydantic error whose message is ``template`` formatted with ``values`` (full ``str.format`` syntax).

    pydantic substitutes only bare ``{name}`` fields in its templates; formatting here allows ``{v:g}`` and
    ``{value!r}``.
    """
    message = template.format(**values) if values else template
    return PydanticCustomError(kind, "{message}", {"message": message})
