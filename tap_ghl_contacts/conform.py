"""Check each record's top-level values against the stream's declared JSON types.

singer-sdk's own per-field conformance is off (it was half the CPU per record), so this
is the cheap check that keeps a value of the wrong type (a string where GHL documents a
list, say) from reaching a target as if it were good.
"""

from __future__ import annotations

import decimal
from typing import Any

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float, decimal.Decimal),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


class FieldTypes:
    """The Python types each declared top-level property accepts."""

    def __init__(self, schema: dict[str, Any], *, skip: frozenset[str] = frozenset()) -> None:
        """Read the declared types of ``schema``; fields in ``skip`` are checked elsewhere."""
        self.accepted: dict[str, tuple[type, ...]] = {}
        self.rejects_bool: set[str] = set()
        self.required: set[str] = set()
        for name, prop in (schema.get("properties") or {}).items():
            kinds = prop.get("type")
            if name in skip or not kinds:
                continue
            kinds = [kinds] if isinstance(kinds, str) else list(kinds)
            self.accepted[name] = tuple(t for kind in kinds for t in _PYTHON_TYPES.get(kind, ()))
            if "boolean" not in kinds:
                self.rejects_bool.add(name)  # bool is an int to isinstance
            if "null" not in kinds:
                self.required.add(name)

    def mismatches(self, row: dict[str, Any]) -> list[str]:
        """Declared fields of ``row`` whose value has a type the schema does not allow."""
        wrong = []
        for name, value in row.items():
            accepted = self.accepted.get(name)
            if accepted is None:
                continue
            if not isinstance(value, accepted) or (isinstance(value, bool) and name in self.rejects_bool):
                wrong.append(name)
        return wrong
