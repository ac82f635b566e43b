"""Stage 7: an offline report of every study that has metrics.

``reports/index.html`` is self-contained (inline CSS, figures embedded as data URIs, no
scripts, no links out). It opens with one summary table (each study's headline metric,
its interval, the goal and the data counts), then per dataset its studies, figures
first, with the split audit and the params collapsed and shown once per dataset.
``reports/summary.md`` is the summary to paste into a pull request and
``reports/model_cards/<study>.md`` describes each trained model. On a branch other than
``compare.baseline`` both pages add ``pipeline compare <baseline> workspace`` (the
table, and in the page A-over-B ROC overlays). Studies come from the registry; a new
study appears here with no new report code.
"""

from __future__ import annotations

import base64
import html
import logging
import re
import subprocess
from pathlib import Path
from typing import Any

import typer

from pipeline import compare, plots
from pipeline.datasets import DATASETS
from pipeline.errors import PipelineError
from pipeline.io import atomic_path, read_json
from pipeline.metrics import roc_table
from pipeline.params import load_params, lookup
from pipeline.studies import SEMI_STUDY, STUDIES, Study

log = logging.getLogger(__name__)
REPORTS = Path("reports")
_SCHEME = re.compile(r"https?://")
DATASET_SECTIONS = ("generate", "features", "split")  # params shared by a dataset's studies
STUDY_SECTIONS = ("unseen_digit", "model", "train", "calibrate", "evaluate")
# figures a reader looks at first, in this order; a study's own figures follow
FIGURE_ORDER = ("roc", "score_histogram", "confusion", "training_curves")


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{"test": {"auroc": 0.9}} -> {"test.auroc": 0.9}; lists and nulls are skipped."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (int, float, str, bool)):
            flat[name] = value
    return flat


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _sections(study: Study, params: dict, names: tuple[str, ...]) -> dict:
    sections = {}
    for section in names:
        try:
            sections[section] = study.params(params, section)
        except Exception:  # noqa: BLE001 (a study without such a section shows none)
            continue
    return sections


def _figures(study: Study) -> list[Path]:
    found = {p.stem: p for p in (REPORTS / study.name).glob("*.png")}
    first = [found.pop(name) for name in FIGURE_ORDER if name in found]
    return first + [found[name] for name in sorted(found)]


def collect(study: Study, params: dict) -> dict | None:
    """Everything the report says about ``study``, or None if it has no metrics yet."""
    headline_path = Path("metrics") / f"{study.name}.json"
    details_path = Path("metrics") / study.name / "details.json"
    if not (headline_path.is_file() and details_path.is_file()):
        return None
    audit_path = REPORTS / "audit" / f"{study.dataset}.json"
    threshold_path = study.model_dir / "threshold.json"
    details = read_json(details_path)
    return {
        "study": study,
        "dataset": DATASETS.get(study.dataset),
        "metrics": flatten({k: v for k, v in details.items() if k != "data"}),
        "data": details.get("data", {}),
        "headline": read_json(headline_path).get(study.name, {}),
        "audit": read_json(audit_path) if audit_path.is_file() else None,
        "calibration": read_json(threshold_path) if threshold_path.is_file() else None,
        "params": _sections(study, params, STUDY_SECTIONS),
        "dataset_params": _sections(study, params, DATASET_SECTIONS),
        "figures": _figures(study),
    }


def primary(e: dict) -> tuple[str, Any, str]:
    """The study's first headline metric, its value and its interval (where it has one)."""
    if not e["headline"]:
        return "", "", ""
    name, value = next(iter(e["headline"].items()))
    low, high = (e["headline"].get(f"{name}_{side}") for side in ("lo", "hi"))
    interval = f"{low:.3f} to {high:.3f}" if low is not None and high is not None else ""
    return name, value, interval


def data_summary(data: dict) -> str:
    """"train 6 / val 1 / test 528 (470 abnormal)"-style counts of units per split."""
    parts = []
    for split, counts in data.items():
        text = f"{split} {counts['units']}"
        if split == "test" and "label_1" in counts and len(counts) == 4:  # binary labels
            text += f" ({counts['label_1']} abnormal)"
        parts.append(text)
    return " / ".join(parts)


def summary_rows(entries: list[dict]) -> list[list[str]]:
    rows = []
    for e in entries:
        name, value, interval = primary(e)
        rows.append([e["study"].name, name, fmt(value), interval, e["study"].goal,
                     data_summary(e["data"])])
    return rows


SUMMARY_HEADER = ["study", "headline metric", "value", "95% interval", "goal", "units used"]


# ---------------------------------------------------------------- markdown
def summary_markdown(entries: list[dict], comparison: str = "", semi: dict | None = None) -> str:
    lines = ["# Headline test metrics", "", "| " + " | ".join(SUMMARY_HEADER) + " |",
             "|" + "---|" * len(SUMMARY_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(entries)]
    if comparison:
        lines += ["", "## Against the baseline", "", comparison.rstrip()]
    for e in entries:
        lines += ["", f"**{e['study'].name}**: {e['study'].title}", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {fmt(v)} |" for k, v in e["headline"].items()]
    if semi is not None:
        lines += semi_markdown(semi)
    return "\n".join(lines) + "\n"


def model_card(e: dict) -> str:
    study, dataset = e["study"], e["dataset"]
    p = {**e["dataset_params"], **e["params"]}
    lines = [f"# Model card: {study.name}", "", study.title, "", "## Data"]
    if dataset is not None:
        lines += [f"- Dataset: {dataset.name}. {dataset.citation}",
                  f"- Licence: {dataset.licence}", f"- Official source: {dataset.landing_page}"]
    if dataset is None and "generate" in p:
        lines += [f"- Provenance: generated by `pipeline generate {study.dataset}` (seeded): {p['generate']}"]
    else:
        lines += ["- Provenance: copied from `download.local_copy` and verified against its "
                  "SHA256SUMS, or fetched from the official source (see README)."]
    if e["data"]:
        lines += ["", "## Units this study used", f"- {data_summary(e['data'])}"]
    if e["audit"]:
        lines += ["", "## Split (the dataset's, before the study's own selection)",
                  f"- Scheme: {e['audit'].get('scheme', '?')}"]
        lines += [f"- {split}: {counts}" for split, counts in e["audit"]["counts"].items()]
    if "model" in p:
        lines += ["", "## Model", f"- {p['model']}"]
    if "train" in p:
        lines += ["", "## Training", f"- {p['train']}"]
    if e["calibration"]:
        lines += ["", "## Calibrated threshold", f"- {e['calibration']}"]
    lines += ["", "## Test metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in e["metrics"].items() if k.startswith("test")]
    lines += ["", "## Known limitations"] + [f"- {text}" for text in study.limitations]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- html
CSS = """body{font-family:system-ui,sans-serif;max-width:78rem;margin:1.5rem auto;padding:0 1rem;
color:#222;line-height:1.35}table{border-collapse:collapse;margin:.5rem 0 1rem}
td,th{border:1px solid #ccc;padding:.2rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.figs{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-start}
.figs img{max-width:37rem;max-height:30rem;border:1px solid #eee}.figs img.wide{max-width:100%;
max-height:none}section.dataset{border-top:3px solid #bbb;margin-top:2rem}
section.study{border-top:1px solid #ddd;margin-top:1.2rem}details{margin:.4rem 0}
summary{cursor:pointer;color:#345}code{background:#f6f6f6}.muted{color:#666}"""


def _text(value: Any) -> str:
    """Escaped text with URL schemes dropped, so nothing in the page links out."""
    return html.escape(_SCHEME.sub("", str(value)))


def _table(rows: dict) -> str:
    body = "".join(f"<tr><td>{_text(k)}</td><td class='num'>{_text(fmt(v))}</td></tr>"
                   for k, v in rows.items())
    return f"<table><tr><th>name</th><th>value</th></tr>{body}</table>"


def _grid(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_text(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_text(fmt(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(png: bytes, alt: str, wide: bool = False) -> str:
    data = base64.b64encode(png).decode("ascii")
    cls = " class='wide'" if wide else ""
    return f'<img{cls} alt="{_text(alt)}" src="data:image/png;base64,{data}">'


def _figure(path: Path) -> str:
    png = path.read_bytes()
    width = int.from_bytes(png[16:20], "big")  # the PNG header's width field
    return _img(png, path.stem, wide=width > 900)


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{_text(summary)}</summary>{body}</details>"


def audit_html(audit: dict) -> str:
    """Split counts as one row per split, then the leak checks."""
    counts = audit["counts"]
    columns = list(dict.fromkeys(k for c in counts.values() for k in c))
    grid = _grid(["split", *columns], [[s, *(c.get(k, "") for k in columns)]
                                       for s, c in counts.items()])
    checks = {k: v for k, v in flatten(audit).items()
              if not k.startswith(("counts.", "counts_by_class.", "download."))}
    return grid + _table(checks)


def study_html(e: dict) -> str:
    study = e["study"]
    parts = [f"<section class='study' id='{_text(study.name)}'><h3>{_text(study.name)}</h3>",
             f"<p>{_text(study.title)}</p>",
             "<div class='figs'>" + "".join(_figure(f) for f in e["figures"]) + "</div>",
             "<h4>Headline test metrics</h4>" + _table(e["headline"])]
    if e["data"]:
        parts.append(f"<p><b>Units this study used:</b> {_text(data_summary(e['data']))} "
                     "<span class='muted'>(after its own selection from the dataset split)"
                     "</span></p>")
    params = flatten(e["params"])
    if e["calibration"]:
        params.update(flatten(e["calibration"], "calibrated."))
    parts.append(_details("Study params and calibration", _table(params)))
    parts.append(_details("Every test metric", _table(e["metrics"])))
    parts.append("<h4>Known limitations</h4><ul>"
                 + "".join(f"<li>{_text(t)}</li>" for t in study.limitations) + "</ul></section>")
    return "".join(parts)


def dataset_html(name: str, entries: list[dict]) -> str:
    """One dataset: its citation, split audit and shared params once, then its studies."""
    first = entries[0]
    parts = [f"<section class='dataset'><h2>Dataset: {_text(name)}</h2>"]
    if first["dataset"] is not None:
        parts.append(f"<p><b>Data:</b> {_text(first['dataset'].citation)}</p>")
    body = audit_html(first["audit"]) if first["audit"] else "<p>no split audit</p>"
    body += "<h4>Dataset params</h4>" + _table(flatten(first["dataset_params"]))
    parts.append(_details(f"Split audit and dataset params ({name}; counts before each "
                          "study's own selection)", body))
    parts += [study_html(e) for e in entries]
    return "".join(parts) + "</section>"


def comparison_html(results: list[dict], pairs: dict, rev_a: str, rev_b: str) -> str:
    """The compare table and, per study with labels, A's and B's ROC curves on one axes."""
    rows = [compare.cells(r) for res in results for r in res["rows"]]
    notes = "".join(f"<li>{_text(res['study'])}: {_text(res['note'])}</li>" for res in results)
    figures = []
    for study, (a, b) in pairs.items():
        curves = {}
        for label, frame in ((f"A {rev_a}", a), (f"B {rev_b}", b)):
            abnormal = (frame["label"] != 0).astype(int)
            curves[label] = (roc_table(abnormal, frame["score"]),
                             compare.point(compare.LABELLED[0], frame))
        figures.append(_img(plots.roc_overlay(curves, f"{study}: ROC, A vs B"), f"{study} ROC"))
    table = _grid(compare.HEADER, rows) if rows else ""
    return (f"<h2>Against {_text(rev_a)}</h2><p>A = {_text(rev_a)}, B = {_text(rev_b)}; change = "
            f"B - A; 95% intervals from a paired bootstrap.</p>{table}"
            f"<ul>{notes}</ul><div class='figs'>{''.join(figures)}</div>")


SEMI_HEADER = ["method", "labelled share", "AUROC", "95% interval", "ICBHI score", "sensitivity",
               "specificity"]


def semi_rows(semi: dict) -> list[list[Any]]:
    """One row per cell of the semi-supervised grid (pipeline semi-summary's metrics)."""
    rows = []
    for method in semi["methods"]:
        for fraction in semi["label_fractions"]:
            c = semi["cells"][f"{method}@{fraction}"]
            rows.append([method, f"{fraction:.0%}", c["auroc"],
                         f"{c['auroc_ci_low']:.3f} to {c['auroc_ci_high']:.3f}",
                         c["icbhi_score"], c["sensitivity"], c["specificity"]])
    return rows


def semi_gap_lines(semi: dict) -> list[str]:
    lines = []
    for fraction, g in semi["gap_closed"].items():
        line = (f"At {float(fraction):.0%} labelled, {g['best_method']} reaches AUROC {g['best_auroc']:.3f} "
                f"against {g['supervised_auroc']:.3f} for supervised ({g['supervised_full_auroc']:.3f} "
                "with every label): ")
        if g["gap_closed"] is None:  # supervised with every label is no better: nothing to close
            line += "no gap to close, so the share closed is undefined."
        else:
            line += f"{g['gap_closed']:.0%} of the gap closed."
        lines.append(line)
    return lines


def semi_html(semi: dict) -> str:
    """The semi-supervised grid: its curve, its table and the share of the gap closed."""
    figure = REPORTS / SEMI_STUDY / "label_fraction.png"
    parts = ["<section class='dataset' id='icbhi_semi'><h2>ICBHI semi-supervised (icbhi_semi)</h2>",
             "<p>Test AUROC of each method with a share of the training patients labelled "
             "(intervals: 95% patient-cluster bootstrap).</p>"]
    if figure.is_file():
        parts.append("<div class='figs'>" + _figure(figure) + "</div>")
    parts.append(_grid(SEMI_HEADER, semi_rows(semi)))
    parts.append("<ul>" + "".join(f"<li>{_text(line)}</li>" for line in semi_gap_lines(semi)) + "</ul>")
    return "".join(parts) + "</section>"


def semi_markdown(semi: dict) -> list[str]:
    lines = ["", "## ICBHI semi-supervised (icbhi_semi)", "", "| " + " | ".join(SEMI_HEADER) + " |",
             "|" + "---|" * len(SEMI_HEADER)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in semi_rows(semi)]
    return lines + [""] + semi_gap_lines(semi)


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_text(title)}"
            f"</title><style>{CSS}</style></head><body><h1>{_text(title)}</h1>{body}</body></html>\n")


def index_html(entries: list[dict], comparison: str = "", semi: dict | None = None) -> str:
    by_dataset: dict[str, list[dict]] = {}
    for e in entries:
        by_dataset.setdefault(e["study"].dataset, []).append(e)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_text(c)}</td>" if i else
                         f"<td><a href='#{_text(c)}'>{_text(c)}</a></td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in summary_rows(entries))
    head = "".join(f"<th>{_text(h)}</th>" for h in SUMMARY_HEADER)
    summary = f"<table><tr>{head}</tr>{rows}</table>"
    body = "".join(dataset_html(name, part) for name, part in by_dataset.items())
    if semi is not None:
        body += semi_html(semi)
    return page("Studies report", summary + comparison + body)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _branch_comparison(params: dict) -> tuple[str, str]:
    """Markdown and HTML of ``compare <baseline> workspace`` when on another branch, else ""."""
    head = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], capture_output=True,
                          text=True, check=False).stdout.strip()
    if not head or head == "HEAD":  # not in a git repository, or a detached HEAD
        return "", ""
    baseline = lookup(params, "compare.baseline")
    if head == baseline:
        return "", ""
    try:
        compare.resolve(baseline)
    except PipelineError:
        log.info("report: no %r to compare with", baseline)
        return "", ""
    log.info("report: comparing with %s", baseline)
    studies = list(STUDIES)
    results = compare.compare(baseline, compare.WORKSPACE, studies, compare.config(params))
    pairs = compare.roc_pairs(baseline, compare.WORKSPACE, studies)
    return (compare.to_markdown(results, baseline, compare.WORKSPACE),
            comparison_html(results, pairs, baseline, compare.WORKSPACE))


def report(params: dict) -> list[dict]:
    entries = [e for s in STUDIES.values() if (e := collect(s, params)) is not None]
    markdown, comparison = _branch_comparison(params)
    semi_path = Path("metrics") / f"{SEMI_STUDY}.json"
    semi = read_json(semi_path) if semi_path.is_file() else None
    write_text(REPORTS / "index.html", index_html(entries, comparison, semi))
    write_text(REPORTS / "summary.md", summary_markdown(entries, markdown, semi))
    for e in entries:
        write_text(REPORTS / "model_cards" / f"{e['study'].name}.md", model_card(e))
    return entries


def command() -> None:
    """Write reports/index.html, reports/summary.md and a model card per study."""
    entries = report(load_params())
    typer.echo(f"report: {len(entries)} studies -> {REPORTS / 'index.html'}")

