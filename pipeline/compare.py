"""``pipeline compare A B``: did B move each study's headline metrics beyond chance?

A and B are git revisions, branches or DVC experiment names (``workspace``: the files on
disk). Both sides are read from the per-unit test scores that evaluate commits to git
(``metrics/<study>/scores.csv``, ``pipeline/unit_scores.py``), so nothing re-runs.

Where both sides scored the same units with the same labels, the interval of each change
has two independent parts:

- **test sampling**, by a paired bootstrap: one set of resampling weights is applied to
  both sides, and whole groups (a patient, a family of identical recordings) are drawn
  together, so units that are not independent are not counted as if they were;
- **training noise**: two trainings of one study that differ only in the seed, or in the
  CPU kernels, already differ. ``reports/seed_noise.json`` (``benchmarks/seed_noise.py``)
  holds each figure's sample sd over k noise-only rebuilds of the study; a change between
  two single runs carries the variance of both, and each bootstrap draw is joined by a
  draw of that sd times Student's t with k - 1 degrees of freedom (a prediction for a new
  run from k measured ones, wider when k is small).

A change is ``better`` or ``worse`` when that interval excludes zero, otherwise ``no
evidence``. A study without a measured band is judged on test sampling alone, and the
note says so. AUROC also gets DeLong's test for two correlated ROC curves, shown for
reference: it treats units as independent and knows nothing of training noise. Where the
units differ (other split params), only the marginal figures are shown.
"""

from __future__ import annotations

import json
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import typer
import yaml
from scipy.stats import norm, rankdata

from pipeline import plots
from pipeline.bootstrap import percentile_interval, resample_weights, resampled_aurocs
from pipeline.errors import PipelineError
from pipeline.html_page import escape, grid, img, page, write_text
from pipeline.metrics import roc_table
from pipeline.params import PARAMS_FILE, load_params, lookup
from pipeline.training_noise import (NOISE_FILE, TrainingNoise, parse_noise, study_settings,
                                     with_training_noise)
from pipeline.unit_scores import SCORE_COLUMNS, scores_path

WORKSPACE = "workspace"


# ---------------------------------------------------------------- per-unit scores, through git
def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def resolve(rev: str) -> str:
    """The commit of a git revision or of a DVC experiment (``refs/exps/.../<name>``)."""
    found = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if found.returncode == 0:
        return found.stdout.strip()
    refs = _git("for-each-ref", "--format=%(refname) %(objectname)", "refs/exps").stdout.split("\n")
    matches = [line.split()[1] for line in refs if line.split()[:1] and
               line.split()[0].rsplit("/", 1)[-1] == rev]
    if len(matches) != 1:
        raise PipelineError(f"no git revision or DVC experiment named {rev!r}"
                            + (" (several experiments have that name)" if matches else ""))
    return matches[0]


def _read_text(rev: str, path: Path) -> str | None:
    """A file's text at ``rev`` (``workspace``: on disk), None where it has none."""
    if rev == WORKSPACE:
        return path.read_text() if path.is_file() else None
    shown = _git("show", f"{resolve(rev)}:./{path.as_posix()}")
    return shown.stdout if shown.returncode == 0 else None


def read_scores(rev: str, study: str) -> pd.DataFrame | None:
    """A study's per-unit scores at ``rev`` (``workspace``: on disk), None if it has none."""
    path = scores_path(study)
    text = _read_text(rev, path)
    if text is None:
        return None
    frame = pd.read_csv(StringIO(text), dtype={"unit": str, "group": str})
    missing = [c for c in SCORE_COLUMNS if c not in frame]
    if missing:
        raise PipelineError(f"missing columns {missing} at {rev}", path)
    return frame


# ---------------------------------------------------------------- training noise
def read_noise(rev: str) -> dict[str, TrainingNoise] | None:
    """Study -> its training noise, from ``reports/seed_noise.json`` at ``rev`` (None: no file)."""
    text = _read_text(rev, NOISE_FILE)
    return None if text is None else parse_noise(text, rev)


def noise_source(rev_a: str, rev_b: str) -> tuple[str, dict[str, TrainingNoise]]:
    """Where the band comes from and the band: B's file, or A's where B has none."""
    for rev in (rev_b, rev_a):
        found = read_noise(rev)
        if found is not None:
            return f"{NOISE_FILE.as_posix()} at {rev}", found
    return f"no {NOISE_FILE.as_posix()} at {rev_a} or {rev_b}", {}


def read_params(rev: str) -> dict | None:
    """``params.yaml`` at ``rev`` as written (None: none there, or not YAML)."""
    text = _read_text(rev, PARAMS_FILE)
    try:
        return None if text is None else yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def moved_since_band(band: TrainingNoise | None, study: str, params: dict[str, dict | None]) -> list[str]:
    """The study's settings that differ, side by side (``params``: side -> its params), from
    those the band's runs were made with: ``B: model.latent: 32 -> 16``."""
    if band is None:
        return []
    moved = []
    for side, found in params.items():
        if not isinstance(found, dict):
            continue
        try:
            now = study_settings(found, study)
        except (PipelineError, KeyError, TypeError):  # not in that side's index: nothing to hold
            continue
        moved += [f"{side}: {change}" for change in band.moved(now)]
    return moved


def noise_note(noise: TrainingNoise | None, source: str, metrics: tuple[Metric, ...],
               moved: list[str] | tuple[str, ...] = ()) -> str:
    if noise is None:
        return f"training noise not measured for this study ({source}): test sampling alone"
    missing = [m.name for m in metrics if m.name not in noise.sd]
    return (f"training noise: each run's sd over {noise.runs} noise-only runs ({source}), counted "
            "for both runs" + (f"; none measured for {', '.join(missing)}: test sampling alone"
                               if missing else "")
            + (f"; the band's runs had other settings ({'; '.join(moved)}): an estimate, "
               "`python benchmarks/seed_noise.py` measures these" if moved else ""))


# ---------------------------------------------------------------- metrics under weights
@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    # (weights [resamples x units], labels, predicted classes, scores) -> one value per resample
    compute: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _sensitivity(w, y, predicted, s):
    """Share of abnormal units given their exact class (the ICBHI rule; binary: plain)."""
    abnormal = y != 0
    return _ratio(w @ (abnormal & (predicted == y)), w @ abnormal)


def _specificity(w, y, predicted, s):
    return _ratio(w @ ((y == 0) & (predicted == 0)), w @ (y == 0))


LABELLED = (
    Metric("auroc", True, lambda w, y, p, s: resampled_aurocs((y != 0).astype(int), s, w)),
    Metric("sensitivity", True, _sensitivity),
    Metric("specificity", True, _specificity),
    Metric("balanced_accuracy", True,
           lambda w, y, p, s: (_sensitivity(w, y, p, s) + _specificity(w, y, p, s)) / 2),
)
# studies without labels (mnist_ae): the score is a reconstruction error
UNLABELLED = (Metric("mean_score", False, lambda w, y, p, s: _ratio(w @ s, w.sum(axis=1))),)


def metrics_for(frame: pd.DataFrame) -> tuple[Metric, ...]:
    return LABELLED if frame["label"].notna().all() else UNLABELLED


def _arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labelled = frame["label"].notna().all()
    y = frame["label"].to_numpy(float).astype(int) if labelled else np.zeros(len(frame), int)
    p = frame["predicted"].fillna(-1).to_numpy(float).astype(int)
    return y, p, frame["score"].to_numpy(float)


def point(metric: Metric, frame: pd.DataFrame) -> float:
    return float(metric.compute(np.ones((1, len(frame))), *_arrays(frame))[0])


# ---------------------------------------------------------------- paired tests
def paired_bootstrap(a: pd.DataFrame, b: pd.DataFrame, metrics: tuple[Metric, ...], n_boot: int,
                     seed: int) -> dict[str, np.ndarray]:
    """``n_boot`` draws of metric(B) - metric(A) per metric; ``a`` and ``b`` row-aligned."""
    groups = b["group"].fillna(b["unit"]).to_numpy(str)
    side_a, side_b = _arrays(a), _arrays(b)
    deltas = {m.name: [] for m in metrics}
    for w in resample_weights(n_boot, seed, groups=groups):
        for m in metrics:
            deltas[m.name].append(m.compute(w, *side_b) - m.compute(w, *side_a))
    return {name: np.concatenate(parts) for name, parts in deltas.items()}


def delong_test(labels: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> dict:
    """DeLong, DeLong & Clarke-Pearson (1988) for two correlated AUROCs on the same units,
    with the midrank computation of Sun & Xu (2014): AUROCs, z of B - A, two-sided p."""
    abnormal = np.asarray(labels) != 0
    m, n = int(abnormal.sum()), int((~abnormal).sum())
    if m == 0 or n == 0:
        return {"auroc_a": np.nan, "auroc_b": np.nan, "z": np.nan, "p": np.nan}
    aucs, v10, v01 = [], [], []
    for s in (np.asarray(score_a, float), np.asarray(score_b, float)):
        x, y = s[abnormal], s[~abnormal]
        tx, ty, tz = rankdata(x), rankdata(y), rankdata(np.concatenate([x, y]))
        aucs.append((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
        v10.append((tz[:m] - tx) / n)  # per abnormal unit: share of normals below it
        v01.append(1 - (tz[m:] - ty) / m)  # per normal unit: share of abnormals above it
    s10 = np.cov(np.vstack(v10)) if m > 1 else np.zeros((2, 2))
    s01 = np.cov(np.vstack(v01)) if n > 1 else np.zeros((2, 2))
    c = np.array([-1.0, 1.0])
    variance = float(c @ (s10 / m + s01 / n) @ c)
    delta = aucs[1] - aucs[0]
    if variance <= 0:
        z, p = (0.0, 1.0) if delta == 0 else (np.copysign(np.inf, delta), 0.0)
    else:
        z = delta / np.sqrt(variance)
        p = float(2 * norm.sf(abs(z)))
    return {"auroc_a": float(aucs[0]), "auroc_b": float(aucs[1]), "z": float(z), "p": p}


def verdict(low: float, high: float, higher_is_better: bool) -> str:
    if not (np.isfinite(low) and np.isfinite(high)) or low <= 0 <= high:
        return "no evidence"
    return "better" if (low > 0) == higher_is_better else "worse"


def _paired(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame | None:
    """A's rows in B's unit order when both scored the same units with the same labels."""
    if len(a) != len(b) or set(a["unit"]) != set(b["unit"]) or not a["unit"].is_unique:
        return None
    aligned = a.set_index("unit").loc[b["unit"]].reset_index()
    same = np.array_equal(aligned["label"].fillna(-1).to_numpy(), b["label"].fillna(-1).to_numpy())
    return aligned if same else None


def compare_study(study: str, a: pd.DataFrame, b: pd.DataFrame, cfg: dict,
                  noise: TrainingNoise | None = None, source: str = NOISE_FILE.as_posix(),
                  moved: list[str] | tuple[str, ...] = ()) -> dict:
    """Rows (metric, a, b, change, low, high, verdict, noise_sd) and how they were obtained;
    ``noise``: the training noise of the change (``TrainingNoise``, both sides' summed),
    None where it was not measured; ``source``: where it was read, for the note; ``moved``:
    the settings that differ from the band's runs' (``moved_since_band``)."""
    metrics = metrics_for(b)
    aligned = _paired(a, b) if metrics_for(a) == metrics else None
    if aligned is None:
        note = (f"units differ (A: {len(a)}, B: {len(b)}; other split params?): "
                "marginal figures only")
        intervals = {}
    else:
        n_groups = b["group"].fillna(b["unit"]).nunique()
        note = (f"paired bootstrap over {len(b)} shared units in {n_groups} groups, "
                f"{cfg['bootstrap']} resamples, seed {cfg['seed']}; "
                f"{noise_note(noise, source, metrics, moved)}")
        deltas = paired_bootstrap(aligned, b, metrics, cfg["bootstrap"], cfg["seed"])
        if noise is not None:  # each metric's noise drawn apart, seeded by study and metric
            deltas = {name: with_training_noise(
                          d, noise.sd.get(name, 0.0), noise.runs,
                          [cfg["seed"], k, zlib.crc32(study.encode())])
                      for k, (name, d) in enumerate(deltas.items(), 1)}
        intervals = {name: percentile_interval(d, cfg["level"]) for name, d in deltas.items()}
    rows = []
    for m in metrics:
        va, vb = point(m, a), point(m, b)
        low, high = intervals.get(m.name, (np.nan, np.nan))
        row = {"study": study, "metric": m.name, "a": va, "b": vb, "change": vb - va,
               "low": low, "high": high,
               "verdict": verdict(low, high, m.higher_is_better) if intervals else "units differ",
               "noise_sd": noise.sd.get(m.name) if noise is not None and intervals else None}
        if m.name == "auroc" and aligned is not None:
            row["delong_p"] = delong_test(b["label"], aligned["score"], b["score"])["p"]
        rows.append(row)
    return {"study": study, "paired": aligned is not None, "note": note, "rows": rows,
            "level": cfg["level"],
            "noise": None if noise is None else {"sd": noise.sd, "runs": noise.runs, "source": source,
                                                 "moved_settings": list(moved)}}


def compare_studies(first: str, second: str, rev: str, cfg: dict) -> list[dict]:
    """Two studies of one revision, unit by unit (A = ``first``, B = ``second``): a deep
    model against its classical baseline on the same test units is a paired comparison."""
    a, b = read_scores(rev, first), read_scores(rev, second)
    for study, found in ((first, a), (second, b)):
        if found is None:
            raise PipelineError(f"no scores of {study} in {rev} (run `dvc repro`)", scores_path(study))
    source, noise = noise_source(rev, rev)
    both = noise[first] + noise[second] if first in noise and second in noise else None
    return [compare_study(f"{second} - {first}", a, b, cfg, both, source)]


def compare(rev_a: str, rev_b: str, studies: list[str], cfg: dict) -> list[dict]:
    """One comparison per study that has scores on both sides (a note for the others); the
    training noise is B's band (A's where B has none), counted for both runs."""
    source, noise = noise_source(rev_a, rev_b)
    params = {"A": read_params(rev_a), "B": read_params(rev_b)}
    out = []
    for study in studies:
        a, b = read_scores(rev_a, study), read_scores(rev_b, study)
        if a is None or b is None:
            missing = " and ".join(r for r, f in ((rev_a, a), (rev_b, b)) if f is None)
            out.append({"study": study, "paired": False, "rows": [],
                        "note": f"no {scores_path(study)} in {missing}"})
        else:
            band = noise.get(study)
            both = band + band if band is not None else None  # one run a side
            out.append(compare_study(study, a, b, cfg, both, source,
                                     moved_since_band(band, study, params)))
    return out


# ---------------------------------------------------------------- output
LEGEND = ("change = B - A; noise sd: the training noise of the change (sqrt 2 x one run's sd "
          "over the noise-only runs)")


def header(results: list[dict]) -> list[str]:
    level = next((res["level"] for res in results if "level" in res), 0.95)
    return ["study", "metric", "A", "B", "change", "noise sd", f"{level:.0%} interval", "verdict",
            "DeLong p"]


def _signed(value: float) -> str:
    """+0.0123; a bound too small for 4 decimals in scientific notation, never +0.0000."""
    return f"{value:+.4f}" if value == 0 or abs(value) >= 5e-5 else f"{value:+.1e}"


def cells(row: dict) -> list[str]:
    interval = "" if not np.isfinite(row["low"]) else f"[{_signed(row['low'])}, {_signed(row['high'])}]"
    p, sd = row.get("delong_p"), row.get("noise_sd")
    return [row["study"], row["metric"], f"{row['a']:.4f}", f"{row['b']:.4f}",
            f"{row['change']:+.4f}", "" if sd is None else f"{sd:.4f}", interval, row["verdict"],
            "" if p is None or not np.isfinite(p) else f"{p:.3g}"]


def to_markdown(results: list[dict], rev_a: str, rev_b: str) -> str:
    rows = ["| " + " | ".join(cells(r)) + " |" for res in results for r in res["rows"]]
    lines = [f"Comparison: A = `{rev_a}`, B = `{rev_b}` ({LEGEND})", ""]
    if rows:
        columns = header(results)
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *rows]
    lines += [""] + [f"- {res['study']}: {res['note']}" for res in results]
    return "\n".join(lines) + "\n"


def to_text(results: list[dict], rev_a: str, rev_b: str) -> str:
    rows = [header(results)] + [cells(r) for res in results for r in res["rows"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"A = {rev_a}, B = {rev_b} ({LEGEND})", ""]
    for k, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += [""] + [f"{res['study']}: {res['note']}" for res in results]
    return "\n".join(lines) + "\n"


def to_json(results: list[dict], rev_a: str, rev_b: str) -> str:
    clean = json.loads(pd.Series([results]).to_json(orient="values"))[0]  # NaN -> null
    return json.dumps({"a": rev_a, "b": rev_b, "studies": clean}, indent=2) + "\n"


def roc_pairs(rev_a: str, rev_b: str, studies: list[str]) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Both sides' labelled scores per study that has them on both sides (for ROC overlays)."""
    pairs = {}
    for study in studies:
        a, b = read_scores(rev_a, study), read_scores(rev_b, study)
        if a is not None and b is not None and metrics_for(a) == metrics_for(b) == LABELLED:
            pairs[study] = (a, b)
    return pairs


def comparison_html(results: list[dict], pairs: dict, rev_a: str, rev_b: str) -> str:
    """The compare table and, per study with labels, A's and B's ROC curves on one axes."""
    rows = [cells(r) for res in results for r in res["rows"]]
    notes = "".join(f"<li>{escape(res['study'])}: {escape(res['note'])}</li>" for res in results)
    figures = []
    for study, (a, b) in pairs.items():
        curves = {}
        for label, frame in ((f"A {rev_a}", a), (f"B {rev_b}", b)):
            abnormal = (frame["label"] != 0).astype(int)
            curves[label] = (roc_table(abnormal, frame["score"]),
                             point(LABELLED[0], frame))
        figures.append(img(plots.roc_overlay(curves, f"{study}: ROC, A vs B"), f"{study} ROC"))
    table = grid(header(results), rows) if rows else ""
    return (f"<h2>Against {escape(rev_a)}</h2><p>A = {escape(rev_a)}, B = {escape(rev_b)}; "
            f"{escape(LEGEND)}. Intervals: a paired bootstrap joined by the training noise where "
            f"it was measured (the notes say where); DeLong's p ignores training noise.</p>{table}"
            f"<ul>{notes}</ul><div class='figs'>{''.join(figures)}</div>")


def config(params: dict) -> dict:
    return {"bootstrap": int(lookup(params, "compare.bootstrap")),
            "seed": int(lookup(params, "compare.seed")), "level": float(lookup(params, "compare.level"))}


def command(
    a: str = typer.Argument(None, help="baseline: git revision, branch or DVC experiment "
                            "(default: compare.baseline)", show_default=False),
    b: str = typer.Argument(WORKSPACE, help="candidate: git revision, branch, DVC experiment "
                            "or 'workspace' (the files on disk)"),
    md: bool = typer.Option(False, "--md", help="a Markdown table, for a pull request"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    html: Path | None = typer.Option(None, "--html", help="also write a self-contained page "
                                     "with the table and A-over-B ROC overlays (PNG)"),
    between: str | None = typer.Option(None, "--between", metavar="STUDY_A,STUDY_B",
                                       help="compare two studies of revision B (default: the "
                                       "workspace) on their shared test units instead, e.g. "
                                       "icbhi_logreg,icbhi_crnn"),
) -> None:
    """Compare every study's headline metrics between A and B, with paired intervals."""
    from pipeline.studies import study_names

    params = load_params()
    render = to_json if as_json else to_markdown if md else to_text
    if between is not None:
        names = between.split(",")
        unknown = [n for n in names if n not in study_names(params)]
        if len(names) != 2 or unknown:
            raise PipelineError(f"--between takes two studies of the index, comma-separated, got "
                                f"{between!r}" + (f" ({', '.join(unknown)} unknown)" if unknown else ""))
        if a is not None and b != WORKSPACE:
            raise PipelineError(f"--between compares two studies of one revision, got two ({a} and {b})")
        if html is not None:
            raise PipelineError("--between writes no page: leave out --html (or compare revisions)")
        rev = b if a is None else a  # one revision: `compare --between x,y HEAD` reads as asked
        results = compare_studies(*names, rev, config(params))
        typer.echo(render(results, f"{names[0]} at {rev}", f"{names[1]} at {rev}"), nl=False)
        return
    a = a or lookup(params, "compare.baseline")
    results = compare(a, b, study_names(params), config(params))
    typer.echo(render(results, a, b), nl=False)
    if html is not None:
        body = comparison_html(results, roc_pairs(a, b, study_names(params)), a, b)
        write_text(html, page(f"{b} against {a}", body))
        typer.echo(f"compare: page -> {html}", err=True)
