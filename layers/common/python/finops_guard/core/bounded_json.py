"""JSON from outside, parsed once with a bound on size and nesting. Pure, shared by both products.

`json.loads` recurses once per nesting level and raises RecursionError (not ValueError) on deep
input, refuses integers over 4,300 digits with a bare ValueError, and accepts NaN and Infinity.
`loads` turns all of these into one `JsonRefused` with a short reason, and checks the nesting
before parsing, so no input reaches the recursive parser deeper than `max_depth`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, NoReturn

# A JSON string, escapes included; an unterminated one runs to the end of the text (possessive
# quantifiers and no failing alternative: linear time, whatever the input).
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_INNERMOST_PAIR = re.compile(r"\[\]|\{\}")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonRefused(ValueError):
    """Not JSON we accept; `reason` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def nesting_within(text: str, max_depth: int) -> bool | None:
    """True when the arrays and objects of `text` nest at most `max_depth` deep, False when deeper,
    None when the brackets do not balance (not JSON). Strings are skipped; each pass removes the
    innermost empty pairs, so depth d takes d passes, each one regular-expression sweep."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(max_depth):
        if not brackets:
            return True
        fewer = _INNERMOST_PAIR.sub("", brackets)
        if len(fewer) == len(brackets):
            return None
        brackets = fewer
    return not brackets


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number")


def loads(text: Any, *, max_depth: int, max_chars: int, parse_float: Callable[[str], Any] = float) -> Any:
    """Parse `text` as JSON. Refused: not a str, longer than `max_chars`, nested deeper than
    `max_depth`, not JSON, NaN/Infinity, integers too long for Python, and lone surrogates (a
    "\\ud800" escape: text that UTF-8 cannot encode, so could be neither stored nor posted)."""
    if not isinstance(text, str):
        raise JsonRefused("not a JSON string")
    if len(text) > max_chars:
        raise JsonRefused(f"longer than {max_chars} characters")
    if has_surrogates(text):
        raise JsonRefused("not valid UTF-8 text")
    nesting = nesting_within(text, max_depth)
    if nesting is None:
        raise JsonRefused("not JSON")
    if not nesting:
        raise JsonRefused(f"nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_float=parse_float, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise JsonRefused("not JSON") from None
    if _SURROGATE_ESCAPE.search(text) is not None and _holds_surrogate(value):
        raise JsonRefused("not valid UTF-8 text")
    return value


def has_surrogates(text: str) -> bool:
    """True when `text` holds a lone surrogate: UTF-8 cannot encode it."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _holds_surrogate(value: Any) -> bool:
    """True when a string or key anywhere in the parsed value holds a lone surrogate (a walk with
    its own stack: the depth is already bounded, but it needs none either way)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if has_surrogates(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
