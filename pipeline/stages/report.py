"""Stage 7: an offline report of every study that has metrics.

``reports/index.html`` is self-contained (inline CSS, figures embedded as data URIs, no
scripts, no links out), ``reports/summary.md`` is a headline table to paste into a pull
request, and ``reports/model_cards/<study>.md`` describes each trained model. Studies
come from the registry; a new study appears here with no new report code.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

import typer

from pipeline.datasets import DATASETS
from pipeline.io import atomic_path, read_json
from pipeline.params import load_params
from pipeline.studies import STUDIES, Study

REPORTS = Path("reports")
_SCHEME = re.compile(r"https?://")


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


def collect(study: Study, params: dict) -> dict | None:
    """Everything the report says about ``study``, or None if it has no metrics yet."""
    metrics_path = Path("metrics") / f"{study.name}.json"
    if not metrics_path.is_file():
        return None
    audit_path = REPORTS / "audit" / f"{study.dataset}.json"
    threshold_path = study.model_dir / "threshold.json"
    sections = {}
    for section in ("features", "split", "model", "train", "calibrate"):
        try:
            sections[section] = study.params(params, section)
        except Exception:  # noqa: BLE001 (a study without such a section shows none)
            continue
    metrics = read_json(metrics_path)
    flat = flatten(metrics)
    headline = study.headline or tuple(k for k in flat if k.startswith("test."))[:8]
    return {
        "study": study,
        "dataset": DATASETS.get(study.dataset),
        "metrics": flat,
        "headline": {k: flat[k] for k in headline if k in flat},
        "audit": read_json(audit_path) if audit_path.is_file() else None,
        "calibration": read_json(threshold_path) if threshold_path.is_file() else None,
        "params": sections,
        "figures": sorted((REPORTS / study.name).glob("*.png")),
    }


# ---------------------------------------------------------------- markdown
def summary_markdown(entries: list[dict]) -> str:
    lines = ["# Headline test metrics", ""]
    for e in entries:
        lines += [f"**{e['study'].name}**: {e['study'].title}", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {fmt(v)} |" for k, v in e["headline"].items()]
        lines.append("")
    return "\n".join(lines)


def model_card(e: dict) -> str:
    study, dataset, p = e["study"], e["dataset"], e["params"]
    lines = [f"# Model card: {study.name}", "", study.title, "", "## Data"]
    if dataset is not None:
        lines += [f"- Dataset: {dataset.name}. {dataset.citation}",
                  f"- Licence: {dataset.licence}", f"- Official source: {dataset.landing_page}"]
    lines += ["- Provenance: copied from `download.local_copy` and verified against its "
              "SHA256SUMS, or fetched from the official source (see README)."]
    if e["audit"]:
        lines += ["", "## Split", f"- Scheme: {e['audit'].get('scheme', '?')}"]
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
CSS = """body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;
color:#222}table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;
padding:.2rem .6rem;text-align:left}th{background:#f3f3f3}img{max-width:32rem;margin:.3rem;
border:1px solid #eee}section{border-top:2px solid #ddd;margin-top:2rem}code{background:#f6f6f6}"""


def _text(value: Any) -> str:
    """Escaped text with URL schemes dropped, so nothing in the page links out."""
    return html.escape(_SCHEME.sub("", str(value)))


def _table(rows: dict) -> str:
    body = "".join(f"<tr><td>{_text(k)}</td><td>{_text(fmt(v))}</td></tr>" for k, v in rows.items())
    return f"<table><tr><th>name</th><th>value</th></tr>{body}</table>"


def _figure(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_text(path.stem)}" src="data:image/png;base64,{data}">'


def study_html(e: dict) -> str:
    study, parts = e["study"], []
    parts.append(f"<section id='{_text(study.name)}'><h2>{_text(study.name)}</h2>"
                 f"<p>{_text(study.title)}</p>")
    if e["dataset"] is not None:
        parts.append(f"<p><b>Data:</b> {_text(e['dataset'].citation)}</p>")
    if e["audit"]:
        counts = {f"{s}.{k}": v for s, c in e["audit"]["counts"].items() for k, v in c.items()}
        checks = {k: v for k, v in flatten(e["audit"]).items() if not k.startswith("counts.")}
        parts.append("<h3>Split audit</h3>" + _table({**counts, **checks}))
    parts.append("<h3>Params</h3>" + _table(flatten(e["params"])))
    parts.append("<h3>Test metrics</h3>" + _table(e["metrics"]))
    parts.append("<h3>Figures</h3>" + "".join(_figure(f) for f in e["figures"]))
    parts.append("<h3>Known limitations</h3><ul>"
                 + "".join(f"<li>{_text(t)}</li>" for t in study.limitations) + "</ul></section>")
    return "".join(parts)


def index_html(entries: list[dict]) -> str:
    toc = "".join(f"<li><a href='#{_text(e['study'].name)}'>{_text(e['study'].name)}</a></li>"
                  for e in entries)
    body = "".join(study_html(e) for e in entries)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Studies report"
            f"</title><style>{CSS}</style></head><body><h1>Studies report</h1><ul>{toc}</ul>"
            f"{body}</body></html>\n")


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def report(params: dict) -> list[dict]:
    entries = [e for s in STUDIES.values() if (e := collect(s, params)) is not None]
    _write(REPORTS / "index.html", index_html(entries))
    _write(REPORTS / "summary.md", summary_markdown(entries))
    for e in entries:
        _write(REPORTS / "model_cards" / f"{e['study'].name}.md", model_card(e))
    return entries


def command() -> None:
    """Write reports/index.html, reports/summary.md and a model card per study."""
    entries = report(load_params())
    typer.echo(f"report: {len(entries)} studies -> {REPORTS / 'index.html'}")
