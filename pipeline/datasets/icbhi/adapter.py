"""ICBHI 2017 Respiratory Sound Database: names, annotations, the official split, cycles.

Layout expected under the dataset folder (as the official archive unpacks)::

    ICBHI_challenge_train_test.txt      <name> train|test, CRLF line ends
    patient_diagnosis.csv               patient,diagnosis (optional; the official
                                        ICBHI_Challenge_diagnosis.txt is saved under this name)
    ICBHI_final_database/<name>.txt     one respiratory cycle per line
    ICBHI_final_database/<name>.wav     (or .flac; audio may be missing: partial copies)

Known quirks handled here, each logged and reported, never silently:

- the split lists ``226_1b1_Pl_sc_Meditron`` where the recording is
  ``226_1b1_Pl_sc_LittC2SE``: listed names absent from the folder are matched to the one
  unlisted recording that differs only in its device token;
- patients 156 and 218 have recordings on both sides of the split: each such patient is
  put wholly on the side that holds most of their annotated cycles (train on a tie), so
  the split is patient-disjoint;
- cycles running past the end of their audio, or shorter than ``min_cycle_s``, are
  dropped and counted.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import soundfile as sf

from pipeline.datasets.base import Dataset, Source, extract_zip
from pipeline.errors import PipelineError

log = logging.getLogger(__name__)

OFFICIAL_SITE = "https://bhichallenge.med.auth.gr/"
_OFFICIAL_FILES = OFFICIAL_SITE + "sites/default/files/ICBHI_final_database/"
OFFICIAL_URLS = {
    "database": _OFFICIAL_FILES + "ICBHI_final_database.zip",
    "split": _OFFICIAL_FILES + "ICBHI_challenge_train_test.txt",
    "diagnosis": _OFFICIAL_FILES + "ICBHI_Challenge_diagnosis.txt",
}
LICENCE = (
    "ICBHI 2017 Respiratory Sound Database: freely available for research, with citation. "
    "Cite: B. M. Rocha et al., 'An open access database for the evaluation of respiratory "
    "sound classification algorithms', Physiological Measurement 40(3):035001, 2019, "
    "doi:10.1088/1361-6579/ab03ea."
)

DATABASE_DIR = "ICBHI_final_database"
SPLIT_FILE = "ICBHI_challenge_train_test.txt"
DIAGNOSIS_FILE = "patient_diagnosis.csv"  # the local copy's name for the diagnosis list
AUDIO_EXTENSIONS = (".wav", ".flac")  # .wav first: the official format wins if both exist
SPLITS = ("train", "test")

LOCATIONS = ("Tc", "Al", "Ar", "Pl", "Pr", "Ll", "Lr")
MODES = ("sc", "mc")
DEVICES = ("AKGC417L", "LittC2SE", "Litt3200", "Meditron")
LABEL4 = ("normal", "crackle", "wheeze", "both")  # index = crackle + 2 * wheeze
# Closed vocabulary of the diagnosis list: any other entry (a typo) is an error.
DIAGNOSES = ("Healthy", "URTI", "LRTI", "COPD", "Asthma", "Bronchiectasis", "Bronchiolitis",
             "Pneumonia")

CYCLE_COLUMNS = [
    "recording", "patient", "recording_index", "location", "mode", "device",
    "cycle_index", "start", "end", "duration", "crackle", "wheeze", "label4", "label_binary",
    "official_split", "listed_split", "sample_rate", "audio_subtype", "audio_path",
    "recording_duration",
]

_RECORDING_INDEX = re.compile(r"\d+[a-z]\d+")
_ANNOTATION_COLUMNS = ["start", "end", "crackle", "wheeze"]


# ---------------------------------------------------------------- names
def parse_recording_name(name: str) -> dict:
    """``'101_1b1_Al_sc_Meditron'`` -> patient, recording_index, location, mode, device."""
    tokens = name.split("_")
    if len(tokens) != 5:
        raise PipelineError(
            "recording name must have 5 fields: patient_recordingIndex_location_mode_device",
            name,
        )
    patient, recording_index, location, mode, device = tokens
    checks = [
        (patient.isdigit(), f"patient {patient!r} is not a number"),
        (_RECORDING_INDEX.fullmatch(recording_index) is not None,
         f"recording index {recording_index!r} is not like '1b1'"),
        (location in LOCATIONS, f"location {location!r} is not one of {', '.join(LOCATIONS)}"),
        (mode in MODES, f"mode {mode!r} is not one of {', '.join(MODES)}"),
        (device in DEVICES, f"device {device!r} is not one of {', '.join(DEVICES)}"),
    ]
    for ok, cause in checks:
        if not ok:
            raise PipelineError(f"malformed recording name: {cause}", name)
    return {
        "patient": int(patient),
        "recording_index": recording_index,
        "location": location,
        "mode": mode,
        "device": device,
    }


# ---------------------------------------------------------------- annotations
def _parse_flag(token: str) -> int:
    if token not in ("0", "1"):
        raise ValueError(f"flag {token!r} is not 0 or 1")
    return int(token)


def _parse_cycle(line: str) -> tuple[float, float, int, int]:
    fields = line.split()
    if len(fields) != 4:
        raise ValueError(f"expected 4 fields (start end crackle wheeze), found {len(fields)}")
    start, end = float(fields[0]), float(fields[1])
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0:
        raise ValueError(f"times must be finite and non-negative: {start} {end}")
    if end <= start:
        raise ValueError(f"cycle ends ({end}) at or before it starts ({start})")
    return start, end, _parse_flag(fields[2]), _parse_flag(fields[3])


def parse_annotations(path: str | Path) -> pd.DataFrame:
    """One row per respiratory cycle: start, end (seconds), crackle, wheeze (0/1)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineError(f"annotation file not readable ({exc})", path) from exc
    cycles = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            cycles.append(_parse_cycle(line))
        except ValueError as exc:
            raise PipelineError(f"line {number}: {exc}", path) from exc
    if not cycles:
        raise PipelineError("annotation file holds no respiratory cycles", path)
    return pd.DataFrame(cycles, columns=_ANNOTATION_COLUMNS)


def label4(crackle: int, wheeze: int) -> str:
    return LABEL4[crackle + 2 * wheeze]


# ---------------------------------------------------------------- split and diagnosis
def _read_listed_split(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()  # splitlines drops the CRLF's \r as well
    except OSError as exc:
        raise PipelineError(f"split file not readable ({exc})", path) from exc
    split: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in SPLITS:
            raise PipelineError(f"line {number}: expected '<recording> train|test'", path)
        name, side = fields
        if name in split:
            raise PipelineError(f"line {number}: {name} is listed twice", path)
        split[name] = side
    return split


def _without_device(name: str) -> str:
    return name.rsplit("_", 1)[0]


def _resolve_names(
    split: dict[str, str], recordings: set[str], path: Path
) -> tuple[dict[str, str], dict[str, str]]:
    """Map listed names that match no recording onto the unlisted one differing only in device.

    Returns the resolved split and ``{listed name: recording}`` for each fix.
    """
    unlisted = [name for name in recordings if name not in split]
    resolved: dict[str, str] = {}
    fixes: dict[str, str] = {}
    for name, side in split.items():
        if name not in recordings:
            candidates = [r for r in unlisted if _without_device(r) == _without_device(name)]
            if len(candidates) > 1:
                raise PipelineError(
                    f"{name} matches several recordings: {', '.join(sorted(candidates))}", path
                )
            if candidates:
                log.warning("%s: listed %s taken to be recording %s", path.name, name, candidates[0])
                fixes[name] = name = candidates[0]
        resolved[name] = side
    return resolved, fixes


def read_official_split(
    path: str | Path, recordings: Iterable[str] | None = None
) -> dict[str, str]:
    """``{recording: 'train'|'test'}`` from the official list.

    With ``recordings`` (the names present, e.g. the annotation files), listed names that
    match none of them are resolved by device token (the ``226_1b1_Pl_sc`` quirk); names
    matching nothing are kept as listed (a partial copy may lack them).
    """
    path = Path(path)
    split = _read_listed_split(path)
    return split if recordings is None else _resolve_names(split, set(recordings), path)[0]


def read_diagnosis(path: str | Path) -> dict[int, str]:
    """``{patient: diagnosis}`` from ``patient,diagnosis`` lines (comma or tab separated)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise PipelineError(f"diagnosis file not readable ({exc})", path) from exc
    diagnosis: dict[int, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = re.split(r"[,\s]+", line.strip(), maxsplit=1)
        if len(fields) != 2 or not fields[0].isdigit():
            raise PipelineError(f"line {number}: expected 'patient,diagnosis'", path)
        if fields[1].strip() not in DIAGNOSES:
            raise PipelineError(f"line {number}: diagnosis {fields[1].strip()!r} is not one of "
                                f"{', '.join(DIAGNOSES)}", path)
        diagnosis[int(fields[0])] = fields[1].strip()
    return diagnosis


# ---------------------------------------------------------------- patient-disjoint split
def make_patient_disjoint(
    split: dict[str, str], cycles_per_recording: dict[str, int]
) -> tuple[dict[str, str], dict[int, dict]]:
    """Put each patient found on both sides wholly on the side holding most of their cycles.

    Ties go to train. Returns the new split and, per moved patient, where they went, the
    cycle counts that decided it and the recordings whose side changed.
    """
    by_patient: dict[int, Counter] = {}
    for name, side in split.items():
        counts = by_patient.setdefault(parse_recording_name(name)["patient"], Counter())
        counts[side] += cycles_per_recording.get(name, 0)
        counts[f"{side}_recordings"] += 1
    new_split = dict(split)
    moved: dict[int, dict] = {}
    for patient, counts in sorted(by_patient.items()):
        if not (counts["train_recordings"] and counts["test_recordings"]):
            continue
        side = "train" if counts["train"] >= counts["test"] else "test"
        changed = sorted(
            n for n, s in split.items()
            if s != side and parse_recording_name(n)["patient"] == patient
        )
        new_split.update(dict.fromkeys(changed, side))
        moved[patient] = {
            "to": side,
            "cycles_listed": {s: counts[s] for s in SPLITS},
            "recordings_moved": changed,
        }
        log.warning(
            "patient %d is in both official splits (cycles: train %d, test %d): "
            "all %d recordings put in %s", patient, counts["train"], counts["test"],
            counts["train_recordings"] + counts["test_recordings"], side,
        )
    return new_split, moved


# ---------------------------------------------------------------- cycle table
def _recording_annotations(database: Path) -> dict[str, Path]:
    """Annotation files by recording name (other .txt files, e.g. filename_format, skipped)."""
    paths = {p.stem: p for p in sorted(database.glob("*.txt")) if p.stem[:1].isdigit()}
    for name, path in paths.items():
        try:
            parse_recording_name(name)
        except PipelineError as exc:
            raise PipelineError(exc.cause, path) from exc
    return paths


def _find_audio(database: Path, name: str) -> Path | None:
    for extension in AUDIO_EXTENSIONS:
        candidate = database / f"{name}{extension}"
        if candidate.is_file():
            return candidate
    return None


def _audio_info(path: Path):
    try:
        return sf.info(path)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise PipelineError(f"not readable as audio ({exc})", path) from exc


def drop_reason(
    start: float, end: float, recording_duration: float, min_cycle_s: float
) -> str | None:
    if end > recording_duration:
        return "past_audio_end"
    if end - start < min_cycle_s:
        return "shorter_than_min_cycle"
    return None


def _recording_rows(
    name: str, annotations: pd.DataFrame, audio: Path, folder: Path, min_cycle_s: float,
    sides: dict[str, str],
) -> tuple[list[dict], list[dict]]:
    """Rows for one recording's kept cycles, and records of the dropped ones."""
    info = _audio_info(audio)
    recording = {
        "recording": name,
        **parse_recording_name(name),
        **sides,
        "sample_rate": info.samplerate,
        "audio_subtype": info.subtype,
        "audio_path": audio.relative_to(folder).as_posix(),
        "recording_duration": info.frames / info.samplerate,
    }
    kept, dropped = [], []
    for index, cycle in enumerate(annotations.itertuples(index=False)):
        crackle, wheeze = int(cycle.crackle), int(cycle.wheeze)
        row = {
            **recording,
            "cycle_index": index,
            "start": cycle.start,
            "end": cycle.end,
            "duration": cycle.end - cycle.start,
            "crackle": crackle,
            "wheeze": wheeze,
            "label4": label4(crackle, wheeze),
            "label_binary": int(crackle or wheeze),
        }
        reason = drop_reason(cycle.start, cycle.end, recording["recording_duration"], min_cycle_s)
        if reason is None:
            kept.append(row)
            continue
        log.info("%s cycle %d (%.3f-%.3f s) dropped: %s", name, index, cycle.start, cycle.end,
                 reason)
        dropped.append({k: row[k] for k in ("recording", "cycle_index", "start", "end")}
                       | {"reason": reason})
    return kept, dropped


def _counts_by_split_and_label(cycles: pd.DataFrame) -> dict[str, dict[str, int]]:
    counts = cycles.groupby(["official_split", "label4"]).size()
    return {
        side: {label: int(counts.get((side, label), 0)) for label in LABEL4} for side in SPLITS
    }


def build_cycle_table(folder: str | Path, *, min_cycle_s: float) -> tuple[pd.DataFrame, dict]:
    """Every annotated cycle of every recording whose audio is present, and a report.

    Recordings without audio are counted and skipped (copies may be partial). The
    ``official_split`` column is the patient-disjoint version of the official list;
    ``listed_split`` keeps the side as listed. Audio is not decoded: soundfile.info gives
    sample rate and length.
    """
    folder = Path(folder)
    database = folder / DATABASE_DIR
    if not database.is_dir():
        raise PipelineError(f"no {DATABASE_DIR} folder in the ICBHI dataset folder", folder)
    annotation_paths = _recording_annotations(database)
    if not annotation_paths:
        raise PipelineError("no annotation files (<recording>.txt)", database)
    annotations = {name: parse_annotations(path) for name, path in annotation_paths.items()}

    split_path = folder / SPLIT_FILE
    listed_split, name_fixes = _resolve_names(
        _read_listed_split(split_path), set(annotations), split_path
    )
    unlisted = sorted(set(annotations) - set(listed_split))
    if unlisted:
        raise PipelineError(
            f"{len(unlisted)} recording(s) missing from the split, e.g. {unlisted[0]}", split_path
        )
    split, moved = make_patient_disjoint(
        {name: listed_split[name] for name in annotations},
        {name: len(table) for name, table in annotations.items()},
    )

    rows, dropped, present = [], [], 0
    for name, table in annotations.items():
        audio = _find_audio(database, name)
        if audio is None:
            continue
        present += 1
        sides = {"official_split": split[name], "listed_split": listed_split[name]}
        kept, lost = _recording_rows(name, table, audio, folder, min_cycle_s, sides)
        rows += kept
        dropped += lost
    cycles = pd.DataFrame(rows, columns=CYCLE_COLUMNS)

    drop_counts = Counter(d["reason"] for d in dropped)
    for reason, count in sorted(drop_counts.items()):
        log.warning("%s: dropped %d cycle(s): %s", folder, count, reason)
    report = {
        "recordings_listed": len(annotations),
        "recordings_present": present,
        "patients_present": int(cycles["patient"].nunique()),
        "cycles_listed": sum(len(t) for t in annotations.values()),
        "cycles_with_audio": len(cycles) + len(dropped),
        "cycles_kept": len(cycles),
        "min_cycle_s": min_cycle_s,
        "cycles_dropped": {
            reason: drop_counts.get(reason, 0)
            for reason in ("past_audio_end", "shorter_than_min_cycle")
        },
        "dropped_cycles": dropped,
        "split_name_fixes": name_fixes,
        "patients_moved": moved,
        "cycles_by_split_and_label": _counts_by_split_and_label(cycles),
        "recordings_by_split": {
            side: int(cycles.loc[cycles.official_split == side, "recording"].nunique())
            for side in SPLITS
        },
    }
    return cycles, report


# ---------------------------------------------------------------- the dataset adapter
def cycle_id(recording: str, cycle_index: int) -> str:
    """A cycle's name, unique in the database: ``<recording>:<index in its annotation file>``."""
    return f"{recording}:{cycle_index}"


def read_cycle_records(raw_dir: str | Path) -> tuple[pd.DataFrame, dict]:
    """The cycle table as the records of the download stage, and the table's report.

    Adds ``cycle_id``, ``file`` (the audio path relative to ``raw_dir``, which the download
    stage keys checksums on) and ``diagnosis`` (null where the diagnosis list is absent).
    Keeps every cycle within its audio (``min_cycle_s`` is the features stage's param).
    """
    raw_dir = Path(raw_dir)
    cycles, report = build_cycle_table(raw_dir, min_cycle_s=0.0)
    diagnosis_path = raw_dir / DIAGNOSIS_FILE
    diagnosis = read_diagnosis(diagnosis_path) if diagnosis_path.is_file() else {}
    cycles.insert(0, "cycle_id", [cycle_id(r, i) for r, i in
                                  zip(cycles["recording"], cycles["cycle_index"], strict=True)])
    cycles["file"] = cycles["audio_path"]
    cycles["diagnosis"] = cycles["patient"].map(diagnosis).astype("string")
    log.info(
        "%s: audio for %d of %d listed recordings (%d patients); %d of %d annotated cycles "
        "have audio; dropped %d past the end of their audio",
        "icbhi", report["recordings_present"], report["recordings_listed"],
        report["patients_present"], report["cycles_with_audio"], report["cycles_listed"],
        report["cycles_dropped"]["past_audio_end"],
    )
    report = {k: v for k, v in report.items() if k not in ("min_cycle_s", "cycles_dropped")}
    report["cycles_dropped_past_audio_end"] = len(report["dropped_cycles"])
    report["diagnosis_file"] = diagnosis_path.is_file()
    return cycles, report


def _is_recording_file(path: Path) -> bool:
    if path.suffix not in (".txt", *AUDIO_EXTENSIONS) or not path.stem[:1].isdigit():
        return False
    try:
        parse_recording_name(path.stem)
    except PipelineError:
        return False
    return True


class ICBHI(Dataset):
    """The ICBHI 2017 Respiratory Sound Database; records are annotated respiratory cycles."""

    name = "icbhi"
    citation = LICENCE.split("Cite: ", 1)[1]
    licence = "freely available for research, with citation"
    landing_page = OFFICIAL_SITE
    # No checksums are published for these files: the official download is copied
    # unverified (the local copy is checked against its own SHA256SUMS).
    sources = (
        Source(url=OFFICIAL_URLS["database"], filename="ICBHI_final_database.zip"),
        Source(url=OFFICIAL_URLS["split"], filename=SPLIT_FILE),
        Source(url=OFFICIAL_URLS["diagnosis"], filename="ICBHI_Challenge_diagnosis.txt"),
    )

    def unpack(self, archive: Path, dest: Path) -> None:
        """Lay an official file out as the local copy is: recordings (annotations and audio)
        in ``ICBHI_final_database/``, other documents at the top, the diagnosis list as
        ``patient_diagnosis.csv``."""
        dest.mkdir(parents=True, exist_ok=True)
        if not zipfile.is_zipfile(archive):
            target = DIAGNOSIS_FILE if "diagnosis" in archive.name.lower() else archive.name
            shutil.copyfile(archive, dest / target)
            return
        (dest / DATABASE_DIR).mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            extract_zip(archive, Path(tmp))
            for path in sorted(Path(tmp).rglob("*")):
                if not path.is_file() or path.name.startswith(".") or "__MACOSX" in path.parts:
                    continue
                folder = dest / DATABASE_DIR if _is_recording_file(path) else dest
                shutil.copyfile(path, folder / path.name)

    def read_records(self, raw_dir: Path) -> pd.DataFrame:
        return read_cycle_records(raw_dir)[0]

    def read_records_and_report(self, raw_dir: Path) -> tuple[pd.DataFrame, dict]:
        return read_cycle_records(raw_dir)
