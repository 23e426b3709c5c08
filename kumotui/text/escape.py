"""Text from other machines made safe to show: control characters escaped, visibly.

A kernel value, a host name or a journal field read from a remote host or a
simulated tree is data someone else chose. Printed raw, ``ESC ] 0 ; ... BEL``
retitles the operator's terminal, ``ESC [ 2 J`` clears it, and a carriage
return or a bidi override hides what really follows. Every place where such
text reaches a terminal (the CLI's tables and lines, the app's header, tables
and panels) shows it through :func:`printable`, which keeps the text readable
and turns each control character into a Python-style escape (``\\x1b``,
``\\u202e``), so what was there can still be seen and reported.
"""

from __future__ import annotations

import functools
import re

_OTHER_CONTROLS = (
    "\x7f"  # DEL
    "\x80-\x9f"  # C1 controls (CSI 0x9b acts as ESC [ on some terminals)
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings, overrides, isolates
    "\u2028\u2029"  # line and paragraph separators
)


@functools.cache
def _controls(keep: str) -> re.Pattern[str]:
    c0 = "".join(f"\\x{code:02x}" for code in range(0x20) if chr(code) not in keep)
    return re.compile(f"[{c0}{_OTHER_CONTROLS}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep: str = "\t") -> str:
    """``text`` with every control character written as an escape.

    Args:
        text: anything that came from outside kumotui (a remote host, a tree, a journal).
        keep: C0 characters to leave as they are: by default the tab, which is
            how the kernel separates multi-number values (``32768<TAB>60999``)
            and which tables expand; ``"\\t\\n"`` for multi-line messages of
            kumotui's own; ``""`` where even a tab would break a layout.

    Returns:
        The same text when it holds nothing to escape (the common case, so
        this is cheap to call on every cell), else the escaped copy.
    """
    pattern = _controls(keep)
    return pattern.sub(_escape, text) if pattern.search(text) else text
