"""Peak memory of ``pipeline predict`` on an ICBHI recording with a huge annotation file.

    python benchmarks/predict_memory.py [--cycles 20000] [--seconds 60]

Writes a recording and an annotation file of ``--cycles`` cycles (0.5-3 s, inside the
audio, as an adversarial but valid file would be) to a scratch folder, then scores it the
way predict does (the project's ``icbhi.features``, a SimpleCNN of the trained shape,
weights untrained: memory and time do not depend on them) and prints the peak resident
memory and the time. Before batching, 20,000 cycles cost about 4.3 GB; batches of
``pipeline.datasets.icbhi.study.PREDICT_BATCH`` cycles keep the peak flat in the cycle count.
Run from the project root.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.models import build
from pipeline.params import load_params
from pipeline.datasets.icbhi.study import PREDICT_BATCH, _featurize_icbhi
from pipeline.training import Classification, predict_scores


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    settings = load_params()["icbhi"]["features"]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "101_1b1_Al_sc_Meditron.wav"
        rate = settings["sample_rate"]
        sf.write(audio, 0.1 * rng.standard_normal(int(args.seconds * rate)).astype(np.float32),
                 rate, subtype="PCM_16")
        starts = rng.uniform(0, args.seconds - 3.0, args.cycles)
        ends = starts + rng.uniform(0.5, 3.0, args.cycles)
        audio.with_suffix(".txt").write_text(
            "".join(f"{s:.3f}\t{e:.3f}\t0\t0\n" for s, e in zip(starts, ends, strict=True)))
        print(f"annotation: {audio.with_suffix('.txt').stat().st_size / 1024:.0f} KiB, "
              f"{args.cycles} cycles; batch {PREDICT_BATCH}")
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


if __name__ == "__main__":
    main()
