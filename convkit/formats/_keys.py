"""Field names that a layout uses for its own structure, escaped so that no field is lost.

A message may carry its own ``"from"``; a record read as messages may carry its own
``"conversations"``. Written as they are, the ShareGPT reader would take them for its speaker and
its turns. Each layer (the turn metadata convkit keeps, each written layout) has its own names;
a field whose name is one of them, after any number of :data:`ESCAPE` prefixes, is written with
one prefix more, and read back with one fewer. Every other field is written as it is. The rule
is a bijection on names, so any mix of fields, prefixed or not, comes back as it was::

    own field      ShareGPT turn        messages message
    "from"         "convkit:from"       "from"
    "value"        "convkit:value"      "value"
    "role"         "role"               "convkit:role"
    "convkit:from" "convkit:convkit:from"  "convkit:from"
"""

from __future__ import annotations

from typing import Any

ESCAPE = "convkit:"
_N = len(ESCAPE)


def rekey(key: str, inner: frozenset[str], outer: frozenset[str]) -> str:
    """``key``, written in a layer whose own names are ``inner``, as written in one whose own
    names are ``outer``. A bare name of ``inner`` is structure, not a field: callers handle it
    before."""
    if not key.startswith(ESCAPE):
        return ESCAPE + key if key in outer and key not in inner else key
    base = key[_N:]
    while base.startswith(ESCAPE):
        base = base[_N:]
    if base in outer:
        return key if base in inner else ESCAPE + key
    return key[_N:] if base in inner else key


def escape(key: str, names: frozenset[str]) -> str:
    """A field's name as written beside the structural ``names``."""
    return rekey(key, _NONE, names)


def unescape(key: str, names: frozenset[str]) -> str:
    """A written field's name as the field's own (``key`` is not one of ``names``)."""
    return rekey(key, names, _NONE)


def own_fields(
    record: dict[str, Any], read: frozenset[str], names: frozenset[str]
) -> dict[str, Any]:
    """The record's fields a reader did not consume (``read``), under their own names beside
    the layout's ``names``: the conversation's metadata."""
    if record.keys() <= read:  # most records hold only the fields read
        return {}
    return {unescape(k, names): v for k, v in record.items() if k not in read}


def put_fields(out: dict[str, Any], fields: dict[str, Any], names: frozenset[str]) -> None:
    """Each of ``fields`` into the record ``out``, under its name as written beside ``names``."""
    for k, v in fields.items():
        # Most names are neither structural nor prefixed: no call for them.
        out[escape(k, names) if k in names or k.startswith(ESCAPE) else k] = v


_NONE: frozenset[str] = frozenset()
