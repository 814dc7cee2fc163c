"""The report's figures: plain data in, a base64 PNG out, drawn with matplotlib if installed.

matplotlib is optional (the ``eval`` extra). It is imported only when a figure is drawn, and
figures are drawn on an Agg canvas of their own, without pyplot, so a report written inside
someone's notebook neither needs a display nor changes their matplotlib backend. Every
function returns ``None`` when there is nothing to draw; :func:`available` says whether
drawing is possible at all, so the report can say what to install instead of a figure.
"""

from __future__ import annotations

import base64
import importlib.util
import io
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

INSTALL_HINT = 'plots need: pip install "opencharacter[eval]"'
COLOURS = ("#3b6ea8", "#d0813b", "#5a9e5a", "#b04a5a", "#7d6bb0", "#8c8c8c")
# Which training metrics share a panel: a key joins the first panel whose words it contains.
CURVE_PANELS: dict[str, tuple[str, ...]] = {
    "loss": ("loss", "nll"),
    "accuracy": ("accuracy", "acc"),
    "margin": ("margin", "reward"),
}


def available() -> bool:
    """Return whether matplotlib is installed (without importing it)."""
    return importlib.util.find_spec("matplotlib") is not None


def _png(width: float, height: float, draw: Callable[[Figure], None]) -> str | None:
    """Draw on a fresh Agg figure and return it as base64 PNG text (None without matplotlib)."""
    if not available():
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - optional
    from matplotlib.figure import Figure  # noqa: PLC0415 - optional

    fig = Figure(figsize=(width, height), dpi=110, layout="tight")
    FigureCanvasAgg(fig)
    draw(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _f(value: Any) -> float:
    """Return a summary number as a float; an undefined one (None) is NaN, drawn as nothing."""
    return float("nan") if value is None else float(value)


def _tidy(ax: Axes, title: str = "", *, integer_x: bool = False) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    if integer_x:  # steps and turns: no tick at step 1.5
        from matplotlib.ticker import MaxNLocator  # noqa: PLC0415 - optional

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="both", alpha=0.25)
    if title:
        ax.set_title(title, fontsize=10)


def curve_panels(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Return the plottable metric keys of training rows by panel (loss, accuracy, margin).

    Keys with a colon (``loss:sum``) are a backend's raw aggregates of a key shown already.
    """
    keys = dict.fromkeys(
        k for row in rows for k, v in row.items() if isinstance(v, int | float) and ":" not in k
    )
    panels: dict[str, list[str]] = {}
    for key in keys:
        for panel, words in CURVE_PANELS.items():
            if any(word in key for word in words):
                panels.setdefault(panel, []).append(key)
                break
    return panels


def training_curves(stage: str, rows: Sequence[Mapping[str, Any]]) -> str | None:
    """Plot one stage's loss, accuracy and margin-like metrics against the step."""
    panels = curve_panels(rows)
    if not panels:
        return None

    def draw(fig: Figure) -> None:
        for ax, (panel, keys) in zip(fig.subplots(1, len(panels), squeeze=False)[0],
                                     panels.items(), strict=True):  # fmt: skip
            for colour, key in zip(COLOURS, keys, strict=False):
                points = [(r["step"], r[key]) for r in rows if key in r and "step" in r]
                ax.plot(*zip(*points, strict=True), marker=".", color=colour, label=key)
            _tidy(ax, f"{stage} {panel}", integer_x=True)
            ax.set_xlabel("step")
            ax.legend(fontsize=8, frameon=False)

    return _png(3.0 * len(panels) + 0.5, 2.8, draw)


def extremes(deltas: Mapping[str, Mapping[str, float]], count: int = 10) -> list[str]:
    """Return the traits of the ``count`` largest and ``count`` smallest deltas, largest first."""
    ranked = sorted(deltas, key=lambda t: (-deltas[t]["point"], t))
    if len(ranked) <= 2 * count:
        return ranked
    return ranked[:count] + ranked[-count:]


def trait_deltas(deltas: Mapping[str, Mapping[str, float]], count: int = 10) -> str | None:
    """Plot the largest and smallest Elo changes as horizontal bars with interval whiskers."""
    traits = extremes(deltas, count)
    if not traits:
        return None

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        points = [deltas[t]["point"] for t in traits]
        low = [deltas[t]["point"] - deltas[t]["low"] for t in traits]
        high = [deltas[t]["high"] - deltas[t]["point"] for t in traits]
        colours = [COLOURS[0] if p >= 0 else COLOURS[3] for p in points]
        ax.barh(range(len(traits)), points, xerr=[low, high], color=colours,
                error_kw={"elinewidth": 1, "capsize": 2, "ecolor": "#333"})  # fmt: skip
        ax.set_yticks(range(len(traits)), traits, fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="#333", linewidth=0.8)
        _tidy(ax, "Elo change, trained minus base (interval whiskers)")
        ax.set_xlabel("Elo points")

    return _png(6.5, 0.9 + 0.22 * len(traits), draw)


def _grouped_bars(
    ax: Axes,
    groups: Sequence[str],
    series: Mapping[str, Sequence[tuple[float, float]]],
) -> None:
    """Draw bars of (value, sem) per group, one colour per series."""
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        errors = [e for _, e in values]
        ax.bar(xs, [v for v, _ in values], width, yerr=errors if any(errors) else None,
               label=name, color=COLOURS[i % len(COLOURS)], capsize=2)  # fmt: skip
    ax.set_xticks(range(len(groups)), groups)
    ax.legend(fontsize=8, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.08),
              ncols=len(series))  # above the bars, below the title  # fmt: skip


def f1_by_suffix(scores: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str | None:
    """Plot each method's classifier macro-F1 per break-character suffix."""
    variants = list(dict.fromkeys(v for by_variant in scores.values() for v in by_variant))
    if not variants:
        return None
    series = {method: [(_f(by_variant.get(v, {}).get("macro_f1")), 0.0)
                       for v in variants] for method, by_variant in scores.items()}  # fmt: skip

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        _grouped_bars(ax, variants, series)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("macro F1")
        _tidy(ax, "persona classifier macro-F1 by suffix")

    return _png(7.0, 2.8, draw)


def two_by_two(cells: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str | None:
    """Plot the base/trained x plain/prompted means with their standard errors."""
    models = list(cells)
    prompts = list(dict.fromkeys(p for row in cells.values() for p in row))
    if not models or not prompts:
        return None
    series = {p: [(_f(cells[m].get(p, {}).get("mean")),
                   _f(cells[m].get(p, {}).get("sem") or 0.0)) for m in models]
              for p in prompts}  # fmt: skip

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        _grouped_bars(ax, models, series)
        ax.set_ylabel("trait score")
        _tidy(ax, "2x2: model x system prompt")

    return _png(4.0, 2.8, draw)


def _bars(
    values: Mapping[str, float],
    errors: Sequence[float] | None,
    *,
    title: str,
    colour: str,
    horizontal: bool,
) -> str | None:
    """Plot one bar per name on a 0-1 scale; vertical ones get a dashed line at a tie (0.5)."""
    if not values:
        return None

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        names, heights = list(values), list(values.values())
        if horizontal:
            ax.barh(names, heights, color=colour)
            ax.set_xlim(0, 1)
            ax.invert_yaxis()
        else:
            ax.bar(names, heights, yerr=errors, color=colour, capsize=3, width=0.5)
            ax.axhline(0.5, color="#333", linewidth=0.8, linestyle="--")
            ax.set_ylim(0, 1)
        _tidy(ax, title)

    return _png(4.0, 0.9 + 0.3 * len(values) if horizontal else 2.8, draw)


def win_rates(versus: Mapping[str, Mapping[str, float]]) -> str | None:
    """Plot the coherence win rate against each baseline, with its standard error."""
    rates = {name: _f(v.get("win_rate")) for name, v in versus.items()}
    errors = [_f(v.get("sem") or 0.0) for v in versus.values()]
    return _bars(rates, errors, title="coherence: trained win rate against",
                 colour=COLOURS[0], horizontal=False)  # fmt: skip


def opener_concentration(openers: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Plot how concentrated each model's opening words are (1: always the same)."""
    shares = {name: _f(o.get("concentration")) for name, o in openers.items()}
    return _bars(shares, None, title="opener concentration", colour=COLOURS[1], horizontal=True)


def persistence(curves: Mapping[str, Sequence[Mapping[str, float]]]) -> str | None:
    """Plot each model's mean trait score per conversation turn, with a band of one SEM."""
    if not any(curves.values()):
        return None

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        for colour, (model, points) in zip(COLOURS, curves.items(), strict=False):
            turns = [p["turn"] for p in points]
            means = [_f(p.get("mean")) for p in points]
            sems = [_f(p.get("sem") or 0.0) for p in points]
            ax.plot(turns, means, marker="o", color=colour, label=model)
            ax.fill_between(turns, [m - s for m, s in zip(means, sems, strict=True)],
                            [m + s for m, s in zip(means, sems, strict=True)],
                            color=colour, alpha=0.2)  # fmt: skip
        ax.set_xlabel("turn")
        ax.set_ylabel("trait score")
        ax.legend(fontsize=8, frameon=False)
        _tidy(ax, "persistence over a conversation", integer_x=True)

    return _png(5.0, 2.8, draw)
