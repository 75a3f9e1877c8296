"""Numbers spelled as English words, the way people say them.

``cardinal(1234) == "one thousand two hundred thirty four"``,
``digits("407") == "four oh seven"`` (or ``"four zero seven"``),
``year(1984) == "nineteen eighty four"``, ``ordinal(21) == "twenty first"``.
"""

from __future__ import annotations

__all__ = ["cardinal", "digits", "ordinal", "year"]

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_ORDINAL_IRREGULAR = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip


def _below_hundred(n: int) -> str:
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] if ones == 0 else f"{_TENS[tens]} {_ONES[ones]}"


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    parts = [f"{_ONES[hundreds]} hundred"] if hundreds else []
    if rest or not hundreds:
        parts.append(_below_hundred(rest))
    return " ".join(parts)


def cardinal(n: int) -> str:
    """0 <= n < 1,000,000 as words, without "and": 305 -> "three hundred five"."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"cardinal() takes 0 <= n < 1000000, got {n}")
    thousands, rest = divmod(n, 1000)
    if not thousands:
        return _below_thousand(rest)
    head = f"{_below_thousand(thousands)} thousand"
    return head if rest == 0 else f"{head} {_below_thousand(rest)}"


def digits(s: str, zero: str = "zero") -> str:
    """A digit string read digit by digit; ``zero`` is "zero" or "oh"."""
    if not s.isdigit():
        raise ValueError(f"digits() takes a string of digits, got {s!r}")
    return " ".join(zero if c == "0" else _ONES[int(c)] for c in s)


def year(n: int) -> str:
    """A year read in pairs: 1984 -> "nineteen eighty four", 2005 -> "two thousand five",
    1906 -> "nineteen oh six", 1900 -> "nineteen hundred"."""
    if not 1000 <= n <= 2099:
        raise ValueError(f"year() takes 1000..2099, got {n}")
    hi, lo = divmod(n, 100)
    if 2000 <= n < 2010:
        return cardinal(n)
    if lo == 0:
        return f"{_below_hundred(hi)} hundred"
    tail = f"oh {_ONES[lo]}" if lo < 10 else _below_hundred(lo)
    return f"{_below_hundred(hi)} {tail}"


def ordinal(n: int) -> str:
    """1 <= n < 100 as an ordinal: 1 -> "first", 22 -> "twenty second", 40 -> "fortieth"."""
    if not 1 <= n < 100:
        raise ValueError(f"ordinal() takes 1..99, got {n}")
    words = _below_hundred(n).split()
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        words[-1] = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)
