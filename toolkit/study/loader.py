"""Read ``studies/<id>/study.yaml`` into a :class:`~toolkit.study.model.Study`, reporting every mistake at once.

Each problem is reported with the file, the YAML line and column, the field path (``arms[0].prescription
.current_uA``) and what would be accepted. Lines come from the YAML node tree (``yaml.compose``): a pydantic
error location is walked down the tree to the node it names.
"""

from __future__ import annotations

import copy
import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from toolkit.errors import ConfigurationError
from toolkit.study.envelope import SafetyEnvelope
from toolkit.study.model import Arm, Study, envelope_problems

__all__ = ["StudyIssue", "StudyValidationError", "load_study", "study_from_yaml", "STUDY_FILE"]

#: name of the study definition inside a study folder
STUDY_FILE = "study.yaml"


@dataclass(frozen=True)
class StudyIssue:
    """One problem found in a study file."""

    #: the file
    file: Path | None
    #: 1-based line, or ``None`` when the problem has no place in the file (missing file)
    line: int | None
    #: 1-based column
    column: int | None
    #: field path, e.g. ``arms[0].prescription.current_uA`` (empty for the whole file)
    field: str
    #: what is wrong and what would be accepted
    message: str

    def __str__(self) -> str:
        where = str(self.file) if self.file else "<study>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


class StudyValidationError(ConfigurationError):
    """A study file cannot be used; :attr:`issues` lists every problem found (also as ``details``)."""

    def __init__(self, source: Path | str | None, issues: list[StudyIssue]) -> None:
        count = len(issues)
        name = str(source) if source else "study definition"
        super().__init__(
            f"{name}: {count} problem{'s' if count != 1 else ''} found", details=[str(i) for i in issues]
        )
        #: the problems, in file order
        self.issues: list[StudyIssue] = issues


# -- locating files --------------------------------------------------------------------------------------


def _resolve(path: Path | str) -> Path:
    path = Path(path).expanduser()
    if path.is_dir():
        candidate = path / STUDY_FILE
        if not candidate.is_file():
            present = sorted(p.name for p in path.iterdir())[:10]
            raise StudyValidationError(
                path,
                [
                    StudyIssue(
                        candidate, None, None, "",
                        f"the folder has no {STUDY_FILE}; a study folder holds studies/<id>/{STUDY_FILE} "
                        f"(found: {', '.join(present) or 'nothing'})",
                    )
                ],
            )
        return candidate
    if not path.exists():
        raise StudyValidationError(
            path,
            [
                StudyIssue(
                    path, None, None, "",
                    f"no such file or folder; give a study folder (studies/<id>) or its {STUDY_FILE}",
                )
            ],
        )
    return path


def load_study(path: Path | str) -> Study:
    """Load and validate a study definition.

    Parameters
    ----------
    path : str or Path
        The study folder (``studies/<id>``) or its ``study.yaml``.

    Returns
    -------
    Study
        The validated study; ``study.path`` is its folder.

    Raises
    ------
    StudyValidationError
        Listing every problem with file, line, field path and what is accepted.

    Examples
    --------
    >>> study = load_study("studies/epmc-demo")  # doctest: +SKIP
    >>> study.primary_endpoint.code  # doctest: +SKIP
    'NLFLEN'
    """
    file = _resolve(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise StudyValidationError(
            file, [StudyIssue(file, None, None, "", f"not UTF-8 text (byte {exc.start}); save the file as UTF-8")]
        ) from None
    except OSError as exc:
        raise StudyValidationError(file, [StudyIssue(file, None, None, "", f"cannot read: {exc.strerror}")]) from None
    return study_from_yaml(text, source=file, folder=file.parent)


def study_from_yaml(text: str, *, source: Path | str | None = None, folder: Path | None = None) -> Study:
    """Validate a study definition given as YAML text.

    Parameters
    ----------
    text : str
        The YAML document.
    source : str or Path, optional
        Where the text came from, for messages.
    folder : Path, optional
        The study folder; when given, the study id must equal its name.

    Returns
    -------
    Study

    Raises
    ------
    StudyValidationError
    """
    file = Path(source) if source is not None else None
    root, data = _parse(text, file)
    issues: list[StudyIssue] = []
    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        errors = _collect_errors(data, exc)
        issues = [_issue(err, root, file) for err in errors]
        study = None
    if study is not None and folder is not None and study.id != folder.name:
        issues.append(
            _issue_at(
                ("id",), root, file,
                f"study id {study.id!r} differs from its folder name {folder.name!r}; data goes to data/<id>, "
                "so keep them equal",
            )
        )
    if study is not None and study.ae_dictionary is not None:
        from toolkit.errors import ConfigurationError
        from toolkit.study.ae_dictionary import STARTER, load_ae_dictionary

        base = folder.resolve() if folder is not None else Path.cwd()
        target = study.ae_dictionary if study.ae_dictionary == STARTER else base / study.ae_dictionary
        try:
            load_ae_dictionary(target)
        except ConfigurationError as exc:
            detail = "; ".join(map(str, exc.details[:5])) if exc.details else ""
            issues.append(_issue_at(("ae_dictionary",), root, file, f"{exc.message}{': ' + detail if detail else ''}"))
    if issues or study is None:
        issues.sort(key=lambda i: (i.line or 0, i.column or 0))
        raise StudyValidationError(file, issues)
    study._path = folder.resolve() if folder is not None else None
    return study


# -- YAML ------------------------------------------------------------------------------------------------


def _parse(text: str, file: Path | None) -> tuple[yaml.Node, dict]:
    required = ", ".join(n for n, f in Study.model_fields.items() if f.is_required())
    empty = StudyValidationError(
        file, [StudyIssue(file, None, None, "", f"the file is empty (no YAML content); a study needs: {required}")]
    )
    if not text.strip():
        raise empty
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise empty
        duplicates = list(_duplicate_keys(root, ""))
        if duplicates:
            raise StudyValidationError(
                file,
                [
                    StudyIssue(file, node.start_mark.line + 1, node.start_mark.column + 1, path, f"key {node.value!r} repeats (YAML keeps only the last)")
                    for path, node in duplicates
                ],
            )
        data = loader.construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
        raise StudyValidationError(
            file,
            [StudyIssue(file, mark.line + 1 if mark else None, mark.column + 1 if mark else None, "", message)],
        ) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise StudyValidationError(
            file,
            [
                StudyIssue(
                    file, root.start_mark.line + 1, root.start_mark.column + 1, "",
                    f"a study file is a mapping of keys (id:, title:, design: ...), not a {type(data).__name__}",
                )
            ],
        )
    return root, data


def _duplicate_keys(node: yaml.Node, path: str):
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                yield (f"{path}.{name}" if path else name), key
            seen.add(name)
            yield from _duplicate_keys(value, f"{path}.{name}" if path else name)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}[{i}]")


def _walk(root: yaml.Node, loc: tuple) -> tuple[yaml.Node, list[str | int], yaml.Node | None]:
    """Follow ``loc`` down the node tree; return the deepest node, the matched path, and the key node."""
    node, path, key_node = root, [], None
    for element in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(element, str):
            for key, value in node.value:
                if str(key.value) == element:
                    node, key_node = value, key
                    path.append(element)
                    break
            # not a key of this mapping: a union tag or validator name pydantic adds; skip it
        elif isinstance(node, yaml.SequenceNode) and isinstance(element, int) and 0 <= element < len(node.value):
            node, key_node = node.value[element], None
            path.append(element)
    return node, path, key_node


def _format_path(path: list[str | int]) -> str:
    out = ""
    for element in path:
        out += f"[{element}]" if isinstance(element, int) else (f".{element}" if out else element)
    return out


# -- pydantic errors to issues ---------------------------------------------------------------------------


def _issue_at(loc: tuple, root: yaml.Node, file: Path | None, message: str) -> StudyIssue:
    node, path, _key = _walk(root, loc)
    return StudyIssue(file, node.start_mark.line + 1, node.start_mark.column + 1, _format_path(path), message)


def _issue(error: dict, root: yaml.Node, file: Path | None) -> StudyIssue:
    loc = tuple(error["loc"])
    kind = error["type"]
    node, path, key_node = _walk(root, loc)
    mark = node.start_mark
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if message.startswith("Assertion failed, "):
        message = message[len("Assertion failed, "):]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        if key_node is not None:
            mark = key_node.start_mark
        accepted = _accepted_keys(loc[:-1])
        message = f"unknown key {key!r}"
        if accepted:
            close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
            message += (f" (did you mean {close[0]!r}?)" if close else "") + f"; accepted here: {', '.join(accepted)}"
    elif kind == "missing":
        missing = str(loc[-1])
        path = [*path, missing]
        message = f"required key {missing!r} is missing"
        if missing == "prescription":
            message = "the arm has no prescription; add prescription: with modality: electroporation, microcurrent or sham"
    elif kind == "union_tag_not_found":
        tag = error.get("ctx", {}).get("discriminator", "").strip("'")
        message = f"add {tag}: (one of {_tags_for(tag)})"
    elif kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        message = f"{ctx.get('tag')!r} is not accepted; use one of {ctx.get('expected_tags')}"
        tag_name = str(ctx.get("discriminator", "")).strip("'")
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == tag_name:
                    mark = value.start_mark
                    path = [*path, tag_name]
    elif kind in ("string_too_long", "string_too_short"):
        message = f"{message}; got {len(str(error.get('input')))}: {error.get('input')!r}"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"expected a mapping (key: value lines) here, got {_kind_of(error.get('input'))}"
    elif kind in ("tuple_type", "list_type"):
        message = f"expected a list here (- item lines or [a, b]), got {_kind_of(error.get('input'))}"
    elif kind in ("literal_error", "enum") or kind.endswith(("_type", "_parsing")):
        message = f"{message}; got {_short_repr(error.get('input'))}"
    return StudyIssue(file, mark.line + 1, mark.column + 1, _format_path(path), message)


def _unwrap(tp: object) -> list[object]:
    """The candidate types a (possibly Optional/Union/Annotated) annotation stands for."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[object] = []
        for arg in typing.get_args(tp):
            out += _unwrap(arg)
        return out
    return [tp]


def _step(tp: object, element: str | int) -> list[object]:
    out: list[object] = []
    for candidate in _unwrap(tp):
        origin = typing.get_origin(candidate)
        if isinstance(element, int) and origin in (tuple, list):
            out.append(typing.get_args(candidate)[0])
        elif isinstance(element, str) and isinstance(candidate, type) and issubclass(candidate, BaseModel):
            field = candidate.model_fields.get(element)
            if field is not None:
                out.append(field.annotation)
    return out


def _accepted_keys(loc: tuple) -> list[str]:
    """The keys accepted by the model at ``loc`` (for 'unknown key' messages)."""
    current: list[object] = [Study]
    for element in loc:
        stepped: list[object] = []
        for tp in current:
            stepped += _step(tp, element)
        if stepped:
            current = stepped
        else:
            # a union tag (e.g. 'microcurrent'): keep the union member whose tag matches
            narrowed = [
                c
                for tp in current
                for c in _unwrap(tp)
                if isinstance(c, type) and issubclass(c, BaseModel) and _tag_of(c) == element
            ]
            current = narrowed or current
    keys: list[str] = []
    models = [c for tp in current for c in _unwrap(tp) if isinstance(c, type) and issubclass(c, BaseModel)]
    if len(models) == 1:
        keys = list(models[0].model_fields)
    return keys


def _tag_of(model: type[BaseModel]) -> str | None:
    for name in ("modality", "kind"):
        field = model.model_fields.get(name)
        if field is not None and isinstance(field.default, str):
            return field.default
    return None


def _tags_for(tag: str) -> str:
    if tag == "modality":
        return "electroporation, microcurrent, sham"
    if tag == "kind":
        return "photo, scale, safety"
    return "see the documentation"


def _kind_of(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "text", int: "a number", float: "a number", bool: "true/false"}
    if value is None:
        return "nothing (an empty value)"
    return f"{names.get(type(value), type(value).__name__)} {_short_repr(value)}"


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _collect_errors(data: dict, exc: ValidationError) -> list[dict]:
    """Every error pydantic finds, plus those its first pass could not reach.

    Cross-field rules of a section run only when all its fields are valid, so an unknown key would hide,
    say, a visit after session 14 of 12. A second pass without the unknown keys reaches those rules, and the
    safety envelope is checked arm by arm even when other sections are broken.
    """
    errors = list(exc.errors(include_url=False))
    extras = [tuple(e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
    if extras:
        try:
            Study.model_validate(_without(data, extras))
        except ValidationError as second:
            errors += second.errors(include_url=False)
    errors += _envelope_errors(data)
    # pydantic adds a "too short" error to a list whose items failed; the item errors say more
    failing_parents = {tuple(e["loc"])[:n] for e in errors for n in range(len(e["loc"]))}
    unique: dict[tuple, dict] = {}
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "too_short" and loc in failing_parents:
            continue
        unique.setdefault((loc, error["msg"]), error)
    return list(unique.values())


def _without(data: object, locs: list[tuple]) -> object:
    """A copy of ``data`` with the keys at ``locs`` removed (locs may include union tags to skip)."""
    clone = copy.deepcopy(data)
    for loc in locs:
        node = clone
        for element in loc[:-1]:
            in_mapping = isinstance(node, dict) and element in node
            in_list = isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node)
            if in_mapping or in_list:
                node = node[element]
        if isinstance(node, dict):
            node.pop(loc[-1], None)
    return clone


def _envelope_errors(data: dict) -> list[dict]:
    """Envelope violations of every arm that validates on its own (they matter most)."""
    try:
        envelope = SafetyEnvelope.model_validate(data.get("envelope") or {})
    except ValidationError:
        envelope = SafetyEnvelope()
    arms = data.get("arms")
    if not isinstance(arms, list):
        return []
    errors: list[dict] = []
    adapter = TypeAdapter(Arm)
    for i, raw in enumerate(arms):
        try:
            arm = adapter.validate_python(raw)
        except ValidationError:
            continue
        for p in envelope_problems((arm,), envelope):
            errors.append({"type": p.kind, "loc": ("arms", i, *p.loc[2:]), "msg": p.message, "input": p.value})
    return errors
