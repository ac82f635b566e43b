"""Stage 7: an offline report of every study that has metrics.

``reports/index.html`` is self-contained (inline CSS, figures embedded as data URIs, no
scripts, no links out). It opens with one summary table (each study's headline metric,
its interval, its training noise from ``reports/seed_noise.json``, the goal and the data
counts), then per dataset its studies, figures
first, with the split audit and the params collapsed and shown once per dataset.
``reports/summary.md`` is the summary to paste into a pull request and
``reports/model_cards/<study>.md`` describes each trained model. The pages depend only on
what the stage declares: a comparison with another branch is ``pipeline compare --html``
(not a DVC output). Studies come from the registry; a new study appears here with no new
report code.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from pipeline import paths
from pipeline.training_noise import TrainingNoise, read_noise_file
from pipeline.datasets import dataset_package
from pipeline.html_page import collapsed, escape, figure_html, fmt, grid, kv_table, page, write_text
from pipeline.io import read_json
from pipeline.params import dataset_entry, dataset_settings, load_params
from pipeline.datasets.icbhi.study import SEMI_STUDY
from pipeline.studies import Study, get_study, study_names
from pipeline.study_notes import notes

log = logging.getLogger(__name__)
STUDY_SECTIONS = ("model", "train", "calibrate", "evaluate")
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


def _sections(study: Study, params: dict) -> dict:
    return {section: study.params(params, section) for section in STUDY_SECTIONS
            if section in study.sections}


def _dataset_sections(study: Study, params: dict) -> dict:
    """The settings of the study's dataset (generate, or features and split)."""
    roles = [r for r in dataset_entry(params, study.dataset) if r != "split_reads"]
    return {role: dataset_settings(params, study.dataset, role) for role in roles}


def _figures(study: Study) -> list[Path]:
    found = {p.stem: p for p in paths.figures(study.name).glob("*.png")}
    first = [found.pop(name) for name in FIGURE_ORDER if name in found]
    return first + [found[name] for name in sorted(found)]


def collect(study: Study, params: dict, noise: dict[str, TrainingNoise]) -> dict | None:
    """Everything the report says about ``study``, or None if it has no metrics yet."""
    headline_path = paths.headline_metrics(study.name)
    details_path = paths.METRICS / study.name / "details.json"
    if not (headline_path.is_file() and details_path.is_file()):
        return None
    audit_path = paths.audit_report(study.dataset)
    threshold_path = study.model_dir / "threshold.json"
    details = read_json(details_path)
    audit = read_json(audit_path) if audit_path.is_file() else None
    return {
        "study": study,
        "notes": notes(study.name, audit),
        "dataset": getattr(dataset_package(study.dataset), "DATASET", None),
        "metrics": flatten({k: v for k, v in details.items() if k != "data"}),
        "data": details.get("data", {}),
        "headline": read_json(headline_path).get(study.name, {}),
        "noise": noise.get(study.name),
        "audit": audit,
        "calibration": read_json(threshold_path) if threshold_path.is_file() else None,
        "params": _sections(study, params),
        "dataset_params": _dataset_sections(study, params),
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


def noise_cell(noise: TrainingNoise | None, name: str) -> str:
    """The headline metric's sd over the study's noise-only rebuilds: how far it moves when
    only the training seed (or the CPU kernels) does."""
    sd = None if noise is None else noise.sd.get(name)
    return "not measured" if sd is None else f"{sd:.3f} ({noise.runs} runs)"


def members_cell(headline: dict, name: str) -> str:
    """How many seed members the study's model averages, and the headline metric's sd over
    them evaluated alone (train.seeds)."""
    sd = headline.get(f"{name}_seed_sd")
    return str(headline.get("seeds", 1)) + ("" if sd is None else f" (sd {sd:.3f})")


def summary_rows(entries: list[dict]) -> list[list[str]]:
    rows = []
    for e in entries:
        name, value, interval = primary(e)
        rows.append([e["study"].name, name, fmt(value), interval, noise_cell(e["noise"], name),
                     members_cell(e["headline"], name), e["notes"].goal, data_summary(e["data"])])
    return rows


SUMMARY_HEADER = ["study", "headline metric", "value", "95% interval", "seed sd", "seed members",
                  "goal", "units used"]


# ---------------------------------------------------------------- markdown
def summary_markdown(entries: list[dict], semi: dict | None = None) -> str:
    lines = ["# Headline test metrics", "", "| " + " | ".join(SUMMARY_HEADER) + " |",
             "|" + "---|" * len(SUMMARY_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(entries)]
    for e in entries:
        lines += ["", f"**{e['study'].name}**: {e['notes'].title}", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {fmt(v)} |" for k, v in e["headline"].items()]
    if semi is not None:
        lines += semi_markdown(semi)
    return "\n".join(lines) + "\n"


def model_card(e: dict) -> str:
    study, dataset = e["study"], e["dataset"]
    p = {**e["dataset_params"], **e["params"]}
    lines = [f"# Model card: {study.name}", "", e["notes"].title, "", "## Data"]
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
    lines += ["", "## Known limitations"] + [f"- {text}" for text in e["notes"].limitations]
    return "\n".join(lines) + "\n"


def audit_html(audit: dict) -> str:
    """Split counts as one row per split, then the leak checks."""
    counts = audit["counts"]
    columns = list(dict.fromkeys(k for c in counts.values() for k in c))
    table = grid(["split", *columns], [[s, *(c.get(k, "") for k in columns)]
                                       for s, c in counts.items()])
    checks = {k: v for k, v in flatten(audit).items()
              if not k.startswith(("counts.", "counts_by_class.", "download."))}
    return table + kv_table(checks)


def study_html(e: dict) -> str:
    study = e["study"]
    parts = [f"<section class='study' id='{escape(study.name)}'><h3>{escape(study.name)}</h3>",
             f"<p>{escape(e['notes'].title)}</p>",
             "<div class='figs'>" + "".join(figure_html(f) for f in e["figures"]) + "</div>",
             "<h4>Headline test metrics</h4>" + kv_table(e["headline"])]
    if e["data"]:
        parts.append(f"<p><b>Units this study used:</b> {escape(data_summary(e['data']))} "
                     "<span class='muted'>(after its own selection from the dataset split)"
                     "</span></p>")
    params = flatten(e["params"])
    if e["calibration"]:
        params.update(flatten(e["calibration"], "calibrated."))
    parts.append(collapsed("Study params and calibration", kv_table(params)))
    parts.append(collapsed("Every test metric", kv_table(e["metrics"])))
    parts.append("<h4>Known limitations</h4><ul>"
                 + "".join(f"<li>{escape(t)}</li>" for t in e["notes"].limitations) + "</ul></section>")
    return "".join(parts)


def dataset_html(name: str, entries: list[dict]) -> str:
    """One dataset: its citation, split audit and shared params once, then its studies."""
    first = entries[0]
    parts = [f"<section class='dataset'><h2>Dataset: {escape(name)}</h2>"]
    if first["dataset"] is not None:
        parts.append(f"<p><b>Data:</b> {escape(first['dataset'].citation)}</p>")
    body = audit_html(first["audit"]) if first["audit"] else "<p>no split audit</p>"
    body += "<h4>Dataset params</h4>" + kv_table(flatten(first["dataset_params"]))
    parts.append(collapsed(f"Split audit and dataset params ({name}; counts before each "
                          "study's own selection)", body))
    parts += [study_html(e) for e in entries]
    return "".join(parts) + "</section>"


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
    figure = paths.figures(SEMI_STUDY) / "label_fraction.png"
    parts = ["<section class='dataset' id='icbhi_semi'><h2>ICBHI semi-supervised (icbhi_semi)</h2>",
             "<p>Test AUROC of each method with a share of the training patients labelled "
             "(intervals: 95% patient-cluster bootstrap).</p>"]
    if figure.is_file():
        parts.append("<div class='figs'>" + figure_html(figure) + "</div>")
    parts.append(grid(SEMI_HEADER, semi_rows(semi)))
    parts.append("<ul>" + "".join(f"<li>{escape(line)}</li>" for line in semi_gap_lines(semi)) + "</ul>")
    return "".join(parts) + "</section>"


def semi_markdown(semi: dict) -> list[str]:
    lines = ["", "## ICBHI semi-supervised (icbhi_semi)", "", "| " + " | ".join(SEMI_HEADER) + " |",
             "|" + "---|" * len(SEMI_HEADER)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in semi_rows(semi)]
    return lines + [""] + semi_gap_lines(semi)


def index_html(entries: list[dict], semi: dict | None = None) -> str:
    by_dataset: dict[str, list[dict]] = {}
    for e in entries:
        by_dataset.setdefault(e["study"].dataset, []).append(e)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" if i else
                         f"<td><a href='#{escape(c)}'>{escape(c)}</a></td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in summary_rows(entries))
    head = "".join(f"<th>{escape(h)}</th>" for h in SUMMARY_HEADER)
    summary = f"<table><tr>{head}</tr>{rows}</table>"
    body = "".join(dataset_html(name, part) for name, part in by_dataset.items())
    if semi is not None:
        body += semi_html(semi)
    return page("Studies report", summary + body)


def report(params: dict) -> list[dict]:
    noise = read_noise_file()
    entries = [e for name in study_names(params)
               if (e := collect(get_study(name, params=params), params, noise)) is not None]
    semi_path = paths.headline_metrics(SEMI_STUDY)
    semi = read_json(semi_path) if semi_path.is_file() else None
    write_text(paths.REPORTS / "index.html", index_html(entries, semi))
    write_text(paths.REPORTS / "summary.md", summary_markdown(entries, semi))
    for e in entries:
        write_text(paths.REPORTS / "model_cards" / f"{e['study'].name}.md", model_card(e))
    return entries


def command() -> None:
    """Write reports/index.html, reports/summary.md and a model card per study."""
    entries = report(load_params())
    typer.echo(f"report: {len(entries)} studies -> {paths.REPORTS / 'index.html'}")

