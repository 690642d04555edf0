"""One way to name the study on every command: as its first argument or with ``--study``.

Some commands took the study as a positional argument (``toolkit study validate studies/x``) and the others as an
option (``toolkit subject list --study studies/x``). Before the command line is parsed, :func:`normalise`
rewrites whichever form the command does not declare into the form it does, so both work everywhere:

* a command with a ``--study`` option and no positional arguments takes ``toolkit <command> STUDY …``;
* a command whose study (or study path) is its positional argument takes ``--study STUDY`` (or
  ``--study=STUDY``) anywhere among its options.
"""

from __future__ import annotations

from typing import Any

__all__ = ["normalise"]

#: names of the positional parameter that holds the study
_STUDY_ARGUMENTS = ("study", "path")


def _is_option(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def _resolve(root: Any, args: list[str]) -> tuple[Any, int]:
    """The command that ``args`` name and the index of its first own argument (``None``: not a command).

    Commands are read by their attributes (``commands``, ``params``), so any click-compatible tree will do.
    """
    command, i = root, 0
    while isinstance(getattr(command, "commands", None), dict):
        # options of a group (e.g. --user NAME) come before its sub-command
        while i < len(args) and args[i].startswith("-"):
            param = next((p for p in command.params if args[i].split("=", 1)[0] in getattr(p, "opts", [])), None)
            takes_value = _is_option(param) and not param.is_flag and "=" not in args[i]
            i += 2 if takes_value else 1
        if i >= len(args) or args[i] not in command.commands:
            return None, i
        command, i = command.commands[args[i]], i + 1
    return command, i


def normalise(argv: list[str], root: Any) -> list[str]:
    """``argv`` with the study named the way its command declares it (see the module text)."""
    command, start = _resolve(root, argv)
    if command is None or any(a in ("--help", "-h") for a in argv[start:]):
        return argv
    params = command.params
    option = next((p for p in params if _is_option(p) and "--study" in p.opts), None)
    arguments = [p for p in params if getattr(p, "param_type_name", "") == "argument"]
    rest = argv[start:]
    if option is not None and not arguments:
        given = any(a == "--study" or a.startswith("--study=") for a in rest)
        if not given and rest and not rest[0].startswith("-"):
            return [*argv[:start], "--study", rest[0], *rest[1:]]
        return argv
    study_arg = next((p for p in arguments if p.name in _STUDY_ARGUMENTS), None)
    if option is None and study_arg is not None and arguments[0] is study_arg:
        for k, a in enumerate(rest):
            if a == "--study" and k + 1 < len(rest):
                return [*argv[:start], rest[k + 1], *rest[:k], *rest[k + 2:]]
            if a.startswith("--study="):
                return [*argv[:start], a.split("=", 1)[1], *rest[:k], *rest[k + 1:]]
    return argv
