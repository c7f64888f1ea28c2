"""Text a person typed, shown as typed.

Streamlit renders Markdown (and its own additions: `:red[...]`, `:material/icon:`, `$math$`)
in `st.markdown`, captions, alerts, titles, expander and tab labels and widget labels. A
plan, territory, rep or account name, a file name, an engine message quoting one, or a URL
parameter holding `![x](http://host/x.png)` would otherwise fetch an image or show a live
link. `literal` escapes every ASCII punctuation character with a backslash (CommonMark's
escapes, which Streamlit honours) and folds line breaks, so the text is displayed exactly
and nothing in it is markup; wrap only the typed part of a message in it.

Escapes cannot stop GitHub's autolinks: Streamlit turns `http://...` and `www.` in the
displayed text into live links after escapes are resolved (seen in Chromium,
tests/e2e/test_text_as_text.py). A WORD JOINER (U+2060, invisible, not a space or
punctuation) is put before each, which the autolinker does not accept before a link.
"""

from __future__ import annotations

import re

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_AUTOLINK = re.compile(r"(?i)(https?:|www\.)")
WORD_JOINER = "\u2060"


def literal(value: object) -> str:
    """`value` as Markdown that displays exactly its text."""
    text = _AUTOLINK.sub(WORD_JOINER + r"\1", " ".join(str(value).splitlines()))
    return _PUNCTUATION.sub(r"\\\1", text)


def shown(markdown: str) -> str:
    """The text Markdown made by `literal` displays (its backslash escapes removed): what a
    person reads, for tests and logs that compare messages."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(WORD_JOINER, "")
