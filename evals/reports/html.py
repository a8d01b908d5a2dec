"""A self-contained HTML report: summary tables, A/B and baseline verdicts, score
distributions as inline SVG, and per case a grid of every target's attempts side by side,
each image an embedded thumbnail linked to its receipt. No scripts, no network.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from brandloop.evals.models import AttemptRecord, CaseResult, TargetSpec
from brandloop.evals.reports.document import (
    comparisons,
    gate_results,
    repair_rates,
    summaries,
)
from brandloop.evals.runner import EvalRun
from brandloop.evals.stats import (
    MIN_PAIRS,
    BaselineReport,
    Comparison,
    TargetSummary,
    gate_text,
    pass_rate_text,
)
from brandloop.registry.types import usd

PALETTE = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2"]
CHART_SIGNALS = ["composite", "palette", "sharpness", "exposure"]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#111827;background:#f9fafb}
header{background:#111827;color:#f9fafb;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header .meta{color:#d1d5db;font-size:13px}
main{padding:18px 28px;max-width:1800px}
h2{font-size:18px;margin:28px 0 10px;border-bottom:2px solid #e5e7eb;padding-bottom:4px}
h3{font-size:15px;margin:0 0 4px}
table{border-collapse:collapse;background:#fff;margin:6px 0 14px}
th,td{border:1px solid #e5e7eb;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.pass{background:#dcfce7;color:#166534}.fail{background:#fee2e2;color:#991b1b}
.neutral{background:#e5e7eb;color:#374151}.warn{background:#fef3c7;color:#92400e}
.charts{display:flex;flex-wrap:wrap;gap:14px}
.chart{background:#fff;border:1px solid #e5e7eb;padding:6px}
.case{background:#fff;border:1px solid #e5e7eb;border-radius:6px;margin:14px 0;padding:12px}
.case .brief{color:#374151;margin:2px 0 8px;white-space:pre-wrap;word-break:break-word}
.grid{display:grid;gap:10px}
.cell{border:1px solid #e5e7eb;border-radius:4px;padding:8px;background:#fafafa;min-width:0}
.cell h4{margin:0 0 6px;font-size:13px}
.attempts{display:flex;flex-wrap:wrap;gap:6px}
figure.attempt{margin:0;width:132px;font-size:11px;color:#374151}
figure.attempt img{width:128px;height:auto;display:block;border:2px solid #d1d5db;border-radius:3px}
figure.attempt.accepted img{border-color:#16a34a}
figure.attempt .ph{width:124px;height:124px;display:flex;align-items:center;justify-content:center;text-align:center;background:#e5e7eb;border:2px dashed #9ca3af;border-radius:3px;font-size:12px;padding:2px}
figure.attempt.blocked .ph{background:#fee2e2;border-color:#dc2626;color:#991b1b}
figcaption{margin-top:2px;line-height:1.3}
ul.asserts{list-style:none;padding:0;margin:6px 0 0;font-size:12px}
ul.asserts li{margin:1px 0}
.ok{color:#166534}.ko{color:#991b1b}
.receipt{display:none;background:#0f172a;color:#e2e8f0;padding:10px;border-radius:4px;font-size:11px;white-space:pre-wrap;word-break:break-all;margin-top:8px}
.receipt:target{display:block}
.receipt a{color:#93c5fd}
nav.toc{font-size:12px;columns:4 220px;background:#fff;border:1px solid #e5e7eb;padding:8px 12px}
nav.toc a{text-decoration:none}
"""


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _badge(text: str, cls: str) -> str:
    return f'<span class="badge {cls}">{escape(text)}</span>'


def _anchor(*parts: object) -> str:
    """An HTML id made of ``parts``: what an id may hold, and a short hash of the parts when
    making it so changed anything (case ids ``a=b`` and ``a_b`` were both ``case-a_b``: two
    cases, one anchor, and the index linked both to the first)."""
    raw = "-".join(str(p) for p in parts)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in raw)
    if safe == raw:
        return safe
    return f"{safe}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"


def _thumb_uri(run_dir: Path, name: str | None) -> str | None:
    if not name:
        return None
    path = run_dir / "thumbs" / name
    if not path.is_file():
        return None
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode()


# --------------------------------------------------------------------------- sections


def _summary_table(table: dict[str, TargetSummary], gates: dict[str, bool], gate: float) -> str:
    names = list(table)

    def measured(n: str, shown: str, otherwise: str = "not measured") -> str:
        """``shown`` for a target with executions; a target with none measured nothing."""
        return shown if table[n].executions else otherwise

    def rate(n: str, value: float) -> str:
        return measured(n, f"{value:.1%}")

    rows: list[tuple[str, list[str]]] = [
        (
            f"gate (pass rate ≥ {gate_text(gate)})",
            [
                measured(
                    n,
                    _badge("PASS" if gates[n] else "FAIL", "pass" if gates[n] else "fail"),
                    _badge("not measured", "neutral"),
                )
                for n in names
            ],
        ),
        (
            "pass rate",
            [
                measured(n, pass_rate_text(table[n].passed, table[n].executions, gate))
                + f" ({table[n].passed}/{table[n].executions})"
                for n in names
            ],
        ),
        ("accepted images", [str(table[n].accepted_images) for n in names]),
        ("cost total", [usd(table[n].cost_usd) for n in names]),
        (
            "cost per accepted image",
            ["–" if (per := table[n].cost_per_accepted_usd) is None else usd(per) for n in names],
        ),
        (
            "attempts per case (mean)",
            [measured(n, _fmt(table[n].attempts_mean, 2), "–") for n in names],
        ),
        (
            "latency p50 / p95 (ms)",
            [
                measured(n, f"{table[n].latency_p50_ms:.0f} / {table[n].latency_p95_ms:.0f}", "–")
                for n in names
            ],
        ),
        ("refusal rate", [rate(n, table[n].refusal_rate) for n in names]),
        ("moderation-blocked rate", [rate(n, table[n].blocked_rate) for n in names]),
        ("fallback rate", [rate(n, table[n].fallback_rate) for n in names]),
        ("error rate", [rate(n, table[n].error_rate) for n in names]),
        ("cache hits", [str(table[n].cache_hits) for n in names]),
    ]
    signal_names = sorted({s for n in names for s in table[n].signals})
    for signal in signal_names:
        cells = []
        for n in names:
            st = table[n].signals.get(signal)
            cells.append("–" if st is None else f"{st.mean:.3f} ± {st.std:.3f} (n={st.n})")
        rows.append((f"{signal} mean ± sd", cells))
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    body = "".join(
        f"<tr><th>{escape(label)}</th>"
        + "".join(f'<td class="num">{c}</td>' for c in cells)
        + "</tr>"
        for label, cells in rows
    )
    return f'<table class="summary"><tr><th>metric</th>{head}</tr>{body}</table>'


def _verdict_badge(verdict: str) -> str:
    cls = {"better": "pass", "worse": "fail", "not measured": "warn"}.get(verdict, "neutral")
    return _badge(verdict, cls)


def _interval(c: Comparison) -> str:
    return "–" if c.ci_low is None else f"[{_fmt(c.ci_low, 4)}, {_fmt(c.ci_high, 4)}]"


def _comparison_table(rows: Sequence[Comparison], a: str, b: str) -> str:
    body = "".join(
        f"<tr><td>{escape(c.metric)}</td><td class='num'>{_fmt(c.a, 4)}</td>"
        f"<td class='num'>{_fmt(c.b, 4)}</td><td class='num'>{_fmt(c.diff, 4)}</td>"
        f"<td class='num'>{_interval(c)}</td>"
        f"<td class='num'>{c.n}</td><td>{_verdict_badge(c.verdict)}</td></tr>"
        for c in rows
    )
    return (
        f"<table class='ab'><tr><th>metric</th><th>A: {escape(a)}</th><th>B: {escape(b)}</th>"
        "<th>B − A</th><th>95% CI (bootstrap)</th><th>cases</th><th>verdict for B</th></tr>"
        f"{body}</table>"
        f"<p class='meta'>A metric with fewer than {MIN_PAIRS} cases on both sides is not "
        "measured: its means are shown, no interval and no verdict.</p>"
    )


def _baseline_section(report: BaselineReport) -> str:
    cls = "fail" if not report.passed else ("warn" if report.regressions else "pass")
    if report.significant:
        label = "significant regression"
    elif report.lost:
        label = "not measured: " + ", ".join(report.lost)
    else:
        label = "no significant regression"
    head = (
        f"<p>{_badge(label, cls)} "
        f"{escape(report.summary)} — baseline <code>{escape(report.baseline_path)}</code> "
        f"(target {escape(report.baseline_target)}) vs current {escape(report.target)}</p>"
    )
    table = _comparison_table(report.comparisons, "baseline", "current")
    regressed = [c for c in report.cases if c.regressed]
    rows = "".join(
        f"<tr><td><a href='#case-{_anchor(c.case_id)}'>{escape(c.case_id)}</a></td>"
        f"<td class='num'>{c.baseline_pass_rate:.2f}</td><td class='num'>{c.current_pass_rate:.2f}</td>"
        f"<td class='num'>{_fmt(c.baseline_composite)}</td><td class='num'>{_fmt(c.current_composite)}</td></tr>"
        for c in regressed
    )
    cases = (
        "<table><tr><th>regressed case</th><th>baseline pass</th><th>current pass</th>"
        f"<th>baseline composite</th><th>current composite</th></tr>{rows}</table>"
        if regressed
        else "<p>No case regressed.</p>"
    )
    return head + table + cases


def histogram_svg(title: str, series: dict[str, list[float]], bins: int = 10) -> str:
    """Grouped bars of each target's values over [0, 1]; counts as a share of that target."""
    width, height, pad_l, pad_b, pad_t = 360, 190, 34, 30, 22
    plot_w, plot_h = width - pad_l - 10, height - pad_b - pad_t
    shares: dict[str, list[float]] = {}
    for name, values in series.items():
        counts = [0] * bins
        for v in values:
            counts[min(bins - 1, max(0, int(v * bins)))] += 1
        total = max(1, len(values))
        shares[name] = [c / total for c in counts]
    top = max([max(s) for s in shares.values() if s] + [0.01])
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)} distribution">',
        f'<text x="{pad_l}" y="15" font-size="13" font-weight="600">{escape(title)}</text>',
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{pad_l + plot_w}" y2="{pad_t + plot_h}" stroke="#9ca3af"/>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + plot_h}" stroke="#9ca3af"/>',
        f'<text x="{pad_l - 4}" y="{pad_t + 8}" font-size="10" text-anchor="end">{top:.0%}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + plot_h}" font-size="10" text-anchor="end">0</text>',
    ]
    group_w = plot_w / bins
    bar_w = max(2.0, (group_w - 4) / max(1, len(shares)))
    for b in range(bins + 1):
        if b % 2 == 0:
            x = pad_l + b * group_w
            parts.append(
                f'<text x="{x:.1f}" y="{pad_t + plot_h + 13}" font-size="10" text-anchor="middle">{b / bins:.1f}</text>'
            )
    for i, (name, values) in enumerate(shares.items()):
        colour = PALETTE[i % len(PALETTE)]
        for b, share in enumerate(values):
            if share <= 0:
                continue
            h = share / top * plot_h
            x = pad_l + b * group_w + 2 + i * bar_w
            y = pad_t + plot_h - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(name)}: {share:.0%} in [{b / bins:.1f}, {(b + 1) / bins:.1f})</title></rect>"
            )
        lx = pad_l + 8 + i * 110
        parts.append(f'<rect x="{lx}" y="{height - 11}" width="9" height="9" fill="{colour}"/>')
        parts.append(
            f'<text x="{lx + 12}" y="{height - 3}" font-size="10">{escape(name[:16])} (n={len(series[name])})</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _charts(run: EvalRun) -> str:
    charts = []
    for signal in [*CHART_SIGNALS, "composite_accepted"]:
        series: dict[str, list[float]] = {}
        for t in run.targets:
            values: list[float] = []
            for r in run.for_target(t.name):
                if signal == "composite_accepted":
                    values += r.accepted_composites
                    continue
                for a in r.attempts:
                    v = a.composite if signal == "composite" else a.signals.get(signal)
                    if v is not None:
                        values.append(v)
            series[t.name] = values
        if any(series.values()):
            label = (
                "composite of accepted images"
                if signal == "composite_accepted"
                else f"{signal} (every scored attempt)"
            )
            charts.append(histogram_svg(label, series))
    return '<div class="charts">' + "".join(charts) + "</div>" if charts else "<p>No scores.</p>"


def _attempt_figure(run_dir: Path, anchor: str, attempt: AttemptRecord) -> str:
    uri = _thumb_uri(run_dir, attempt.thumbnail)
    title = escape(f"{attempt.model} seed {attempt.seed} — {attempt.outcome}")
    if attempt.outcome == "blocked":
        visual = '<div class="ph">blocked by moderation<br>(image withheld)</div>'
    elif uri is None:
        visual = f'<div class="ph">{escape(attempt.outcome)}<br>no image</div>'
    else:
        visual = f'<img src="{uri}" alt="{title}" title="{title}" loading="lazy">'
    signals = " ".join(f"{k[:5]} {v:.2f}" for k, v in sorted(attempt.signals.items()))
    caption = (
        f"<b>{escape(attempt.outcome)}</b> · {escape(attempt.model)}<br>"
        f"composite {_fmt(attempt.composite, 2)} · {usd(attempt.cost_usd)}"
        + (" · cache" if attempt.cache_hit else "")
        + (f"<br>{escape(signals)}" if signals else "")
        + f'<br><a href="#{anchor}">receipt</a>'
    )
    return (
        f'<figure class="attempt {escape(attempt.outcome)}" data-attempt="{escape(attempt.id)}">'
        f'<a href="#{anchor}">{visual}</a><figcaption>{caption}</figcaption></figure>'
    )


def _cell(run_dir: Path, result: CaseResult | None, receipts: list[str], repeat_label: str) -> str:
    if result is None:
        return '<div class="cell"><em>not run</em></div>'
    status_cls = "pass" if result.passed else "fail"
    head = (
        f"<h4>{repeat_label}{_badge('PASS' if result.passed else 'FAIL', status_cls)} "
        f"{_badge(result.status, 'neutral')} score {result.score:.2f} · "
        f"{result.accepted} accepted · {len(result.attempts)} attempts · {usd(result.cost_usd)} · "
        f"{result.latency_ms:.0f} ms</h4>"
    )
    notes = ""
    if result.error:
        notes += f"<div class='ko'>error: {escape(result.error)}</div>"
    elif result.reason and result.status in {"refused", "failed"}:
        notes += f"<div>{escape(result.reason)}</div>"
    if result.review_not_applied:
        notes += (
            f"<div>review gate not applied (production: {escape(result.review_not_applied)})</div>"
        )
    figures = []
    for attempt in result.attempts:
        anchor = _anchor("receipt", result.target, result.case_id, result.repeat, attempt.id)
        figures.append(_attempt_figure(run_dir, anchor, attempt))
        receipt_json = json.dumps(attempt.receipt, indent=2, sort_keys=True, default=str)
        receipts.append(
            f'<pre class="receipt" id="{anchor}">receipt of {escape(attempt.id)} '
            f"({escape(result.target)}, run {escape(result.run_id or '')}) "
            f'<a href="#case-{_anchor(result.case_id)}">close</a>\n{escape(receipt_json)}</pre>'
        )
    attempts_html = f'<div class="attempts">{"".join(figures)}</div>' if figures else ""
    asserts = "".join(
        f"<li class='{'ok' if a.passed else 'ko'}'>{'✓' if a.passed else '✗'} "
        f"<b>{escape(a.kind)}</b> {escape(a.message)}</li>"
        for a in result.assertions
    )
    return f'<div class="cell">{head}{notes}{attempts_html}<ul class="asserts">{asserts}</ul></div>'


def _cases(run: EvalRun) -> str:
    index: dict[tuple[str, str, int], CaseResult] = {
        (r.target, r.case_id, r.repeat): r for r in run.results
    }
    columns = len(run.targets)
    sections = []
    for case in run.suite.cases:
        receipts: list[str] = []
        cells = []
        for k in range(run.repeat):
            label = f"r{k} · " if run.repeat > 1 else ""
            for t in run.targets:
                cells.append(
                    _cell(
                        run.run_dir,
                        index.get((t.name, case.id, k)),
                        receipts,
                        f"{escape(t.name)} · {label}",
                    )
                )
        tags = " ".join(_badge(tag, "neutral") for tag in case.tags)
        group = f" · group <b>{escape(case.group)}</b>" if case.group else ""
        sections.append(
            f'<section class="case" id="case-{_anchor(case.id)}"><h3>{escape(case.id)} {tags}</h3>'
            f"<div class='meta'>brand <b>{escape(case.brand)}</b>{group} · "
            f"{escape(case.request.size or case.request.aspect_ratio or 'default size')} · "
            f"count {case.request.count or 1}</div>"
            f'<div class="brief">{escape(case.brief)}</div>'
            f'<div class="grid" style="grid-template-columns:repeat({columns},minmax(0,1fr))">'
            f"{''.join(cells)}</div>{''.join(receipts)}</section>"
        )
    return "".join(sections)


def _toc(run: EvalRun) -> str:
    passed: dict[str, bool] = {}
    for r in run.results:
        passed[r.case_id] = passed.get(r.case_id, True) and r.passed
    links = "".join(
        f'<div><a href="#case-{_anchor(c.id)}">{"✓" if passed.get(c.id) else "✗"} {escape(c.id)}</a></div>'
        for c in run.suite.cases
    )
    return f'<nav class="toc">{links}</nav>'


def target_settings(target: TargetSpec) -> str:
    """What sets the target apart from the embedded default, or that it is the default."""
    changed = target.model_dump(exclude_defaults=True, exclude={"name", "description"})
    if "templates" in changed:
        changed["templates"] = [Path(p).name for p in changed["templates"]]
    return ", ".join(f"{k}={v}" for k, v in changed.items()) or "embedded defaults"


def _rate(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.0%}"


def _repairs(run: EvalRun) -> str:
    """Per target, the fix rate of each repair (and of each model's repairs)."""
    parts: list[str] = []
    for target, tables in repair_rates(run).items():
        for label, key, rows in (
            ("per repair", "action", tables["by_action"]),
            ("per model", "model", tables["by_model"]),
        ):
            heading = f"<h3>{escape(target)}: {label}</h3>"
            if not rows:
                parts.append(f"{heading}<p>no repair judged: not measured</p>")
                continue
            body = "".join(
                f"<tr><td>{escape(r[key])}</td><td>{escape(r['signal'])}</td>"
                f"<td>{r['tried']}</td><td>{r['fixed']}</td><td>{_rate(r['fix_rate'])}</td></tr>"
                for r in rows
            )
            parts.append(
                f"{heading}<table><tr><th>{key}</th><th>signal</th><th>tried</th>"
                f"<th>fixed</th><th>fix rate</th></tr>{body}</table>"
            )
    return "".join(parts)


def gate_label(
    run: EvalRun, gates: dict[str, bool], baseline: BaselineReport | None = None
) -> tuple[str, str]:
    """The run's verdict and its badge class: the one the CLI recorded when there is one;
    for an older set whose pass rates meet the gate, that it was not recorded (a --baseline
    check may have failed it), never "passed"; for a run that stopped before every case ran,
    that it was not measured (its targets are partly or not at all), never "failed"."""
    if run.verdict is None and not run.finished:
        return "GATE NOT MEASURED: RUN INTERRUPTED", "warn"
    if run.verdict is not None:
        passed = run.verdict.all_passed
    elif not all(gates.values()) or (baseline is not None and not baseline.passed):
        passed = False
    elif run.verdict_missing:
        return "GATE NOT RECORDED", "warn"
    else:
        passed = True
    return ("GATE PASSED", "pass") if passed else ("GATE FAILED", "fail")


def _wall(run: EvalRun) -> str:
    """The run's wall time; a set read back that did not record it says so (it read 0.0 s)."""
    return "wall time not recorded" if run.wall_s is None else f"{run.wall_s:.1f} s"


def build_html(run: EvalRun, baseline: BaselineReport | None = None) -> str:
    table: dict[str, TargetSummary] = summaries(run)
    gates = gate_results(run, table)
    target_desc = "".join(
        f"<li><b>{escape(t.name)}</b>: "
        + escape(target_settings(t))
        + (f" — {escape(t.description)}" if t.description else "")
        + "</li>"
        for t in run.targets
    )
    ab = "".join(
        f"<h3>{escape(b)} vs {escape(a)}</h3>{_comparison_table(rows, a, b)}"
        for a, b, rows in comparisons(run)
    )
    if baseline is None and run.verdict is not None:
        baseline = run.verdict.baseline  # the check the CLI ran, read back from the set
    badge = _badge(*gate_label(run, gates, baseline))
    notes = "".join(f"<p role='note' class='badge warn'>{escape(n)}</p>" for n in run.notes)
    doc: list[str] = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>eval {escape(run.suite.name)}@{run.suite.version}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<header><h1>Eval report: {escape(run.suite.name)} v{run.suite.version} "
        f"{badge}</h1>{notes}",
        f"<div class='meta'>{len(run.suite.cases)} cases × {len(run.targets)} target(s) × "
        f"{run.repeat} repeat(s) · started {escape(run.started_at)} · {_wall(run)}"
        + (f" · {run.resumed} result(s) resumed" if run.resumed else "")
        + f" · suite {escape(run.suite.path)}</div></header><main>",
        f"<h2>Targets</h2><ul>{target_desc}</ul>",
        "<h2>Summary</h2>",
        _summary_table(table, gates, run.suite.gate.min_pass_rate),
    ]
    if ab:
        doc.append(f"<h2>A/B comparison (paired bootstrap over cases, 95% CI)</h2>{ab}")
    if baseline is not None:
        doc.append(f"<h2>Baseline</h2>{_baseline_section(baseline)}")
    doc += [
        "<h2>Repairs that work (how often each fixed the signal it aimed at)</h2>",
        _repairs(run),
        "<h2>Score distributions</h2>",
        _charts(run),
        "<h2>Cases</h2>",
        _toc(run),
        _cases(run),
        "</main></body></html>",
    ]
    return "".join(doc)


def report_context(run: EvalRun) -> dict[str, Any]:
    """Numbers a caller might print next to the report path."""
    return {"cases": len(run.suite.cases), "targets": len(run.targets), "results": len(run.results)}
