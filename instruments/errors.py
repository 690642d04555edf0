"""Errors of the hardware layer; each names the instrument or resource it concerns.

All derive from :class:`InstrumentError`, which the command line prints without a traceback (exit code 2).
The subclasses let delivery code react to the kind of failure (for example, retry after a timeout but never
after an identity mismatch).
"""

from __future__ import annotations

__all__ = [
    "BenchFileError",
    "BlockFormatError",
    "ConnectionFailed",
    "IdentityMismatch",
    "GarbledReply",
    "InstrumentError",
    "InstrumentReportedError",
    "OutOfRange",
    "OutputStateUnknown",
    "ReadbackMismatch",
    "SelfTestFailed",
]


class InstrumentError(Exception):
    """A problem with an instrument or a bench file that the operator can act on."""

    #: process exit code used by the command line
    exit_code: int = 2

    def __init__(self, message: str, *, resource: str | None = None, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: the VISA resource string, bench file or field concerned (when known)
        self.resource = resource
        #: further lines, one per individual problem
        self.details: list[str] = list(details or [])

    def __str__(self) -> str:
        if not self.details:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {d}" for d in self.details)

    def __reduce__(self) -> tuple:
        # Pickle by state: the resource and details must survive the way back from a worker process.
        return _rebuild_error, (type(self), self.args, self.__dict__.copy())


def _rebuild_error(cls: type[InstrumentError], args: tuple, state: dict) -> InstrumentError:
    """Unpickle an :class:`InstrumentError` without calling its ``__init__``."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class BenchFileError(InstrumentError):
    """A bench file is missing, is not valid YAML, or has an invalid or unknown field value."""


class ConnectionFailed(InstrumentError):
    """A resource does not answer: closed port, refused or dropped connection, or a timeout.

    ``refused`` is True when nothing listens at the resource's address (the connection was refused).
    """

    def __init__(self, message: str, *, resource: str | None = None, details: list[str] | None = None,
                 refused: bool = False) -> None:
        super().__init__(message, resource=resource, details=details)
        self.refused = refused


class IdentityMismatch(InstrumentError):
    """The instrument at a resource is not the one the bench file declares (``*IDN?`` pattern)."""


class OutOfRange(InstrumentError):
    """A value is outside what an instrument (or the bench's declared limits) accepts; nothing was sent."""


class InstrumentReportedError(InstrumentError):
    """The instrument's error queue (``SYST:ERR?``) held one or more errors."""

    def __init__(self, message: str, *, resource: str | None = None, errors: list[str] | None = None) -> None:
        super().__init__(message, resource=resource, details=list(errors or []))
        #: the raw entries of the error queue, e.g. ``-222,"Data out of range"``
        self.errors: list[str] = list(errors or [])


class ReadbackMismatch(InstrumentError):
    """A setting read back from the instrument differs from what was sent."""


class BlockFormatError(InstrumentError):
    """A binary block (IEEE-488.2 ``#<n><len><bytes>``) or a preamble is malformed or truncated."""


class SelfTestFailed(InstrumentError):
    """``*TST?`` returned a non-zero result."""


class OutputStateUnknown(InstrumentError):
    """An output could not be switched off and read back off (connection lost during shutdown).

    This is the loud "output state unknown" outcome: the operator must check the instrument by hand.
    """


class GarbledReply(InstrumentError):
    """An instrument's reply could not be understood (wrong type, garbage on the line)."""
