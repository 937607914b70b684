"""Plain Python values <-> wasmtime component values, guided by the function's WIT types.

`lower` builds an argument from plain data (`environments.wasm.component` says which plain value stands
for which WIT type); `lift` turns a returned value into plain JSON-able data. wasmtime-py leaves a
`result` / `variant` / `option` value untagged when its cases' Python classes cannot be confused, so
`lift` tells the case apart the way wasmtime-py chose it: by the classes each case's payload lifts to.
"""

from __future__ import annotations

from typing import Any

from wasmtime import component as wc

from environments.wasm.errors import WasmError

INTEGERS = (wc.S8, wc.S16, wc.S32, wc.S64, wc.U8, wc.U16, wc.U32, wc.U64)
PRIMITIVES = (wc.Bool, *INTEGERS, wc.Char, wc.String)
FLOATS = (wc.F32, wc.F64)


class ValueMismatch(WasmError):
    """A plain argument does not fit the function's parameter type."""


def lower(ty: Any, value: Any, where: str = "argument") -> Any:
    """The wasmtime value of WIT type `ty` for the plain `value` (ValueMismatch naming `where`)."""
    if isinstance(ty, FLOATS):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueMismatch(f"{where} must be a number, got {value!r}")
        return float(value)
    if isinstance(ty, INTEGERS):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueMismatch(f"{where} must be an integer, got {value!r}")
        return value
    if isinstance(ty, wc.Bool | wc.String | wc.Char):
        expected = bool if isinstance(ty, wc.Bool) else str
        if not isinstance(value, expected):
            raise ValueMismatch(f"{where} must be a {expected.__name__}, got {value!r}")
        return value
    if isinstance(ty, wc.RecordType):
        if not isinstance(value, dict):
            raise ValueMismatch(f"{where} must be an object (a record), got {type(value).__name__}")
        missing = [name for name, _ in ty.fields if name not in value]
        if missing:
            raise ValueMismatch(f"{where} lacks the record field(s) {', '.join(missing)}")
        record = wc.Record()
        for name, field_type in ty.fields:
            setattr(record, name, lower(field_type, value[name], f"{where}.{name}"))
        return record
    if isinstance(ty, wc.ListType):
        if not isinstance(value, list | tuple):
            raise ValueMismatch(f"{where} must be a list, got {type(value).__name__}")
        return [lower(ty.element, item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(ty, wc.OptionType):
        return None if value is None else lower(ty.payload, value, where)
    if isinstance(ty, wc.EnumType):
        if value not in ty.names:
            raise ValueMismatch(f"{where} must be one of {', '.join(ty.names)}, got {value!r}")
        return value
    raise ValueMismatch(f"{where}: the host passes no {type(ty).__name__} arguments")


def _classes(ty: Any | None) -> set[type]:
    found: set[type] = set()
    if ty is None:
        found.add(object)
    else:
        ty.add_classes(found)
    return found


def _tagged(cases: list[tuple[str, Any | None]]) -> bool:
    """wasmtime-py's rule: a variant-like value is a `Variant` when two cases' classes overlap."""
    seen: set[type] = set()
    for _, ty in cases:
        classes = _classes(ty)
        if classes & seen:
            return True
        seen |= classes
    return False


def _case(cases: list[tuple[str, Any | None]], value: Any) -> tuple[str, Any | None, Any]:
    """(case name, its payload type, the payload) of a lifted variant-like value."""
    if _tagged(cases):
        ty = dict(cases)[value.tag]
        return value.tag, ty, value.payload
    for name, ty in cases:
        if ty is None and value is None:
            return name, None, None
        if ty is not None and isinstance(value, tuple(_classes(ty))):
            return name, ty, value
    raise WasmError(f"the component returned {value!r}, which fits none of the cases {[n for n, _ in cases]}")


def lift(ty: Any, value: Any) -> Any:
    """Plain JSON-able data for a value of WIT type `ty` returned by a component."""
    if isinstance(ty, (*PRIMITIVES, *FLOATS, wc.EnumType)):
        return value
    if isinstance(ty, wc.RecordType):
        return {name: lift(field_type, getattr(value, name)) for name, field_type in ty.fields}
    if isinstance(ty, wc.ListType):
        return list(value) if isinstance(value, bytes) else [lift(ty.element, item) for item in value]
    if isinstance(ty, wc.TupleType):
        return [lift(item_type, item) for item_type, item in zip(ty.elements, value, strict=True)]
    if isinstance(ty, wc.OptionType):
        if value is None:
            return None
        _, payload_type, payload = _case([("none", None), ("some", ty.payload)], value)
        return lift(payload_type, payload)
    if isinstance(ty, wc.ResultType):
        name, payload_type, payload = _case([("ok", ty.ok), ("err", ty.err)], value)
        return {name: None if payload_type is None else lift(payload_type, payload)}
    if isinstance(ty, wc.VariantType):
        name, payload_type, payload = _case(ty.cases, value)
        return {"tag": name, "value": None if payload_type is None else lift(payload_type, payload)}
    if isinstance(ty, wc.FlagsType):
        return sorted(value)
    raise WasmError(f"the component returned a {type(ty).__name__}, which the host cannot pass on")
