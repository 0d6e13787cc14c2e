"""Check each record's top-level values against the stream's declared JSON types.

singer-sdk's own per-field conformance is off (it was half the CPU per record), so this
is the cheap check that keeps a value of the wrong type (a string where GHL documents a
list, say) from reaching a target as if it were good.
"""

from __future__ import annotations

import decimal
from typing import Any

# Exact types, as a JSON parser produces them: a bool is not accepted as a number.
_PYTHON_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "number": frozenset({int, float, decimal.Decimal}),
    "integer": frozenset({int}),
    "boolean": frozenset({bool}),
    "object": frozenset({dict}),
    "array": frozenset({list}),
    "null": frozenset({type(None)}),
}


class FieldTypes:
    """The Python types each declared top-level property accepts."""

    def __init__(self, schema: dict[str, Any], *, skip: frozenset[str] = frozenset()) -> None:
        """Read the declared types of ``schema``; fields in ``skip`` are checked elsewhere."""
        self.accepted: dict[str, frozenset[type]] = {}
        self.required: set[str] = set()
        for name, prop in (schema.get("properties") or {}).items():
            kinds = prop.get("type")
            if name in skip or not kinds:
                continue
            kinds = [kinds] if isinstance(kinds, str) else list(kinds)
            self.accepted[name] = frozenset().union(*(_PYTHON_TYPES.get(kind, ()) for kind in kinds))
            if "null" not in kinds:
                self.required.add(name)

    def mismatches(self, row: dict[str, Any]) -> list[str]:
        """Declared fields of ``row`` whose value has a type the schema does not allow."""
        accepted = self.accepted
        return [name for name, value in row.items() if name in accepted and type(value) not in accepted[name]]
