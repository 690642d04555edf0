"""Errors raised by the statistics layer.

All of them are :class:`toolkit.errors.DataError` subclasses, so the command line reports them without a
traceback (exit code 2) and notebooks show the message as is.
"""

from __future__ import annotations

from toolkit.errors import DataError

__all__ = ["AnalysisWarning", "ModelFitError"]


class ModelFitError(DataError):
    """A model could not be fitted to the data as specified (no convergence, singular covariance).

    The message says which model and structure failed and what to try instead; the toolkit never switches
    to another model on its own, because that would change the pre-specified analysis.
    """


class AnalysisWarning(UserWarning):
    """A result that stands but needs care: too few imputations, a tipping-point grid that never crosses.

    The message names the parameter and what to change; the same text is kept in the result's details.
    """
