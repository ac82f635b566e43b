"""Peak memory of ``pipeline predict``: on a long recording, and on a huge annotation file.

    python benchmarks/predict_memory.py long [--hours 2] [--write results.json]
    python benchmarks/predict_memory.py cycles [--cycles 20000] [--seconds 60]

``long`` writes one recording of ``--hours`` (44.1 kHz for ``icbhi_crnn``, which resamples
it, and 4 kHz for ``hls_ae``, whose files are 4 kHz) to a scratch folder, block by block,
and runs the real ``pipeline predict`` on it in a child process, once per study, with the
trained models of this workspace; it prints the child's peak resident memory and time, and
with ``--write`` stores the 44.1 kHz figure as ``memory.predict_long_mb`` (goal 1,000).
Before predict read files in blocks, 1 hour at 44.1 kHz peaked at 1,976 MiB.

``cycles`` scores a 60 s recording with ``--cycles`` annotated cycles (0.5-3 s, inside the
audio, as an adversarial but valid file would be) the way predict does, weights untrained
(memory and time do not depend on them). Before batching, 20,000 cycles cost about 4.3 GB;
batches of ``PREDICT_BATCH`` cycles keep the peak flat in the cycle count.
Run from the project root.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pipeline  # noqa: F401 - first: pins the CPU kernels
import numpy as np
import soundfile as sf

from pipeline.datasets.icbhi.study import PREDICT_BATCH, _featurize_icbhi
from pipeline.models import build
from pipeline.params import load_params
from pipeline.objectives import Classification
from pipeline.training import predict_scores

LONG_STUDIES = {"icbhi_crnn": 44_100, "hls_ae": 4_000}  # study: the rate of its long file


def peak_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: KiB


def write_noise(path: Path, seconds: float, rate: int) -> None:
    """Quiet noise, written a minute at a time (the benchmark itself stays small)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        for begin in range(0, int(seconds * rate), 60 * rate):
            n = min(60 * rate, int(seconds * rate) - begin)
            f.write(0.1 * rng.standard_normal(n).astype(np.float32))


def predict_peak(study: str, audio: Path) -> tuple[float, float, dict]:
    """(peak MiB, seconds, predict's JSON) of ``pipeline predict`` on ``audio`` in a child."""
    begin = time.perf_counter()
    # a fresh interpreter per study, so that one child's peak is not another's
    code = ("import resource, sys; from pipeline.cli import app\n"
            "try:\n    app(sys.argv[1:])\nexcept SystemExit as e: code = e.code\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(code)")
    run = subprocess.run([sys.executable, "-c", code, "predict", "--study", study, "--json",
                          str(audio)], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - begin
    if run.returncode != 0:
        sys.exit(f"predict --study {study} failed:\n{run.stderr}")
    return int(run.stderr.strip().splitlines()[-1]) / 1024, elapsed, json.loads(run.stdout)


def long_recordings(hours: float, write: Path | None) -> None:
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for study, rate in LONG_STUDIES.items():
            audio = Path(tmp) / f"long_{rate}.wav"
            write_noise(audio, hours * 3600, rate)
            mib, seconds, result = predict_peak(study, audio)
            audio.unlink()
            print(f"{study}: {hours:g} h at {rate / 1000:g} kHz ({len(result['results'])} unit(s)): "
                  f"peak {mib:.0f} MiB, {seconds:.0f} s")
            figures[study] = {"hours": hours, "sample_rate": rate, "peak_mb": round(mib, 1),
                              "seconds": round(seconds, 1)}
    if write:
        results = json.loads(write.read_text())
        results.setdefault("memory", {})["predict_long_mb"] = figures["icbhi_crnn"]["peak_mb"]
        results["memory"]["predict_long"] = figures
        write.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote memory.predict_long_mb to {write}")


def many_cycles(cycles: int, seconds: float) -> None:
    settings = load_params()["icbhi"]["features"]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "101_1b1_Al_sc_Meditron.wav"
        write_noise(audio, seconds, settings["sample_rate"])
        starts = rng.uniform(0, seconds - 3.0, cycles)
        ends = starts + rng.uniform(0.5, 3.0, cycles)
        audio.with_suffix(".txt").write_text(
            "".join(f"{s:.3f}\t{e:.3f}\t0\t0\n" for s, e in zip(starts, ends, strict=True)))
        print(f"annotation: {audio.with_suffix('.txt').stat().st_size / 1024:.0f} KiB, "
              f"{cycles} cycles; batch {PREDICT_BATCH}")
        baseline = peak_mib()
        begin = time.perf_counter()
        model, scored = None, 0
        skipped, batches = _featurize_icbhi(audio, settings)
        for samples in batches:
            if model is None:
                model = build("simple_cnn", n_mels=samples.x.shape[2], frames=samples.x.shape[3])
            scored += len(predict_scores(model, Classification(), samples.x, device="cpu"))
        elapsed = time.perf_counter() - begin
    print(f"scored {scored} cycles, skipped {len(skipped)} in {elapsed:.1f} s")
    print(f"peak resident memory: {peak_mib():.0f} MiB (after imports: {baseline:.0f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    long = modes.add_parser("long", help="one long recording per study, through pipeline predict")
    long.add_argument("--hours", type=float, default=2.0)
    long.add_argument("--write", type=Path, help="results.json to store memory.predict_long_mb in")
    many = modes.add_parser("cycles", help="a recording with a huge annotation file")
    many.add_argument("--cycles", type=int, default=20_000)
    many.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    if args.mode == "long":
        long_recordings(args.hours, args.write)
    else:
        many_cycles(args.cycles, args.seconds)


if __name__ == "__main__":
    main()
