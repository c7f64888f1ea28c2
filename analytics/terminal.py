"""What the command line prints is text, never terminal control.

A plan, territory or account name can hold an escape sequence (`\\x1b[2J` clears the
screen, `\\x1b]8;;http://...` makes a link, a bare carriage return overwrites the line
before it). Everything the command line writes to its standard output and error goes
through `terminal_text`, which shows each control character as U+FFFD instead; line ends
(`\\n`, `\\r\\n`) and tabs stay. Files written with `--out` or `--report` keep the data as
stored (their CSV cells are made safe to open by analytics/exports/cells.py).
"""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")
REPLACEMENT = "\ufffd"


def terminal_text(text: str) -> str:
    """`text` with every control character but line ends and tabs replaced."""
    return _CONTROL.sub(REPLACEMENT, text)


class SafeStream:
    """A text stream that writes through `terminal_text` to the stream it wraps."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(terminal_text(text))

    def __getattr__(self, name):  # flush, isatty, encoding, ...
        return getattr(self.stream, name)


@contextmanager
def safe_terminal():
    """Standard output and error through `terminal_text` while the block runs."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(out), SafeStream(err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err
