"""YAML and JSON files written by people: a repeated key is an error, never a silent last-one-wins.

`yaml.safe_load` and `json.loads` both keep the last of two equal keys, so a budget that says
`amount` twice is applied with whichever came second. `load_document` refuses it, naming the key by
its path (`budgets[2].amount`) and both lines. Numbers with a fraction or an exponent come back as
`Decimal` spelled as written (`1500.50` stays `Decimal("1500.50")`, `1e3` is `Decimal("1E+3")`), so
a caller can refuse an exponent or too many decimals; JSON's NaN and Infinity are refused.
Every failure is one `DocumentError` whose text is one line. Pure: text in, value out.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
from decimal import Decimal, InvalidOperation
from typing import Any

_MAX_KEY_SHOWN = 60


class DocumentError(ValueError):
    """Not a document we accept. `where` is a key path (`budgets[2].amount`) or a line."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def key_text(key: Any) -> str:
    """A mapping key as it may appear in a one-line path: printable and short, else its repr."""
    text = key if isinstance(key, str) else repr(key)
    if not text.isprintable() or len(text) > _MAX_KEY_SHOWN or not text:
        text = repr(text[:_MAX_KEY_SHOWN] + ("…" if len(text) > _MAX_KEY_SHOWN else ""))
    return text


def join_path(path: str, key: Any) -> str:
    return f"{path}.{key_text(key)}" if path else key_text(key)


def load_document(text: str, filename: str, *, root: str) -> Any:
    """Parse `text` as YAML when `filename` ends in .yaml/.yml, else as JSON.

    `root` names a top-level list in paths (`budgets[0]`); keys of a top-level mapping are named bare.
    Raises `DocumentError`: not YAML/JSON (with line and column), a repeated key, NaN/Infinity in
    JSON, nesting too deep for the parser.
    """
    if filename.endswith((".yaml", ".yml")):
        return _load_yaml(text, filename, root)
    return _load_json(text, filename, root)


def _repeated(path: str, key: Any, line: int, first: int) -> DocumentError:
    lines = f"both on line {line}" if line == first else f"lines {first} and {line}"
    return DocumentError(
        join_path(path, key),
        f"appears twice in one mapping ({lines}); the second would silently replace the first, so keep one",
    )


# --- YAML -------------------------------------------------------------------------------------

_MERGE_TAG = "tag:yaml.org,2002:merge"
_FLOAT_TAG = "tag:yaml.org,2002:float"


def _load_yaml(text: str, filename: str, root: str) -> Any:
    import yaml  # CLI-only dependency: Lambda functions never read YAML

    class Loader(yaml.SafeLoader):
        def construct_yaml_float(self, node: Any) -> Any:
            spelled = str(node.value).replace("_", "")
            try:
                value = Decimal(spelled)
            except InvalidOperation:  # .inf, .nan, 1:30.5 (sexagesimal): YAML's own reading
                return super().construct_yaml_float(node)
            return value if value.is_finite() else super().construct_yaml_float(node)

    Loader.add_constructor(_FLOAT_TAG, Loader.construct_yaml_float)
    try:
        loader = Loader(text)  # reads the text at once: a control character fails here
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_yaml_keys(node, root)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{filename} line {mark.line + 1}, column {mark.column + 1}" if mark else filename
        problem = " ".join(str(error.problem or error.context or "not valid YAML").split())
        raise DocumentError(where, f"{problem} (not valid YAML)") from None
    except yaml.YAMLError as error:
        raise DocumentError(filename, " ".join(f"{error} (not valid YAML)".split())) from None
    except RecursionError:
        raise DocumentError(filename, "nested too deep to read") from None


def _check_yaml_keys(node: Any, root: str) -> None:
    """Walk the composed node tree (its own stack; each aliased node once) for repeated keys."""
    import yaml

    pending: list[tuple[Any, str]] = [(node, "")]
    walked: set[int] = set()
    while pending:
        current, path = pending.pop()
        if id(current) in walked:
            continue
        walked.add(id(current))
        if isinstance(current, yaml.MappingNode):
            first_line: dict[tuple[str, str], int] = {}
            for key_node, value_node in current.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    pending.append((value_node, path))  # `<<: *defaults` may be overridden: not a repeat
                    continue
                line = key_node.start_mark.line + 1
                key = (key_node.tag, key_node.value)
                if key in first_line:
                    raise _repeated(path, key_node.value, line, first_line[key])
                first_line[key] = line
                pending.append((value_node, join_path(path, key_node.value)))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                pending.append((item, f"{path or root}[{index}]"))


# --- JSON -------------------------------------------------------------------------------------


class _StrictDecoder(json.JSONDecoder):
    """The pure-Python scanner with an object parser that notes each object's repeated key."""

    def __init__(self, text: str, filename: str) -> None:
        def refuse_constant(name: str) -> Any:
            raise DocumentError(filename, f"{name} is not a JSON number; write a number as digits, like 1500.00")

        super().__init__(parse_float=Decimal, parse_constant=refuse_constant)
        self.text = text
        self.repeats: dict[int, tuple[str, int, int]] = {}  # id(object) -> (key, line, first line)
        self.parse_object = self._parse_object
        self.scan_once = json.scanner.py_make_scanner(self)  # type: ignore[attr-defined]

    def _line(self, index: int) -> int:
        return self.text.count("\n", 0, index) + 1

    def _parse_object(
        self, s_and_end: Any, strict: bool, scan_once: Any, object_hook: Any, pairs_hook: Any, memo: Any = None
    ) -> Any:
        value_at: list[int] = []

        def scan_value(string: str, index: int) -> Any:
            value_at.append(index)
            return scan_once(string, index)

        pairs, end = json.decoder.JSONObject(  # type: ignore[attr-defined]
            s_and_end, strict, scan_value, None, list, memo
        )
        result: dict[str, Any] = {}
        first: dict[str, int] = {}
        for (key, value), index in zip(pairs, value_at, strict=False):
            if key in result and id(result) not in self.repeats:
                self.repeats[id(result)] = (key, self._line(index), first[key])
            first.setdefault(key, self._line(index))
            result[key] = value
        return result, end


def _load_json(text: str, filename: str, root: str) -> Any:
    decoder = _StrictDecoder(text, filename)
    try:
        value = decoder.decode(text)
    except json.JSONDecodeError as error:
        raise DocumentError(
            f"{filename} line {error.lineno}, column {error.colno}", f"{error.msg} (not valid JSON)"
        ) from None
    except RecursionError:
        raise DocumentError(filename, "nested too deep to read") from None
    except DocumentError:
        raise
    except ValueError as error:  # an integer too long for Python
        raise DocumentError(filename, " ".join(f"{error} (not valid JSON)".split())) from None
    if decoder.repeats:
        _raise_first_repeat(value, decoder.repeats, root)
    return value


def _raise_first_repeat(value: Any, repeats: dict[int, tuple[str, int, int]], root: str) -> None:
    found: list[tuple[int, str, str, int]] = []
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        current, path = pending.pop()
        if isinstance(current, dict):
            if id(current) in repeats:
                key, line, first = repeats[id(current)]
                found.append((line, path, key, first))
            pending.extend((item, join_path(path, key)) for key, item in current.items())
        elif isinstance(current, list):
            pending.extend((item, f"{path or root}[{index}]") for index, item in enumerate(current))
    line, path, key, first = min(found)
    raise _repeated(path, key, line, first)
