"""The typed schema of ``params.yaml``: every section, its keys, their types, ranges and choices.

``pipeline.params.load_params`` validates the whole file against ``ParamsFile`` once, at load
time, so a stage never starts on a misspelled key or an out-of-range value. Unknown keys are
errors (``extra="forbid"``) that name the nearest valid key. Sections are optional (a project
may hold one study); the keys inside a section are required unless a default is given here,
and those defaults are the ones the code applies when the key is absent.

The choices below are the code's own (a test checks that they agree with the constants of
the modules that use them).
"""

from __future__ import annotations

import difflib
import math
import re
import typing
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator,
)

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Seed = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]

Backend = Literal["librosa", "torch"]
ScalerKind = Literal["minmax", "standard", "none"]
Aggregate = Literal["mean", "median", "max"]
AnomalyType = Literal["frequency_shift", "amplitude_change", "spikes", "flat_segment",
                      "noise_burst", "phase_jump"]
# torch device strings the training loop accepts; "auto" picks CUDA when present
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


class Section(BaseModel):
    # strict: YAML already types its values, so a quoted "5" or a 2.5 for an integer is a
    # mistake to report, not a value to convert
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# ---------------------------------------------------------------- shared sections
class Download(Section):
    local_copy: str | None


class FitSettings(Section):
    """What every fit takes: a model fitted in closed form (the classical baselines) takes no more."""

    device: str = "auto"
    scaler: ScalerKind = "none"
    # one member per seed, each trained alone; the study's model is their ensemble
    # (pipeline/models/ensemble.py), and evaluate reports each figure's spread over them
    seeds: Annotated[list[Seed], Field(min_length=1)]
    # calibration scores from this many inner models, each blind to one share of the
    # training side's groups (0: the validation scores of the model itself)
    cross_fit: Annotated[int, Field(ge=0)] = 0

    @field_validator("cross_fit")
    @classmethod
    def _two_folds_or_none(cls, value: int) -> int:
        if value == 1:
            raise ValueError("must be 0 (off) or at least 2 inner folds")
        return value

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("must be distinct: two members with one seed are one model twice")
        return value

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not _DEVICE.fullmatch(value):
            raise ValueError("must be auto, cpu, cuda, cuda:<index> or mps")
        return value


class Train(FitSettings):
    """Gradient training (the shared loop, pipeline/training.py)."""

    epochs: PositiveInt
    batch_size: PositiveInt
    lr: PositiveFloat
    patience: PositiveInt
    weight_decay: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    select: Literal["best", "last"] = "best"  # the best epoch by `monitor`, or the last one
    monitor: Literal["loss", "auroc"] = "loss"  # what `best` means: lowest validation loss, or highest AUROC
    schedule: Literal["constant", "cosine"] = "constant"  # learning rate over the epochs


class ImageTrain(Train):
    """MNIST training: a seeded, stratified subset of the images keeps CI runs short."""

    train_images: PositiveInt | None = None
    val_images: PositiveInt | None = None


class NoveltyTrain(ImageTrain):
    unseen_digit: Annotated[int, Field(ge=0, le=9)]  # held out of train and validation


class ThresholdCalibrate(Section):
    """Studies trained on normal data only: the threshold comes from normal validation errors."""

    method: Literal["percentile", "gamma", "mean_std"]
    percentile: Annotated[float, Field(gt=0, le=100)] = 95.0
    k: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 3.0
    aggregate: Aggregate = "mean"


class ClassifierCalibrate(Section):
    """Classifiers: the threshold on P(abnormal) from labelled validation data, or fixed."""

    method: Literal["youden", "icbhi", "fixed"]
    value: Annotated[float, Field(ge=0, le=1)] = 0.5
    aggregate: Aggregate = "mean"


class Evaluate(Section):
    bootstrap: Annotated[int, Field(ge=10)]  # fewer resamples give no interval worth reading
    seed: Seed


# ---------------------------------------------------------------- models (registry names)
class MLPAE(Section):
    name: Literal["mlp_ae"]
    hidden: PositiveInt = 128
    latent: PositiveInt = 32


class SpecAugment(Section):
    freq_masks: Annotated[int, Field(ge=0)] = 2
    freq_width: Annotated[int, Field(ge=0)] = 8
    time_masks: Annotated[int, Field(ge=0)] = 2
    time_width: Annotated[int, Field(ge=0)] = 16


Dropout = Annotated[float, Field(ge=0, lt=1)]


class SimpleCNN(Section):
    name: Literal["simple_cnn"]
    hidden: PositiveInt = 128
    dropout: Dropout = 0.0
    spec_augment: SpecAugment | None = None
    band_norm: bool = False  # each mel band minus its mean over the cycle (a device's response)
    time_shift: Annotated[int, Field(ge=0)] = 0  # training: a random circular shift of up to this many frames


class CNNGRU(Section):
    name: Literal["cnn_gru"]
    channels: Annotated[list[PositiveInt], Field(min_length=1)] = [16, 32]
    gru_hidden: PositiveInt = 64
    bidirectional: bool = True
    dropout: Dropout = 0.0
    spec_augment: SpecAugment | None = None
    band_norm: bool = False
    time_shift: Annotated[int, Field(ge=0)] = 0


class MnistConvAE(Section):
    name: Literal["mnist_conv_ae"]
    latent: PositiveInt = 2


class Conv1dAE(Section):
    name: Literal["conv1d_ae"]


class PCAAE(Section):
    name: Literal["pca_ae"]
    components: PositiveInt = 32  # principal axes kept


class KNNAE(Section):
    name: Literal["knn_ae"]
    k: PositiveInt = 1  # nearest training inputs averaged (1: the nearest-neighbour distance)


class GMMDensity(Section):
    name: Literal["gmm_density"]
    components: PositiveInt = 4  # diagonal-covariance Gaussians


class IsolationForest(Section):
    name: Literal["isolation_forest"]
    trees: PositiveInt = 100
    max_samples: Annotated[int, Field(ge=2)] = 256  # training inputs drawn for each tree


class BandStatsLinear(Section):
    name: Literal["band_stats_linear"]
    band_norm: bool = True


class BandStatsBoosting(Section):
    name: Literal["band_stats_boosting"]
    band_norm: bool = True
    iterations: PositiveInt = 100  # boosting rounds (no early stopping)
    learning_rate: PositiveFloat = 0.1
    max_leaf_nodes: Annotated[int, Field(ge=2)] = 31
    l2: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0  # leaf values' L2 penalty


SpectrogramModel = Annotated[SimpleCNN | CNNGRU | BandStatsLinear, Field(discriminator="name")]
MODEL_SCHEMAS = (MLPAE, SimpleCNN, CNNGRU, MnistConvAE, Conv1dAE, PCAAE, KNNAE, GMMDensity,
                 IsolationForest, BandStatsLinear, BandStatsBoosting)


class ClosedFormStudy(Section):
    model: Annotated[PCAAE | KNNAE | GMMDensity | IsolationForest, Field(discriminator="name")]
    train: FitSettings


class Baselines(Section):
    """HLS-CMDS's classical detectors (hls_pca, hls_knn, hls_gmm, hls_iforest): the
    autoencoder's features, folds and calibration (its top-level sections), another model."""

    pca: ClosedFormStudy | None = None
    knn: ClosedFormStudy | None = None
    gmm: ClosedFormStudy | None = None
    iforest: ClosedFormStudy | None = None


# ---------------------------------------------------------------- HLS-CMDS (top level)
class MFCCFeatures(Section):
    backend: Backend = "librosa"
    sample_rate: PositiveInt
    window_s: PositiveFloat
    hop_s: PositiveFloat
    n_mfcc: PositiveInt
    n_fft: PositiveInt
    hop_length: PositiveInt
    n_mels: PositiveInt
    pooling: Literal["mean_std", "flatten"] = "mean_std"
    # recording: each coefficient's mean over the recording is subtracted from its windows
    normalise: Literal["none", "recording"] = "none"

    @model_validator(mode="after")
    def _consistent(self) -> MFCCFeatures:
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc ({self.n_mfcc}) must not exceed n_mels ({self.n_mels})")
        if self.n_fft > self.window_s * self.sample_rate:
            raise ValueError(f"n_fft ({self.n_fft}) is longer than a window "
                             f"({self.window_s:g} s at {self.sample_rate} Hz)")
        return self


def _check_folds(scheme: str, folds: list[int], kfold: str = "kfold") -> None:
    """Folds are listed (DVC's matrix expands lists, not counts): 1..K, K >= 2 for
    cross-validation, and [1] for a holdout scheme (its one split is fold 1)."""
    k = len(folds)
    if folds != list(range(1, k + 1)):
        raise ValueError(f"folds must be 1, 2, ..., K in order, got {folds}")
    if scheme == kfold and k < 2:
        raise ValueError(f"the {kfold} scheme needs at least 2 folds, got {folds}")
    if scheme != kfold and k != 1:
        raise ValueError(f"the {scheme} scheme is one split: folds must be [1], got {folds}")


FoldList = Annotated[list[PositiveInt], Field(min_length=1)]


class HLSSplit(Section):
    subset: Literal["all", "heart", "lung"]
    scheme: Literal["kfold", "holdout"] = "kfold"
    folds: FoldList = [1, 2, 3, 4, 5]
    val_fraction: Fraction = 0.2  # kfold: validation share of the training side, whole groups
    # holdout: train/val/test shares (under kfold they mean nothing, so they may be left out)
    fractions: Annotated[list[Fraction], Field(min_length=3, max_length=3)] | None = None
    group_by: list[Literal["sha256", "family"]] = ["sha256", "family"]
    seed: Seed

    @model_validator(mode="after")
    def _folds_fit_scheme(self) -> HLSSplit:
        _check_folds(self.scheme, self.folds)
        if self.scheme == "holdout" and self.fractions is None:
            raise ValueError("fractions (train/val/test shares) are required by the holdout scheme")
        return self

    @field_validator("fractions")
    @classmethod
    def _sum_to_one(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and not math.isclose(sum(value), 1.0, abs_tol=1e-6):
            raise ValueError(f"train/val/test shares must sum to 1, they sum to {sum(value):g}")
        return value

    @field_validator("group_by")
    @classmethod
    def _keeps_identical_audio_together(cls, value: list[str]) -> list[str]:
        if "sha256" not in value:
            raise ValueError("must include sha256 (identical audio on both sides leaks)")
        return value


# ---------------------------------------------------------------- ICBHI
class CycleFeatures(Section):
    sample_rate: PositiveInt
    cycle_s: PositiveFloat
    pad_mode: Literal["repeat", "zeros"]
    min_cycle_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    n_mels: PositiveInt
    n_fft: PositiveInt
    hop_length: PositiveInt
    fmin: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    fmax: PositiveFloat | None = None
    backend: Backend = "librosa"

    @model_validator(mode="after")
    def _consistent(self) -> CycleFeatures:
        nyquist = self.sample_rate / 2
        top = nyquist if self.fmax is None else self.fmax
        if top > nyquist or self.fmin >= top:
            raise ValueError(f"need fmin < fmax <= {nyquist:g} Hz (Nyquist), got fmin "
                             f"{self.fmin:g}, fmax {top:g}")
        if self.min_cycle_s >= self.cycle_s:
            raise ValueError(f"min_cycle_s ({self.min_cycle_s:g}) must be below cycle_s "
                             f"({self.cycle_s:g})")
        return self


class ICBHISplit(Section):
    scheme: Literal["kfold", "official", "grouped"]
    folds: FoldList = [1, 2, 3, 4, 5]
    val_fraction: Fraction
    test_fraction: Fraction | None = None
    stratify: Literal["label4", "label_binary", "device"] = "label4"
    seed: Seed

    @model_validator(mode="after")
    def _grouped_needs_test(self) -> ICBHISplit:
        if self.scheme == "grouped" and self.test_fraction is None:
            raise ValueError("the grouped scheme needs test_fraction")
        _check_folds(self.scheme, self.folds)
        return self


NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
RampUp = Annotated[int, Field(ge=0)]


class SupervisedSettings(Section):
    weight: NonNegative = 1.0


class ReconstructionSettings(SupervisedSettings):
    ramp_up: RampUp = 0


class PiModelSettings(ReconstructionSettings):
    spec_augment: SpecAugment | None = None


class VATSettings(ReconstructionSettings):
    epsilon: PositiveFloat = 1.0
    xi: PositiveFloat = 1e-6


class PseudoLabelSettings(ReconstructionSettings):
    threshold: Annotated[float, Field(gt=0, le=1)] = 0.95


class SemiSettings(Section):
    """Per semi-supervised method (pipeline/semi.py): its unlabelled term's settings."""

    supervised: SupervisedSettings | None = None
    reconstruction: ReconstructionSettings | None = None
    pi_model: PiModelSettings | None = None
    vat: VATSettings | None = None
    pseudo_label: PseudoLabelSettings | None = None


SemiMethod = Literal["supervised", "reconstruction", "pi_model", "vat", "pseudo_label"]


class ICBHISemi(Section):
    # written as they name the grid's cells (icbhi_semi/<method>/<fraction>): 1 stays 1
    label_fraction: Annotated[list[Annotated[int | float, Field(gt=0, le=1)]], Field(min_length=1)]
    method: Annotated[list[SemiMethod], Field(min_length=1)]
    seed: Seed
    model: SpectrogramModel
    train: Train
    settings: SemiSettings

    @model_validator(mode="after")
    def _settings_for_every_method(self) -> ICBHISemi:
        missing = [m for m in self.method if m not in self.settings.model_fields_set]
        if missing:
            raise ValueError(f"settings has no entry for method(s) {', '.join(missing)} "
                             "(an empty one takes the defaults)")
        return self


# binary: normal vs crackle and/or wheeze; multiclass: normal, crackle, wheeze, both
ICBHITask = Literal["binary", "multiclass"]


class ICBHITrain(Train):
    task: ICBHITask = "binary"
    mixup: NonNegative = 0.0  # Beta(a, a) of mixup in training; 0: off


class ICBHIFit(FitSettings):
    task: ICBHITask = "binary"


class ICBHIModel(Section):
    model: SpectrogramModel
    train: ICBHITrain


class ICBHIClosedForm(Section):
    model: BandStatsBoosting
    train: ICBHIFit


class ICBHI(Section):
    features: CycleFeatures | None = None
    split: ICBHISplit | None = None
    cnn: ICBHIModel | None = None
    crnn: ICBHIModel | None = None
    logreg: ICBHIModel | None = None  # icbhi_logreg and icbhi_hgb, the classical baselines
    hgb: ICBHIClosedForm | None = None
    semi: ICBHISemi | None = None
    calibrate: ClassifierCalibrate | None = None
    evaluate: Evaluate | None = None


# ---------------------------------------------------------------- MNIST
class MnistSplit(Section):
    n_val: Annotated[int, Field(gt=0, lt=60_000)]
    seed: Seed


class MnistEvaluate(Section):
    knn_k: PositiveInt
    knn_fit_codes: PositiveInt | None = None
    grid: PositiveInt
    seed: Seed


class MnistNovelty(Section):
    model: MnistConvAE
    train: NoveltyTrain
    calibrate: ThresholdCalibrate | None = None
    evaluate: Evaluate | None = None


class NoSettings(Section):
    """A stage with nothing to set (MNIST features: IDX to NPZ as it is)."""


class Mnist(Section):
    features: NoSettings | None = None
    split: MnistSplit | None = None
    model: MnistConvAE | None = None
    train: ImageTrain | None = None
    evaluate: MnistEvaluate | None = None
    novelty: MnistNovelty | None = None


# ---------------------------------------------------------------- sines
Range = Annotated[list[PositiveFloat], Field(min_length=2, max_length=2)]


class SinesGenerate(Section):
    n_train: PositiveInt
    n_val: PositiveInt
    n_test: PositiveInt
    anomaly_fraction: Annotated[float, Field(ge=0, le=1)]
    anomaly_types: Annotated[list[AnomalyType], Field(min_length=1)]
    amplitude_range: Range
    frequency_range: Range
    noise_std: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    length: Annotated[int, Field(ge=20)]
    seed: Seed

    @field_validator("amplitude_range", "frequency_range")
    @classmethod
    def _ordered(cls, value: list[float]) -> list[float]:
        if value[0] > value[1]:
            raise ValueError(f"low must not exceed high, got {value}")
        return value


class Sines(Section):
    generate: SinesGenerate | None = None
    model: Conv1dAE | None = None
    train: Train | None = None
    calibrate: ThresholdCalibrate | None = None
    evaluate: Evaluate | None = None


# ---------------------------------------------------------------- pipeline compare
class Compare(Section):
    baseline: Annotated[str, Field(min_length=1)]
    bootstrap: Annotated[int, Field(ge=10)]
    seed: Seed
    level: Annotated[float, Field(gt=0, lt=1)] = 0.95


# ---------------------------------------------------------------- the index (dvc.yaml loops over it)
DottedKey = Annotated[str, Field(pattern=r"^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*$")]


class DownloadedDataset(Section):
    features: DottedKey  # the features stage's section
    split: DottedKey  # the split stage's section
    split_reads: Annotated[str, Field(min_length=1)]  # what the split is made from, under data/


class GeneratedDataset(Section):
    generate: DottedKey  # the generate stage's section


class Datasets(Section):
    downloaded: dict[str, DownloadedDataset] = {}
    generated: dict[str, GeneratedDataset] = {}


class StudyEntry(Section):
    dataset: str
    objective: Literal["reconstruction", "anomaly_score", "classification"]
    model: DottedKey
    train: DottedKey
    evaluate: DottedKey


class ThresholdedStudyEntry(StudyEntry):
    calibrate: DottedKey


class GridStudyEntry(ThresholdedStudyEntry):
    settings: DottedKey  # per method: its unlabelled term's settings


class Studies(Section):
    cross_validated: dict[str, ThresholdedStudyEntry] = {}
    holdout: dict[str, ThresholdedStudyEntry] = {}
    unthresholded: dict[str, StudyEntry] = {}
    semi_supervised: dict[str, GridStudyEntry] = {}


MISSING = object()  # what ``find`` returns for a key the tree does not hold


def find(tree: dict, dotted: str) -> Any:
    """``find(p, "icbhi.train")`` -> ``p["icbhi"]["train"]``, or ``MISSING``."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def _absent(section: Any) -> bool:
    """A key the index names that holds no section: missing, or left empty (null)."""
    return section is MISSING or section is None


# what each section a study names holds (the data settings are its dataset package's to check)
_STUDY_SECTIONS: dict[str, Any] = {
    "model": Annotated[typing.Union[MODEL_SCHEMAS], Field(discriminator="name")],  # noqa: UP007 (over a tuple)
    "train": Train | FitSettings,  # FitSettings: a closed-form fit's
    "calibrate": ThresholdCalibrate | ClassifierCalibrate,
    "evaluate": Evaluate | MnistEvaluate,  # MnistEvaluate: an unthresholded study's
}


def _schema_for(role: str, section: Any) -> Any:
    """The schema a study's section is checked against: a train section that sets any of
    the loop's keys (epochs, lr, ...) is a Train, else a closed-form fit's FitSettings, so
    that its errors name its own keys rather than both kinds'."""
    if role != "train":
        return _STUDY_SECTIONS[role]
    loop_keys = Train.model_fields.keys() - FitSettings.model_fields.keys()
    return Train if isinstance(section, dict) and not loop_keys.isdisjoint(section) else FitSettings


def _holds(role: str, key: str) -> bool:
    """Whether the schema's own section at dotted ``key`` is of a kind ``role`` accepts."""
    models: list[type[BaseModel]] = [ParamsFile]
    for part in key.split("."):
        models = [m for parent in models if part in parent.model_fields
                  for m in _section_models(parent.model_fields[part].annotation)]
    accepted = tuple(_section_models(_STUDY_SECTIONS[role]))
    return bool(models) and all(issubclass(m, accepted) for m in models)


# ---------------------------------------------------------------- the whole file
class ParamsFile(Section):
    # a section beyond the fields below belongs to a dataset added to the index; the
    # index check below validates the study sections it holds
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    datasets: Datasets | None = None
    studies: Studies | None = None
    download: Download | None = None
    features: MFCCFeatures | None = None
    split: HLSSplit | None = None
    model: MLPAE | None = None
    train: Train | None = None
    calibrate: ThresholdCalibrate | None = None
    evaluate: Evaluate | None = None
    baselines: Baselines | None = None
    icbhi: ICBHI | None = None
    mnist: Mnist | None = None
    sines: Sines | None = None
    compare: Compare | None = None

    @model_validator(mode="after")
    def _index_resolves(self) -> ParamsFile:
        """Every dataset a study names is in the index, every section the index names exists,
        and a section outside the fields above is one the index points into."""
        raw = self.model_dump(exclude_none=True)
        raw.update(self.model_extra or {})
        datasets = self.datasets or Datasets()
        known = {**datasets.downloaded, **datasets.generated}
        problems, pointed = [], set()
        for group, entries in dict(datasets).items():
            for name, entry in entries.items():
                for role, key in entry.model_dump().items():
                    if role != "split_reads":
                        pointed.add(key.split(".")[0])
                        if _absent(find(raw, key)):
                            problems.append(f"datasets.{group}.{name}.{role}: {key} is not in the file")
        for group, entries in dict(self.studies or Studies()).items():
            for name, entry in entries.items():
                if entry.dataset not in known:
                    problems.append(f"studies.{group}.{name}.dataset: {entry.dataset!r} is not in the "
                                    f"datasets index ({', '.join(sorted(known)) or 'empty'})")
                for role, key in entry.model_dump().items():
                    if role not in _STUDY_SECTIONS:
                        continue
                    pointed.add(key.split(".")[0])
                    section = find(raw, key)
                    if _absent(section):
                        problems.append(f"studies.{group}.{name}.{role}: {key} is not in the file")
                    elif key.split(".")[0] in (self.model_extra or {}):
                        try:
                            TypeAdapter(_schema_for(role, section)).validate_python(section, strict=True)
                        except ValidationError as exc:
                            problems += [f"{key}.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                         for e in exc.errors()]
                    elif not _holds(role, key):  # validated as its own kind: is it this role's?
                        problems.append(f"studies.{group}.{name}.{role}: {key} holds no {role} "
                                        "settings (it is another kind of section)")
        for section in self.model_extra or {}:
            if section not in pointed:
                near = difflib.get_close_matches(section, [*type(self).model_fields, *pointed], n=1,
                                                 cutoff=0.5)
                hint = (f"did you mean {near[0]}?" if near
                        else "no entry of the datasets or studies index names it")
                problems.append(f"{section}: unknown key ({hint})")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# ---------------------------------------------------------------- readable errors
def _section_models(annotation: Any) -> list[type[BaseModel]]:
    """The Section classes an annotation can hold (several for a discriminated union)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _section_models(arg)]


def _tag(model: type[BaseModel]) -> str | None:
    """A model schema's registry name (its ``name`` Literal), None for other sections."""
    field = model.model_fields.get("name")
    choices = typing.get_args(field.annotation) if field is not None else ()
    return choices[0] if len(choices) == 1 else None


def _walk(loc: tuple) -> tuple[str, list[str]]:
    """(dotted key, valid keys of the innermost section) for a pydantic error location.

    Discriminated-union tags (``model.simple_cnn.hidden``) and the member names of plain
    unions (``int``, ``float``) are dropped from the key.
    """
    parts: list[str] = []
    models: list[type[BaseModel]] = [ParamsFile]
    keyed = False  # the last field maps names to sections (the index): this part is a name
    for part in loc:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]"
            continue
        if keyed:
            parts.append(part)
            keyed = False
            continue
        tagged = [m for m in models if _tag(m) == part]
        if len(models) > 1 and tagged:
            models = tagged
            continue
        if not models:  # below a plain value: a union member's name ("int", "float")
            continue
        parts.append(part)
        fields = models[0].model_fields if len(models) == 1 else {}
        annotation = fields[part].annotation if part in fields else None
        models = _section_models(annotation) if annotation is not None else []
        keyed = dict in (typing.get_origin(annotation), *map(typing.get_origin, typing.get_args(annotation)))
    valid = sorted(models[0].model_fields) if len(models) == 1 else []
    return ".".join(parts), valid


def describe(error: dict) -> str:
    """One pydantic error as ``<dotted key>: <cause>``, unknown keys with the nearest valid one."""
    if error["type"] == "extra_forbidden":
        key, _ = _walk(error["loc"])
        parent, _, name = key.rpartition(".")
        _, valid = _walk(error["loc"][:-1])
        near = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
        if near:
            hint = f"did you mean {parent + '.' if parent else ''}{near[0]}?"
        else:
            hint = f"valid keys: {', '.join(valid)}" if valid else "this section takes no keys"
        return f"{key}: unknown key ({hint})"
    key, _ = _walk(error["loc"])
    if error["type"] == "union_tag_invalid":  # an unknown model name
        key = f"{key}.name"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{key}: required key missing"
    shown = error.get("input")
    shown = "" if isinstance(shown, dict) else f" (got {shown!r})"
    return f"{key}: {message}{shown}" if key else f"{message}{shown}"


def validate(raw: Any) -> ParamsFile:
    """``raw`` (parsed YAML) as a ParamsFile; ValueError listing every problem otherwise."""
    try:
        return ParamsFile.model_validate(raw)
    except ValidationError as exc:
        problems: dict[str, str] = {}  # one per key: a union's members each report the value
        for error in exc.errors():
            problems.setdefault(_walk(error["loc"])[0], describe(error))
        raise ValueError("; ".join(problems.values())) from None
