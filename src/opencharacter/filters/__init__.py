"""Data-quality filters: pure, deterministic checks of generated answers.

Degenerate samples were the main failure of earlier implementations: introspection runs that
kept 45% of their data, answers that looped, models that named another vendor as themselves,
teachers that leaked their reasoning or went on to write the user's next turn. Each filter here
is a pure function ``(text, *, finish_reason=None, **params) -> Verdict``; a
:class:`FilterChain` runs several in order, and :func:`filter_row`/:func:`filter_rows` apply
chains to DPO and SFT rows, online (one completion as it arrives) or offline (whole files),
with the same code. :class:`QualityReport` counts what was kept, dropped and cleaned, and
:mod:`opencharacter.filters.drift` measures a whole set of answers.

>>> from opencharacter.filters import FilterChain
>>> chain = FilterChain.for_stage("distill-chosen", teacher_names=("ChatGLM",),
...                               student_name="Qwen")
>>> verdict = chain.apply("<think>Stay in voice.</think>I'm ChatGLM, and I'd say the tide "
...                       "waits for no one, so set sail early.")
>>> verdict.keep, verdict.text, verdict.cleaned
(True, "I'm Qwen, and I'd say the tide waits for no one, so set sail early.", \
('reasoning-leak', 'identity-leak'))
"""

from opencharacter.filters._chain import FILTER_POINTS, FILTERS, FilterChain, FilterStep, dpo_chains
from opencharacter.filters._disclosure import check_disclosure, find_disclosure
from opencharacter.filters._identity import MODEL_NAMES, VENDORS, check_identity, find_identity_leak
from opencharacter.filters._repetition import check_repetition
from opencharacter.filters._report import QualityReport
from opencharacter.filters._rows import Chains, RowResult, filter_row, filter_rows
from opencharacter.filters._tags import (
    check_reasoning,
    check_roles,
    find_hallucinated_turn,
    strip_reasoning,
)
from opencharacter.filters._text import check_empty, check_garbage, check_length, check_truncation
from opencharacter.filters._verdict import REASONS, Verdict

__all__ = [
    "FILTERS",
    "FILTER_POINTS",
    "MODEL_NAMES",
    "REASONS",
    "VENDORS",
    "Chains",
    "FilterChain",
    "FilterStep",
    "QualityReport",
    "RowResult",
    "Verdict",
    "check_disclosure",
    "check_empty",
    "check_garbage",
    "check_identity",
    "check_length",
    "check_reasoning",
    "check_repetition",
    "check_roles",
    "check_truncation",
    "dpo_chains",
    "filter_row",
    "filter_rows",
    "find_disclosure",
    "find_hallucinated_turn",
    "find_identity_leak",
    "strip_reasoning",
]
