"""Counting a judge's answers: parse failures by reason, order flips, and a refusal past a limit.

Scores from a judge that could not be read are skewed and flattened, and a judge that follows
position rather than content is noise; so every judged evaluation keeps a :class:`JudgeTally`
beside its numbers, and :meth:`JudgeTally.check` refuses them when too many answers failed.
"""

from __future__ import annotations

import attrs

from opencharacter.errors import ConfigError, EvaluationError
from opencharacter.eval.judging import ScoreVerdict, Verdict

MAX_PARSE_FAILURES = 0.2
"""The default largest share of judge answers that may fail to parse before results are refused."""

_EXAMPLE_CHARS = 200


def consistent_winner(first: Verdict, swapped: Verdict, options: tuple[str, str]) -> str | None:
    """Return the winner of a pairwise judgement shown in both orders, or None.

    ``first`` was judged with the options in the order of ``options``, ``swapped`` with them
    reversed. Both verdicts must be expressed as option *names*: parse ``first`` with
    ``options`` and ``swapped`` with ``options[::-1]``, and an answer "1"/"2" maps to the name
    shown in that position. The judgement counts only when both parsed and name the same
    option; a judge that follows position rather than content gets None.

    >>> a, b = Verdict("warm"), Verdict("curious")
    >>> consistent_winner(a, a, ("warm", "curious")), consistent_winner(a, b, ("warm", "curious"))
    ('warm', None)
    """
    if first.ok and swapped.ok and first.choice == swapped.choice and first.choice in options:
        return first.choice
    return None


@attrs.define
class JudgeTally:
    """Counts of one evaluation's judge answers: parsed, failed (by reason), inconsistent.

    Record every judgement with :meth:`record` and every order-swapped pair with
    :meth:`record_pair`, then call :meth:`check` before trusting the numbers.

    Attributes:
        judgements: judge answers recorded.
        reasons: parse failures by reason (see :data:`FAILURES`).
        examples: the first raw answer seen for each failure reason, cut to 200 characters.
        pairs: order-swapped pairs whose two verdicts both parsed.
        inconsistent: those pairs whose two verdicts named different options.
    """

    judgements: int = 0
    reasons: dict[str, int] = attrs.field(factory=dict)
    examples: dict[str, str] = attrs.field(factory=dict)
    pairs: int = 0
    inconsistent: int = 0

    def record(self, verdict: Verdict | ScoreVerdict, raw: str) -> None:
        """Count one judge answer, ``raw`` being the judge's text it was parsed from."""
        self.judgements += 1
        if verdict.failure is not None:
            self.reasons[verdict.failure] = self.reasons.get(verdict.failure, 0) + 1
            if verdict.failure not in self.examples:
                cut = raw if len(raw) <= _EXAMPLE_CHARS else raw[:_EXAMPLE_CHARS] + "…"
                self.examples[verdict.failure] = cut

    def record_pair(self, first: Verdict, swapped: Verdict, options: tuple[str, str]) -> str | None:
        """Count one order-swapped pair and return its :func:`consistent_winner`.

        A pair with a failed verdict is not counted here: :meth:`record` counted the failure.
        """
        winner = consistent_winner(first, swapped, options)
        if first.ok and swapped.ok:
            self.pairs += 1
            self.inconsistent += int(winner is None)
        return winner

    @property
    def parse_failures(self) -> int:
        """Return the number of judge answers that failed to parse."""
        return sum(self.reasons.values())

    @property
    def failure_rate(self) -> float:
        """Return the share of judge answers that failed to parse (0.0 with none recorded)."""
        return self.parse_failures / self.judgements if self.judgements else 0.0

    @property
    def inconsistency_rate(self) -> float:
        """Return the share of parsed pairs whose verdict flipped with the order (0.0 if none)."""
        return self.inconsistent / self.pairs if self.pairs else 0.0

    def to_dict(self) -> dict[str, object]:
        """Return JSON-ready counts and rates, failure reasons most common first."""
        reasons = sorted(self.reasons.items(), key=lambda item: (-item[1], item[0]))
        return {
            "judgements": self.judgements,
            "parse_failures": self.parse_failures,
            "failure_rate": self.failure_rate,
            "reasons": dict(reasons),
            "examples": {reason: self.examples[reason] for reason, _ in reasons},
            "pairs": self.pairs,
            "inconsistent": self.inconsistent,
            "inconsistency_rate": self.inconsistency_rate,
        }

    def check(self, max_failure_share: float, evaluation: str) -> None:
        """Refuse the evaluation's numbers when more judge answers failed than allowed.

        Raises:
            ConfigError: ``max_failure_share`` is not between 0 and 1.
            EvaluationError: the share of parse failures exceeds ``max_failure_share``.
        """
        if not 0.0 <= max_failure_share <= 1.0:
            msg = (
                f"the allowed share of judge parse failures must be between 0 and 1 "
                f"({MAX_PARSE_FAILURES} is the default), got {max_failure_share!r}"
            )
            raise ConfigError(msg)
        if self.failure_rate <= max_failure_share:
            return
        reason, count = min(self.reasons.items(), key=lambda item: (-item[1], item[0]))
        msg = (
            f"{evaluation}: {self.parse_failures} of {self.judgements} judge answers "
            f"({self.failure_rate:.1%}) could not be parsed, more than the allowed "
            f"{max_failure_share:.1%}; scores from the rest would be skewed and flattened. "
            f"Most common reason: '{reason}' ({count} answers), for example: "
            f"{self.examples.get(reason, '')!r}. Use a judge that follows the answer format "
            f"(a stronger model with --judge), or raise the allowed share of parse failures "
            f"(the evaluation setting max_parse_failures) if you accept the loss."
        )
        raise EvaluationError(msg)


__all__ = ["MAX_PARSE_FAILURES", "JudgeTally", "consistent_winner"]
