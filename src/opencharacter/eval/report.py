"""One self-contained HTML page about a run: what it was, what it cost, and whether it worked.

The page reads a run directory's files without taking its lock (a report of a finished run,
or a look at one still going): ``manifest.json``, ``quality.json``, ``metrics.jsonl`` and
``eval/summary.json``. Every section is always there; one without data says what would
fill it. The page loads nothing: the style is inline, figures are base64 PNGs and a
content-security policy forbids anything else. All text, model answers above all, is
escaped, because a model can write ``<script>`` as easily as anything else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import Any

from opencharacter.errors import ConfigError, DataError
from opencharacter.eval import _html as h
from opencharacter.eval import plots
from opencharacter.jsonl import read_jsonl
from opencharacter.runstore import MANIFEST, read_manifest

REPORT = "report.html"
SUMMARY = Path("eval") / "summary.json"
EVAL_HINT = "add --until eval to run the evaluations"
Section = Callable[[Mapping[str, Any]], str]


# Sections: each takes the run's data and returns the HTML under its heading. ---------------


def _configuration(run: Mapping[str, Any]) -> str:
    m = run["manifest"]
    models, backends = m.get("models") or {}, m.get("backends") or {}
    roles = [(r, models.get(r, "—"), backends.get(r, "—")) for r in ("teacher", "student")]
    out = h.table(("role", "model", "backend"), roles)
    c = m.get("constitution") or {}
    if c:
        traits = "".join(
            f"<li>{h.e(t.get('trait') or t.get('text', ''))}</li>" for t in c["traits"]
        )
        out += f"<h3>Constitution: {h.e(c.get('name', ''))}</h3>\n"
        out += f'<p>{h.e(c.get("description", ""))}</p>\n<ol class="traits">{traits}</ol>\n'
    if checkpoints := m.get("checkpoints"):
        uris = [(k, v.get("uri", "")) for k, v in checkpoints.items()]
        out += "<h3>Checkpoints</h3>\n" + h.table(("stage", "uri"), uris)
    if settings := (run["summary"] or {}).get("settings"):
        out += "<h3>Evaluation settings</h3>\n" + h.table(("setting", "value"), h.flatten(settings))
    config = h.table(("key", "value"), h.flatten(m.get("config") or {}))
    return out + h.details("Full configuration", config)


def _stages(run: Mapping[str, Any]) -> str:
    stages = run["manifest"].get("stages") or {}
    if not stages:
        return h.not_run("no stage has started (opencharacter pipeline CONSTITUTION)")
    keys = ("prompt_tokens", "completion_tokens", "train_tokens", "requests")
    rows, total = [], dict.fromkeys(("wall_seconds", "cost", *keys), 0.0)
    for name, s in stages.items():
        values = {"wall_seconds": s.get("wall_seconds"), "cost": s.get("cost")}
        values |= {k: (s.get("usage") or {}).get(k) for k in keys}
        total = {k: total[k] + (values[k] or 0) for k in total}
        rows.append((name, s.get("state", "—"), values))
    rows.append(("total", "", total | {k: int(total[k]) for k in keys}))
    header = ("stage", "state", "wall time", "prompt tokens", "completion tokens",
              "train tokens", "requests", "cost")  # fmt: skip
    return h.table(header, [
        (name, state, h.num(v["wall_seconds"], 1, " s"), *(h.num(v[k]) for k in keys),
         h.num(v["cost"], 2, "$"))
        for name, state, v in rows
    ])  # fmt: skip


def _filters(run: Mapping[str, Any]) -> str:
    if not run["quality"]:
        return h.not_run("no quality.json (the filtered stages have not run)")
    out = ""
    for stage, q in run["quality"].items():
        out += f"<h3>{h.e(stage)}</h3>\n<p>" + h.e(
            f"kept {h.num(q.get('kept'))} of {h.num(q.get('rows'))} rows "
            f"({h.pct(q.get('kept_share'))}); dropped {h.num(q.get('dropped'))}; "
            f"cleaned {h.num(q.get('cleaned'))}."
        ) + "</p>\n"  # fmt: skip
        sides = q.get("dropped_by_side") or {}
        rows = [
            ("dropped", code, n, ", ".join(f"{s} {c[code]}" for s, c in sides.items() if code in c))
            for code, n in (q.get("dropped_by_reason") or {}).items()
        ]
        rows += [("cleaned", code, n, "") for code, n in (q.get("cleaned_by_reason") or {}).items()]
        out += h.table(("outcome", "reason", "rows", "where"), rows) if rows else ""
    return out


def _training(run: Mapping[str, Any]) -> str:
    by_stage: dict[str, list[Mapping[str, Any]]] = {}
    for row in run["metrics"]:
        if "stage" in row and "step" in row:
            by_stage.setdefault(str(row["stage"]), []).append(row)
    if not by_stage:
        return h.not_run("no training steps in metrics.jsonl (add --until sft)")
    out = ""
    for stage, rows in by_stage.items():
        out += f"<h3>{h.e(stage)}: {len(rows)} step{'s' * (len(rows) != 1)}</h3>\n"
        out += h.plot(plots.training_curves(stage, rows), f"{stage} training curves")
        keys = [k for keys in plots.curve_panels(rows).values() for k in keys]
        values = {k: [r[k] for r in rows if k in r] for k in keys}
        out += h.table(("metric", "first", "last", "min", "max"), [
            (k, *(h.num(x, 4) for x in (v[0], v[-1], min(v), max(v)))) for k, v in values.items()
        ])  # fmt: skip
    return out


def _preferences(p: Mapping[str, Any]) -> str:
    deltas, ratings = p.get("deltas") or {}, p.get("ratings") or {}
    base, trained = ratings.get("base") or {}, ratings.get("trained") or {}
    out = h.judge(p.get("judge"))
    spearman = h.num(p.get("spearman"), 3)
    out += f"<p>Spearman correlation of base and trained trait rankings: {spearman}.</p>\n"
    out += h.plot(plots.trait_deltas(deltas), "largest and smallest Elo changes")

    def ranked(traits: Iterable[str]) -> str:
        return h.table(("trait", "change", "base Elo", "trained Elo"), [
            (t, h.interval(deltas.get(t), sign="+"), h.interval(base.get(t)),
             h.interval(trained.get(t)))
            for t in traits
        ])  # fmt: skip

    out += "<h3>Largest and smallest changes</h3>\n" + ranked(plots.extremes(deltas))
    own = p.get("constitution_traits") or {}
    out += "<h3>The constitution's own traits</h3>\n"
    out += ranked(own) if own else "<p>None of the constitution's words is a rated trait.</p>\n"
    every = sorted(deltas, key=lambda t: -deltas[t]["point"])
    return out + h.details(f"All {len(every)} traits", ranked(every))


def _robustness(r: Mapping[str, Any]) -> str:
    personas = ", ".join(r.get("personas") or [])
    out = "<p>" + h.e(
        f"Classifier {r.get('engine', '?')}, target persona {r.get('target', '?')}, "
        f"told apart from: {personas}."
    ) + "</p>\n"  # fmt: skip
    scores = r.get("scores") or {}
    out += h.plot(plots.f1_by_suffix(scores), "classifier macro-F1 by suffix")
    out += h.table(("method", "macro-F1 (mean ± SEM)", "accuracy (mean ± SEM)"), [
        (m, h.pm(s.get("macro_f1_mean"), s.get("macro_f1_sem"), 3),
         h.pm(s.get("accuracy_mean"), s.get("accuracy_sem"), 3))
        for m, s in (r.get("summary") or {}).items()
    ])  # fmt: skip
    rows = [
        (m, v, *(h.num(s.get(k), 3) for k in ("macro_f1", "accuracy", "in_persona")), s.get("n"))
        for m, by_variant in scores.items() for v, s in by_variant.items()
    ]  # fmt: skip
    header = ("method", "suffix", "macro-F1", "accuracy", "in persona", "n")
    return out + h.details("By suffix", h.table(header, rows))


def _two_by_two(t: Mapping[str, Any]) -> str:
    cells = t.get("cells") or {}
    prompts = list(dict.fromkeys(p for row in cells.values() for p in row))

    def score(c: Mapping[str, Any] | None) -> h.Num:
        return h.Num(f"{h.pm(c.get('mean'), c.get('sem'))} (n {h.num(c.get('n'))})" if c else "—")

    rows = [(model, *(score(row.get(p)) for p in prompts)) for model, row in cells.items()]
    out = h.judge(t.get("judge")) + h.table(("model", *prompts), rows)
    return out + h.plot(plots.two_by_two(cells), "2x2 trait scores")


def _coherence(c: Mapping[str, Any]) -> str:
    versus = c.get("versus") or {}
    rows = [
        (b, h.pct(v.get("win_rate")), h.pct(v.get("sem")), v.get("wins"), v.get("consistent"),
         v.get("pairs"))
        for b, v in versus.items()
    ]  # fmt: skip
    header = ("baseline", "trained win rate", "SEM", "wins", "order-consistent", "pairs")
    out = h.judge(c.get("judge")) + h.table(header, rows)
    return out + h.plot(plots.win_rates(versus), "coherence win rates")


def _balance(value: Any) -> h.Num:
    """A position balance: one number, or a marker record whose end/start ratio is shown."""
    return h.num(value.get("end_to_start") if isinstance(value, Mapping) else value, 3)


def _drift(d: Mapping[str, Any]) -> str:
    openers, balance = d.get("openers") or {}, d.get("position_balance") or {}
    rows = [
        (m, h.num(o.get("concentration"), 3), _balance(balance.get(m)),
         ", ".join(f"“{w}” {h.pct(s)}" for w, s in o.get("top", [])))
        for m, o in openers.items()
    ]  # fmt: skip
    out = h.judge(d.get("judge")) + "<h3>Openers</h3>\n"
    header = ("model", "concentration", "position balance (end/start)", "most common openers")
    out += h.table(header, rows)
    warnings = [f"{m}: {w}" for m, ws in (d.get("warnings") or {}).items() for w in ws]
    out += "".join(f'<p class="warn">{h.e(w)}</p>\n' for w in warnings)
    out += h.plot(plots.opener_concentration(openers), "opener concentration")
    curves = d.get("persistence") or {}
    out += "<h3>Persistence</h3>\n" + h.plot(plots.persistence(curves), "persistence curves")
    by_turn = {m: {p["turn"]: p for p in points} for m, points in curves.items()}
    turns = sorted({t for points in by_turn.values() for t in points})
    persisted = [
        (f"turn {t}", *(h.pm(by_turn[m][t]["mean"], by_turn[m][t].get("sem"))
                        if t in by_turn[m] else "—" for m in curves))
        for t in turns
    ]  # fmt: skip
    return out + h.table(("", *curves), persisted)


def _capabilities(c: Mapping[str, Any]) -> str:
    def change(v: Mapping[str, Any]) -> h.Num:
        both = v.get("base") is not None and v.get("trained") is not None
        return h.Num(f"{v['trained'] - v['base']:+.3f}") if both else h.Num("—")

    rows = [
        (task, v.get("metric", ""), h.num(v.get("base"), 3), h.num(v.get("trained"), 3), change(v))
        for task, v in c.items()
    ]
    return h.table(("task", "metric", "base", "trained", "change"), rows)


def _examples(examples: Sequence[Mapping[str, Any]]) -> str:
    return "".join(
        f'<div class="prompt">{h.e(ex.get("prompt", ""))}</div>\n<div class="pair">'
        f"<div><h4>base</h4><pre>{h.e(ex.get('base', ''))}</pre></div>"
        f"<div><h4>trained</h4><pre>{h.e(ex.get('trained', ''))}</pre></div></div>\n"
        for ex in examples
    )


def _from_summary(key: str, render: Callable[[Any], str], what: str) -> Section:
    """Render summary section ``key`` if the evaluation wrote it, else say it did not run."""

    def section(run: Mapping[str, Any]) -> str:
        summary = run["summary"]
        if summary is None:
            return h.not_run(f"no {SUMMARY} ({EVAL_HINT})")
        if not summary.get(key):
            return h.not_run(f"no {what} in {SUMMARY} ({EVAL_HINT})")
        return render(summary[key])

    return section


SECTIONS: tuple[tuple[str, str, Section], ...] = (
    ("configuration", "Configuration and constitution", _configuration),
    ("stages", "Stages: time, tokens and cost", _stages),
    ("filters", "Filters: what was dropped and why", _filters),
    ("training", "Training curves", _training),
    ("preferences", "Trait preferences (Elo)",
     _from_summary("preferences", _preferences, "trait preferences")),
    ("robustness", "Robustness: classifier F1 by suffix",
     _from_summary("robustness", _robustness, "robustness scores")),
    ("two-by-two", "Model x system prompt (2x2)",
     _from_summary("two_by_two", _two_by_two, "2x2 scores")),
    ("coherence", "Coherence win rate",
     _from_summary("coherence", _coherence, "coherence verdicts")),
    ("drift", "Drift: openers and persistence", _from_summary("drift", _drift, "drift measures")),
    ("capabilities", "Capabilities",
     _from_summary("capabilities", _capabilities, "capability scores")),
    ("examples", "Examples: base and trained answers",
     _from_summary("examples", _examples, "examples")),
)  # fmt: skip
"""The report's sections in page order: (HTML id, heading, renderer)."""


def _read_json(path: Path) -> Any:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = f"{path}: not valid JSON ({exc}); restore the file or run its stage again"
        raise DataError(msg) from exc


def _read_run(run_dir: Path) -> dict[str, Any]:
    """Read what the report shows, without the run's lock (the writer replaces files whole)."""
    if not run_dir.is_dir():
        msg = f"{run_dir}: no such folder; pass a run directory (the --run-dir of a pipeline)"
        raise ConfigError(msg)
    if not (run_dir / MANIFEST).exists():
        msg = f"{run_dir} is not a run directory (no {MANIFEST}); pass the --run-dir of a pipeline"
        raise ConfigError(msg)
    return {
        "manifest": read_manifest(run_dir),
        "quality": _read_json(run_dir / "quality.json") or {},
        "metrics": list(read_jsonl(run_dir / "metrics.jsonl")),
        "summary": _read_json(run_dir / SUMMARY),
    }


def render_report(run_dir: str | os.PathLike[str]) -> str:
    """Return the report page of the run in ``run_dir`` as HTML text (see :func:`write_report`)."""
    path = Path(run_dir).absolute()
    run = _read_run(path)
    m = run["manifest"]
    name = (m.get("constitution") or {}).get("name") or m.get("config", {}).get("constitution")
    toc = "\n".join(f'<li><a href="#{sid}">{h.e(title)}</a></li>' for sid, title, _ in SECTIONS)
    body = "\n".join(f'<section id="{sid}">\n<h2>{h.e(title)}</h2>\n{render(run)}</section>'
                     for sid, title, render in SECTIONS)  # fmt: skip
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    version = (m.get("versions") or {}).get("opencharacter", "?")
    meta = f"Run {path}, started {m.get('created', '?')}; opencharacter {version}; written {now}."
    template = Template(files("opencharacter.eval").joinpath(REPORT).read_text(encoding="utf-8"))
    title = h.e(f"opencharacter report: {name or path.name}")
    return template.substitute(title=title, meta=h.e(meta), toc=toc, body=body)


def write_report(run_dir: str | os.PathLike[str]) -> Path:
    """Write ``RUN_DIR/report.html``, one self-contained page about the run, and return its path.

    Works on a finished run or one in progress: nothing is locked, nothing but the report is
    written. Figures need matplotlib (``pip install "opencharacter[eval]"``); without it the
    page has tables only.

    Raises:
        ConfigError: ``run_dir`` is not a folder holding a run's manifest.
        DataError: a run file is corrupt (the message names it).
    """
    text = render_report(run_dir)
    target = Path(run_dir) / REPORT
    staging = target.with_name(f".{REPORT}.tmp")
    staging.write_text(text, encoding="utf-8")
    staging.replace(target)
    return target


__all__ = ["SECTIONS", "render_report", "write_report"]
