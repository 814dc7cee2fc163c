"""How the drift metrics read text: lowercased words, and the n-grams they form.

Openers, persona markers and learned markers all compare answers word by word, so all of them
must split text the same way: ``"Oh, *GREAT*..."`` and ``"oh great"`` are the same two words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_WORD_RE = re.compile(r"\w+(?:['\u2019]\w+)*")


def words(text: str) -> list[str]:
    """Return the lowercased words of ``text``, punctuation removed, apostrophes kept.

    >>> words("Oh, *GREAT*... it's raining.")
    ['oh', 'great', "it's", 'raining']
    """
    return [w.replace("\u2019", "'") for w in _WORD_RE.findall(text.lower())]


def ngrams(tokens: list[str], sizes: range) -> Iterator[str]:
    """Yield every run of ``n`` consecutive tokens, joined by spaces, for each ``n`` in ``sizes``.

    >>> list(ngrams(["oh", "great", "rain"], range(1, 3)))
    ['oh', 'great', 'rain', 'oh great', 'great rain']
    """
    for n in sizes:
        for i in range(len(tokens) - n + 1):
            yield " ".join(tokens[i : i + n])
