"""A small SCPI engine for the twin instruments: header matching, parameters, the error queue.

Headers are declared the way manuals print them, e.g. ``[SOURce#:]FUNCtion:PULSe:WIDTh`` (upper case is the
short form, ``#`` a numeric suffix, ``[...]`` an optional node). A message may join several commands with
``;``; a command without a leading ``:`` continues from the previous command's path, as IEEE-488.2 says.
Mnemonics match in short or long form, any case. Errors go to a queue read by ``SYST:ERR?``.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ScpiDevice", "ScpiError", "parse_bool", "parse_choice", "parse_number", "ERRORS"]

#: standard SCPI error messages by code
ERRORS = {
    0: "No error",
    -100: "Command error",
    -102: "Syntax error",
    -104: "Data type error",
    -109: "Missing parameter",
    -113: "Undefined header",
    -200: "Execution error",
    -211: "Trigger ignored",
    -213: "Init ignored",
    -221: "Settings conflict",
    -222: "Data out of range",
    -223: "Too much data",
    -224: "Illegal parameter value",
    -330: "Self-test failed",
    -350: "Queue overflow",
    -410: "Query INTERRUPTED",
}


class ScpiError(Exception):
    """A command failed; ``code`` is the SCPI error number put in the queue."""

    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(f"{code},{ERRORS.get(code, 'Error')}{'; ' + detail if detail else ''}")
        self.code = code
        self.detail = detail


Handler = Callable[[list[int], list[str], bool], "str | bytes | None"]


def _node_regex(node: str) -> str:
    suffix = node.endswith("#")
    name = node.rstrip("#")
    short = "".join(c for c in name if c.isupper() or c.isdigit() or c == "*")
    alts = sorted({re.escape(short), re.escape(name.upper())}, key=len, reverse=True)
    return "(?:" + "|".join(alts) + ")" + (r"(\d*)" if suffix else "")


@dataclass
class _Command:
    regex: re.Pattern[str]
    handler: Handler
    #: the header as the manual writes it (``[SOURce#:]FUNCtion[:SHAPe]``)
    header: str = ""


def _compile(header: str) -> re.Pattern[str]:
    """Compile a manual-style header (``[SOURce#:]FUNCtion[:SHAPe]``) into a regular expression."""
    nodes: list[tuple[str, bool]] = []
    for token in re.findall(r"\[:?[^\]]+?:?\]|[^:\[\]]+", header):
        optional = token.startswith("[")
        nodes.append((token.strip("[]:"), optional))
    body = ""
    need_sep = False
    for name, optional in nodes:
        pat = _node_regex(name)
        if optional and not need_sep:
            body += f"(?:{pat}:)?"
        elif optional:
            body += f"(?::{pat})?"
        else:
            body += (":" if need_sep else "") + pat
            need_sep = True
    return re.compile(rf"^:?{body}$", re.IGNORECASE)


def parse_number(arg: str, *, lo: float, hi: float, default: float | None = None, name: str = "value") -> float:
    """Parse a numeric parameter (``MIN``, ``MAX``, ``DEF`` allowed); raise -222 outside ``[lo, hi]``."""
    a = arg.strip().upper()
    if a in ("MIN", "MINIMUM"):
        return lo
    if a in ("MAX", "MAXIMUM"):
        return hi
    if a in ("DEF", "DEFAULT"):
        return default if default is not None else lo
    try:
        value = float(a)
    except ValueError:
        raise ScpiError(-104, f"{name} {arg!r} is not a number") from None
    if not lo <= value <= hi:
        raise ScpiError(-222, f"{name} {value:g} outside [{lo:g}, {hi:g}]")
    return value


def parse_bool(arg: str) -> bool:
    """Parse ``ON|OFF|1|0``; raise -224 otherwise."""
    a = arg.strip().upper()
    if a in ("ON", "1"):
        return True
    if a in ("OFF", "0"):
        return False
    raise ScpiError(-224, f"{arg!r} is not ON|OFF|1|0")


def parse_choice(args: list[str], names: dict[str, str], *, name: str) -> str:
    """The canonical value of an enumerated parameter (first of ``args``, any case); raise -224 otherwise.

    ``names`` maps every accepted spelling (``"NORMAL"``, ``"NORM"``) to its canonical value.
    """
    arg = args[0].upper() if args else ""
    if arg not in names:
        canon = list(dict.fromkeys(names.values()))
        expected = canon[0] if len(canon) == 1 else ", ".join(canon[:-1]) + " or " + canon[-1]
        raise ScpiError(-224, f"{name} {arg!r}; expected {expected}")
    return names[arg]


def format_number(value: float) -> str:
    """Format a number as instruments do in replies (``+1.00000000E+03``)."""
    return f"{value:+.8E}"


class ScpiDevice:
    """Base of a simulated SCPI instrument: command table, message parsing, error queue."""

    #: ``*IDN?`` reply
    idn: str = "TWIN,GENERIC,0,0"
    queue_size = 20

    def __init__(self) -> None:
        self._commands: list[_Command] = []
        # header as received → (handler, numeric suffixes): a session repeats a few headers many times
        self._resolved: dict[str, tuple[Handler, list[int]]] = {}
        # program message as received → its commands (header path resolved, arguments split): a session sends
        # the same few messages (a burst start, a polarity reversal) many times
        self._parsed: dict[str, tuple[tuple[str, tuple[str, ...], bool], ...]] = {}
        self.error_queue: deque[str] = deque()
        self.add("*IDN", self._idn)
        self.add("*RST", self._rst)
        self.add("*CLS", self._cls)
        self.add("*OPC", self._opc)
        self.add("*TST", self._tst)
        self.add("*WAI", self._wai)
        self.add("SYSTem:ERRor[:NEXT]", self._syst_err)
        #: what ``*TST?`` answers (0 = pass)
        self.self_test_result = 0
        #: called by ``*OPC?`` and ``*WAI`` to wait for overlapped operations (bursts); the server sets it
        self.wait_for_operations: Callable[[], None] | None = None

    def operations_complete_at(self) -> float | None:
        """Simulated time at which the overlapped operations (a running burst) complete, or None if none run."""
        return None

    # ---- table
    def add(self, header: str, handler: Handler) -> None:
        """Register a handler ``(suffixes, args, is_query) -> reply | None`` for a header."""
        self._commands.append(_Command(_compile(header), handler, header))
        self._resolved.clear()

    @property
    def headers(self) -> list[str]:
        """Every header this instrument accepts, as the manual writes it."""
        return [c.header for c in self._commands]

    def push_error(self, code: int, detail: str = "") -> None:
        """Put an error in the queue (overflow replaces the last entry by -350, as SCPI says)."""
        text = f'{code},"{ERRORS.get(code, "Error")}{"; " + detail if detail else ""}"'
        if len(self.error_queue) >= self.queue_size:
            self.error_queue.pop()
            self.error_queue.append('-350,"Queue overflow"')
            return
        self.error_queue.append(text)

    # ---- execution
    def execute(self, message: str) -> bytes | None:
        """Run one program message; return the reply bytes (joined with ``;``) or None if no query."""
        replies: list[bytes] = []
        parsed = self._parsed.get(message)
        if parsed is None:
            parsed = _parse_message(message)
            if len(message) <= _PARSED_MAX_CHARS:  # not a waveform's data block
                if len(self._parsed) >= _RESOLVED_MAX:
                    self._parsed.clear()  # a client sending ever new messages must not grow memory
                self._parsed[message] = parsed
        for name, args, is_query in parsed:
            try:
                reply = self._dispatch(name, list(args), is_query)
            except ScpiError as exc:
                self.push_error(exc.code, exc.detail)
                continue
            except Exception as exc:  # a simulated instrument never dies: it reports an execution error
                self.push_error(-200, f"{type(exc).__name__}: {exc}")
                continue
            if is_query and reply is not None:
                replies.append(reply if isinstance(reply, bytes) else str(reply).encode("ascii"))
        if not replies:
            return None
        return b";".join(replies)

    def _dispatch(self, name: str, args: list[str], is_query: bool) -> str | bytes | None:
        resolved = self._resolved.get(name)
        if resolved is None:
            resolved = self._resolve(name)
        handler, suffixes = resolved
        return handler(list(suffixes), args, is_query)

    def _resolve(self, name: str) -> tuple[Handler, list[int]]:
        for command in self._commands:
            m = command.regex.match(name)
            if m:
                resolved = (command.handler, [int(g) if g else 1 for g in m.groups()])
                if len(self._resolved) >= _RESOLVED_MAX:
                    self._resolved.clear()  # a client sending ever new spellings must not grow memory
                self._resolved[name] = resolved
                return resolved
        raise ScpiError(-113, name)

    # ---- common commands
    def _idn(self, s: list[int], a: list[str], q: bool) -> str:
        return self.idn

    def _rst(self, s: list[int], a: list[str], q: bool) -> None:
        self.reset()

    def reset(self) -> None:
        """Return to power-on settings (outputs off); subclasses extend."""

    def _cls(self, s: list[int], a: list[str], q: bool) -> None:
        self.error_queue.clear()

    def _opc(self, s: list[int], a: list[str], q: bool) -> str | None:
        if not q:
            return None
        # *OPC? answers when pending operations are complete (a 33500B: when its burst has been delivered)
        if self.wait_for_operations is not None:
            self.wait_for_operations()
        return "1"

    def _wai(self, s: list[int], a: list[str], q: bool) -> None:
        if self.wait_for_operations is not None:
            self.wait_for_operations()

    def _tst(self, s: list[int], a: list[str], q: bool) -> str:
        return str(self.self_test_result)

    def _syst_err(self, s: list[int], a: list[str], q: bool) -> str:
        if self.error_queue:
            return self.error_queue.popleft()
        return '0,"No error"'


_RESOLVED_MAX = 4096
#: longest program message whose parse is kept for the next time it comes
_PARSED_MAX_CHARS = 512


def _parse_message(message: str) -> tuple[tuple[str, tuple[str, ...], bool], ...]:
    """The commands of a program message as ``(header without '?', arguments, is_query)``, each header
    completed by the IEEE-488.2 path rule (one without a leading colon continues from the previous path)."""
    out: list[tuple[str, tuple[str, ...], bool]] = []
    prefix = ""
    for cmd in _split_commands(message):
        if not cmd:
            continue
        header, _, rest = cmd.partition(" ")
        args = tuple(a.strip() for a in _split_args(rest)) if rest.strip() else ()
        full = prefix + header if not header.startswith((":", "*")) and prefix else header
        if not header.startswith("*"):
            path = full.lstrip(":").rsplit(":", 1)
            prefix = (":" + path[0] + ":") if len(path) == 2 else ""
        is_query = full.endswith("?")
        out.append((full[:-1] if is_query else full, args, is_query))
    return tuple(out)


def _split_commands(message: str) -> list[str]:
    if '"' not in message and "'" not in message:
        return [part.strip() for part in message.strip().split(";")]
    out, cur, quote = [], [], ""
    for ch in message.strip():
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            cur.append(ch)
        elif ch == ";":
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return out


def _split_args(rest: str) -> list[str]:
    return rest.split(",")
