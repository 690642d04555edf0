"""Parsing the replies of Siglent's legacy command set (SDG generators, SDS1000X-E/SDS2000X scopes).

Siglent answers a query with its header and a list of ``KEY,value`` pairs whose numbers carry their unit
(SDG Programming Guide PG02-E05C, 3.4 and 3.7: ``C1:BSWV WVTP,SINE,FRQ,100HZ,PERI,0.01S,AMP,2V,…``;
``C2:BTWV STATE,ON,PRD,0.01S,…,CARR,WVTP,SINE,FRQ,1000HZ,…``), and a scope setting as its header, a number
and a unit (``C1:VDIV 5.00E-01V``, ``SARA 1.00E+09Sa/s``; ``CHDR OFF`` drops the header).
"""

from __future__ import annotations

import re

from instruments.errors import GarbledReply

__all__ = ["key_values", "leading_number", "split_carrier"]

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def leading_number(text: str, *, what: str, resource: str) -> float:
    """The number of a reply such as ``C1:VDIV 5.00E-01V``, ``5.00E-01V`` or ``1000HZ``.

    Raises
    ------
    GarbledReply
        When the reply holds no number where one is expected.
    """
    value = text.strip()
    if " " in value:  # a header before the value ("C1:VDIV 5.00E-01V")
        value = value.rsplit(" ", 1)[1]
    m = _NUMBER.match(value)
    if m is None:
        raise GarbledReply(f"{resource} answered {what} with {text[:60]!r}, expected a number", resource=resource)
    return float(m.group(0))


def key_values(text: str, *, what: str, resource: str) -> dict[str, str]:
    """``KEY,value`` pairs of a reply (the header before the first space is dropped); keys upper-cased.

    Raises
    ------
    GarbledReply
        When the pairs do not pair up.
    """
    body = text.strip()
    head, _, rest = body.partition(" ")
    if rest and ":" in head:
        body = rest
    items = [x.strip() for x in body.split(",")]
    if len(items) < 2 or len(items) % 2:
        raise GarbledReply(f"{resource} answered {what} with {text[:80]!r}, expected KEY,value pairs",
                           resource=resource)
    return {items[k].upper(): items[k + 1] for k in range(0, len(items), 2)}


def split_carrier(text: str) -> tuple[str, str]:
    """A ``BTWV?`` reply cut into its burst part and its carrier part (after ``CARR,``), both as replies."""
    body = text.strip()
    burst, sep, carrier = body.partition(",CARR,")
    return burst, (carrier if sep else "")
