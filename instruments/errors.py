"""Errors of the hardware layer; each names the instrument or resource it concerns."""

from __future__ import annotations


class InstrumentError(Exception):
    """A problem with an instrument or a bench file that the operator can act on."""

    #: process exit code used by the command line
    exit_code: int = 2
