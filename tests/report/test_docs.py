"""The public surface of toolkit.report is documented and its examples run."""

from __future__ import annotations

import doctest
import inspect

import toolkit.report as report
from toolkit.report.figures import efficacy, survival


def test_every_public_name_has_a_docstring() -> None:
    missing = [name for name in report.__all__
               if inspect.isfunction(obj := getattr(report, name)) or inspect.isclass(obj)
               if not (obj.__doc__ or "").strip()]
    assert missing == []


def test_figure_functions_share_the_signature_shape() -> None:
    for name in report.__all__:
        if name.startswith("fig_"):
            params = inspect.signature(getattr(report, name)).parameters
            assert list(params)[0] == "data", name
            assert {"number", "title", "source"} <= set(params), name
            assert all(p.kind is p.KEYWORD_ONLY for k, p in params.items() if k != "data"), name


def test_docstring_examples_run() -> None:
    for module in (efficacy, survival):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0, module.__name__
