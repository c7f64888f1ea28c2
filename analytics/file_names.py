"""File names made from text a person typed (plan, rep and territory names and ids): the
one rule every download and export uses, so no name reaches the file system with a path
separator, a leading dot or a character a file system refuses."""

from __future__ import annotations

import re

STEM_MAX = 100
"""Characters kept (file systems allow 255 bytes)."""


def stem(text: str, fallback: str) -> str:
    """`text` with every run of characters other than letters, digits, `.`, `_`, `-` as
    one `_`, no leading or trailing dots or underscores, at most STEM_MAX characters;
    `fallback` when nothing is left."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")[:STEM_MAX]
    return out.rstrip("._") or fallback
