"""Errors a person can cause, reported without a traceback.

Every layer of the toolkit raises a subclass of :class:`ToolkitError` for mistakes a user can make and fix
(a YAML typo, a corrupt photo, a wrong instrument, a locked database). The command line prints the message
and exits with :attr:`ToolkitError.exit_code`; notebooks show the message as is.
"""

from __future__ import annotations


class ToolkitError(Exception):
    """A problem the user can fix; the message names the file, field or resource and what is accepted."""

    #: process exit code used by the command line
    exit_code: int = 2

    def __init__(
        self,
        message: str,
        *,
        details: list[str] | None = None,
        field: str | None = None,
        fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: further lines (e.g. one per validation error) shown under the message
        self.details: list[str] = list(details or [])
        #: the input field(s) at fault -> what is wrong with each (forms show it next to the field)
        self.fields: dict[str, str] = dict(fields or {})
        if field is not None:
            self.fields.setdefault(field, message)

    def __str__(self) -> str:
        if not self.details:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {d}" for d in self.details)

    def __reduce__(self) -> tuple:
        # Pickle by state, not by constructor arguments: subclasses take other arguments than the message
        # (a study file's issues, a photo's rejection reason), and an error raised in a worker process must
        # reach the parent whole, with its details.
        return _rebuild_error, (type(self), self.args, self.__dict__.copy())


def _rebuild_error(cls: type[ToolkitError], args: tuple, state: dict) -> ToolkitError:
    """Unpickle a :class:`ToolkitError` without calling its ``__init__`` (see ``ToolkitError.__reduce__``)."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigurationError(ToolkitError):
    """A study, bench or template file is invalid."""


class DataError(ToolkitError):
    """Input data (CSV, photo, dataset) is missing, malformed or inconsistent."""


class StoreError(ToolkitError):
    """The system of record cannot be reached, is locked, or refuses a change."""


class CheckFailed(ToolkitError):
    """A verification ran and did not pass (the command exits 1, not 2)."""

    exit_code = 1
