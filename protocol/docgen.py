"""Generate the message and error-code tables of ``protocol/README.md`` from the declarations.

The README holds them between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` markers;
``hil gen all`` (or ``python -m protocol.docgen``) rewrites them and a test fails when they are stale.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import construct as cs

from protocol import messages as m
from protocol.errors import ErrorCode

__all__ = ["README", "render_tables", "update_readme"]

README = Path(__file__).with_name("README.md")

_DIRECTION = {"Hello": "host → device", "Infer": "host → device", "Ping": "host → device",
              "Stats": "host → device", "Log": "device → host"}
_NOTES = {
    "Result": {"input_crc": "CRC-32 of the sample bytes as received"},
    "Infer": {"samples": "sample-major"},
    "Error": {"offending_seq": "0xFFFF when the frame had none"},
    "Info": {"stack_used": "stack high-water mark in bytes"},
    "Part": {"data": "sample bytes index x part_bytes onwards"},
    "Held": {"have": "bit i set: part i held"},
}
_ERROR_MEANING = {
    ErrorCode.NONE: "(not sent)",
    ErrorCode.CRC: "CRC mismatch",
    ErrorCode.COBS: "a delimiter arrived inside a COBS block (truncated or garbled)",
    ErrorCode.LENGTH: "frame too long or too short, or length field disagrees with the frame",
    ErrorCode.VERSION: "the frame's protocol version is not the receiver's",
    ErrorCode.UNKNOWN_TYPE: "no such message type (or not one this side handles)",
    ErrorCode.PAYLOAD: "payload has the wrong shape (e.g. a window of the wrong size)",
    ErrorCode.OVERRUN: "receive buffer overflowed; bytes were lost",
    ErrorCode.BUSY: "reserved",
}


def _type_name(sub: cs.Construct) -> str:
    names = {cs.Int8ul: "u8", cs.Int8sl: "i8", cs.Int16ul: "u16", cs.Int16sl: "i16", cs.Int32ul: "u32",
             cs.Int32sl: "i32", cs.Float32l: "f32"}
    for k, v in names.items():
        if sub is k:
            return v
    if isinstance(sub, cs.StringEncoded):
        try:
            return f"char[{sub.sizeof()}]"
        except cs.SizeofError:
            return "ASCII text to the end"
    if isinstance(sub, cs.Bytes) and isinstance(sub.length, int):
        return f"u8[{sub.length}]"
    if isinstance(sub, cs.Array):
        return f"{_type_name(sub.subcon)}[n]"
    if isinstance(sub, cs.Switch):
        return " or ".join(sorted({f"{_type_name(c.subcon)}[n]" for c in sub.cases.values()}))
    if sub.__class__.__name__ == "GreedyBytes":  # construct's GreedyString is a StringEncoded, named above
        return "bytes to the end"
    if isinstance(sub, cs.Renamed):
        return _type_name(sub.subcon)
    return type(sub).__name__


def _fields(cls_name: str, schema: cs.Construct) -> str:
    if not isinstance(schema, cs.Struct):
        return "?"
    parts = []
    for sub in schema.subcons:
        if sub.name is None:
            continue
        note = _NOTES.get(cls_name, {}).get(sub.name)
        parts.append(f"{sub.name} {_type_name(sub.subcon)}" + (f" ({note})" if note else ""))
    return ", ".join(parts) or "empty"


def render_tables() -> dict[str, str]:
    rows = ["| type | name | direction | payload (little-endian) |", "|---|---|---|---|"]
    for t, cls in sorted(m.message_types().items(), key=lambda kv: int(kv[0])):
        direction = _DIRECTION.get(cls.__name__, "device → host" if int(t) & 0x80 else "host → device")
        rows.append(f"| 0x{int(t):02X} | {cls.__name__} | {direction} | {_fields(cls.__name__, cls._SCHEMA)} |")
    errs = ["| code | name | meaning |", "|---|---|---|"]
    errs += [f"| {int(e)} | {e.name} | {_ERROR_MEANING[e]} |" for e in ErrorCode if e != ErrorCode.NONE]
    return {"messages": "\n".join(rows), "errors": "\n".join(errs)}


def _replacer(table: str) -> Callable[[re.Match[str]], str]:
    def sub(mt: re.Match[str]) -> str:
        return mt.group(1) + table + "\n" + mt.group(2)
    return sub


def update_readme(text: str) -> str:
    for name, table in render_tables().items():
        pat = re.compile(rf"(<!-- generated:{name} -->\n)(?:.*?\n)?(<!-- /generated:{name} -->)", re.S)
        if not pat.search(text):
            raise ValueError(f"{README}: no <!-- generated:{name} --> block")
        text = pat.sub(_replacer(table), text)
    return text


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else README
    path.write_text(update_readme(path.read_text()))
    print(f"wrote {path}")
