"""Lua source text from Python values: string literals that carry any bytes and can never end early.

Why: the policies kumotui writes for kumod hold text that came from users
(paths, a responses file's provider replies). Pasting such text between
quotes would let a ``'`` or a ``]]`` end the string and turn the rest into
Lua code. Every literal here is single-quoted and only printable ASCII
other than ``\\`` and ``'`` is written as itself; everything else (quotes,
backslashes, line breaks, control bytes, every byte of non-ASCII text) is a
``\\ddd`` decimal escape, always three digits so a digit after it can never
join it. Lua reads back exactly the bytes it was given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

_PLAIN = frozenset(range(0x20, 0x7F)) - {ord("\\"), ord("'")}


def lua_bytes(data: bytes) -> str:
    """A single-quoted Lua string literal whose value is exactly ``data``."""
    out = []
    for byte in data:
        if byte in _PLAIN:
            out.append(chr(byte))
        elif byte in (0x5C, 0x27):  # \ and ': the two the quotes need escaped, kept readable
            out.append("\\" + chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return "'" + "".join(out) + "'"


def lua_string(text: str) -> str:
    """A single-quoted Lua string literal for any text (its UTF-8 bytes): paths may hold quotes."""
    return lua_bytes(text.encode("utf-8", "surrogateescape"))


LuaValue = str | bytes | int | float | bool | Sequence["LuaValue"] | Mapping[str, "LuaValue"]
"""What :func:`lua_value` writes: strings, numbers, booleans, lists and string-keyed tables of them."""


def lua_value(value: LuaValue, indent: str = "") -> str:
    """A Lua expression for ``value``; table keys are always ``['quoted']`` (any text is a safe key).

    Raises:
        TypeError: a value of another type (a float that is not finite included).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TypeError(f"not a finite number: {value!r}")
        return repr(value)
    if isinstance(value, str):
        return lua_string(value)
    if isinstance(value, bytes):
        return lua_bytes(value)
    inner = indent + "  "
    if isinstance(value, Mapping):
        items = [f"{inner}[{lua_string(str(key))}] = {lua_value(item, inner)},\n" for key, item in value.items()]
    elif isinstance(value, Sequence):
        if all(isinstance(item, str | bytes | int | float) for item in value):  # a short row: one line
            return "{ " + ", ".join(lua_value(item) for item in value) + " }" if value else "{}"
        items = [f"{inner}{lua_value(item, inner)},\n" for item in value]
    else:
        raise TypeError(f"no Lua form for {type(value).__name__}")
    return "{\n" + "".join(items) + indent + "}" if items else "{}"
