"""Python values checked for the C fields and arguments they go into.

ctypes truncates out-of-range integers silently (a shape of 2**64 + 4 becomes 4, a pointer of
2**64 + 0x1000 becomes 0x1000), so every integer written into a C struct first passes a range
check here and anything else fails with TypeError / OverflowError naming the field. Strings
become ASCII bytes. Hot paths test the common case inline (an exact int in range) and call
these helpers only for the rest; validated strings and integer tuples are remembered, since
a program passes the same few layouts, typestrs and shapes over and over.
"""
import operator
from collections import namedtuple

Range = namedtuple("Range", ["name", "low", "high"])
INT32 = Range("int32", -(2**31), 2**31 - 1)
INT64 = Range("int64", -(2**63), 2**63 - 1)
UINT64 = Range("uint64", 0, 2**64 - 1)

_MEMO_LIMIT = 256
ENCODED: dict[object, bytes] = {}  # str/bytes -> validated bytes (hot paths look up inline)
INT64_TUPLES: dict[tuple, tuple] = {}  # tuple of exact ints in int64 range -> itself (hot paths look up inline)


def remember(table, key, value):
    """Stores ``value`` under ``key`` in a memo ``table`` (while it has room); returns ``value``."""
    if len(table) < _MEMO_LIMIT:
        table[key] = value
    return value


def integer(value, field, bounds):
    """``value`` as an exact int within ``bounds``, else TypeError / OverflowError naming ``field``.
    A float with an integral value counts as that integer: the remembered tuples compare equal to
    it, so accepting it here keeps the answer independent of what was seen before."""
    if type(value) is not int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # as a remembered tuple equal to it would give it
        else:
            try:
                value = operator.index(value)
            except TypeError:
                raise TypeError(f"{field} must be an integer, not {type(value).__name__} {value!r}") from None
    if not bounds.low <= value <= bounds.high:
        raise OverflowError(f"{field} = {value} does not fit {bounds.name}")
    return value


def int64_tuple(values, field):
    """``values`` (a sequence of integers) as a tuple of exact ints in int64 range."""
    if type(values) is tuple:
        try:
            checked = INT64_TUPLES.get(values)
        except TypeError:  # an unhashable element: the slow path says what it is
            checked = None
        if checked is not None:
            return checked
    try:
        items = tuple(values)
    except TypeError:
        raise TypeError(f"{field} must be a sequence of integers, not {type(values).__name__}") from None
    checked = tuple([integer(item, f"{field}[{i}]", INT64) for i, item in enumerate(items)])
    return remember(INT64_TUPLES, checked, checked)


def ascii_bytes(text, field):
    """``text`` (str or bytes) as ASCII bytes without NUL, for a C string argument or field."""
    try:
        encoded = ENCODED.get(text)
    except TypeError:  # unhashable
        encoded = None
    if encoded is not None:
        return encoded
    if isinstance(text, str):
        encoded = text.encode("ascii", "strict")
    elif isinstance(text, bytes):
        encoded = bytes(text)
    else:
        raise TypeError(f"{field} must be a str, not {type(text).__name__}")
    if b"\0" in encoded:
        raise ValueError(f"{field} {text!r} contains a NUL character")
    return remember(ENCODED, text, encoded)


def layout_bytes(layout):
    """A layout argument as a C string: None stays None (no layout)."""
    return None if layout is None else ascii_bytes(layout, "layout")
