"""Configuration: YAML files validated into dataclasses.

A YAML file may start with ``base: other.yaml`` (or a list of files, resolved relative to the
including file); the including file's keys override the base's, recursively. Every tool accepts
``--set a.b=c`` overrides, whose values are parsed as YAML (``--set train.lr_step=[20,25]``).
Unknown keys are rejected with the nearest valid key suggested, and values are checked against
the field types. The resolved config is saved (``save_config``) beside every checkpoint and
every results folder, so a run can always be reproduced from its outputs.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from utrack.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def choice(default: str, *others: str) -> Any:
    """A string field restricted to ``(default, *others)``; checked by ``from_dict``."""
    return field(default=default, metadata={"choices": (default, *others)})


@dataclass
class ModelConfig:
    arch: str = choice("fairmot", "centertrack")
    backbone: str = choice("dla34", "resnet18", "resnet34", "mobilenet_v2")
    pretrained: str | None = None  # torchvision-format backbone weights (local file)
    head_conv: int = 256
    down_ratio: int = 4
    neck_channels: int = 64  # stride-4 feature channels of the ResNet/MobileNetV2 necks
    input_norm: str = choice("unit", "imagenet")  # unit: x/255 (FairMOT); imagenet: mean/std
    ltrb_amodal: bool = False  # CenterTrack: 4-channel ltrb_amodal box head instead of wh


@dataclass
class SyntheticConfig:
    """The built-in generated MOT data (see utrack.data.synthetic)."""

    root: str = "runs/synthetic_data"  # where sequences are generated (reused if present)
    num_train: int = 4
    num_val: int = 1
    frames: int = 150
    width: int = 480
    height: int = 288
    fps: int = 10
    max_people: int = 9
    seed: int = 0


@dataclass
class AugmentConfig:
    enabled: bool = True
    degrees: float = 5.0
    translate: float = 0.1
    scale: list[float] = field(default_factory=lambda: [0.5, 1.2])
    shear: float = 2.0
    hsv: float = 0.5  # relative jitter of saturation and value
    flip: float = 0.5
    pair_jitter: float = 0.05  # second frame of a pair: extra affine jitter relative to the first


@dataclass
class CenterTrackDataConfig:
    """CenterTrack's previous-frame sampling and heatmap perturbation (its official defaults)."""

    max_frame_dist: int = 3  # previous frame drawn from t-dist..t+dist, dist <= this
    hm_disturb: float = 0.05  # centre jitter, relative to the box size
    lost_disturb: float = 0.4  # probability to drop a box from the previous heatmap
    fp_disturb: float = 0.1  # probability to add a false blob near a box


@dataclass
class DataConfig:
    roots: list[str] = field(default_factory=list)  # dataset roots / sequence folders; [] = synthetic
    format: str = choice("mot", "crowdhuman", "coco")
    split: str = choice("all", "train_half", "val_half")  # by frame, per sequence
    input_size: list[int] = field(default_factory=lambda: [1088, 608])  # width, height
    min_visibility: float = 0.0
    num_workers: int = 2
    pair_window: int = 20  # frame pairs at distance 1..W (paper: 20; official code: 10)
    # pair modes: fraction of the frames used as first frames per epoch (1.0 as the official code;
    # 0.5 makes an epoch of pairs show as many images, in as many steps (train.batch_size counts
    # images), as an epoch of single frames); items of pair_frames = k frames use 2 / k of it,
    # so that an epoch shows the same number of images whatever k
    pair_epoch_fraction: float = 1.0
    # pair mode on video: frames per training item, all within pair_window of each other; every
    # two of them form a positive pair, k (k - 1) / 2 pairs from k images (2: the paper's pairs).
    # CenterTrack's pairs (a frame and its previous frame) always have 2.
    pair_frames: int = 2
    neg_ratio: float = 0.25  # Nneg / Npos for image (static) data
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    centertrack: CenterTrackDataConfig = field(default_factory=CenterTrackDataConfig)


@dataclass
class LossConfig:
    hm_weight: float = 1.0
    wh_weight: float = 0.1
    reg_weight: float = 1.0
    tracking_weight: float = 1.0  # CenterTrack's tracking-offset L1
    uncertainty: bool = True  # FairMOT's learnable task weighting
    s_det: float = -1.85
    s_id: float = -1.05


@dataclass
class MatchingConfig:
    """UTrack matching loss switches (paper Tables 2-4)."""

    placeholder: str = choice("mean", "zero", "none")
    temperature: Union[float, str] = "adaptive"  # "adaptive" (T = 2 log(C+1)) or a fixed factor
    margin: float = 0.5
    terms: list[str] = field(default_factory=lambda: ["intra", "inter", "cycle"])


@dataclass
class ReIDConfig:
    mode: str = choice("supervised", "none", "unsupervised", "cycas")
    dim: int = 128
    weight: float = 1.0
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    cycas_margin: float = 0.5
    # unsupervised pair training: also match frames of two items of different scenes (video
    # sequences) in a batch as negative pairs (Eq. 7), Nneg / Npos of them; 0 = the paper's
    # video training, positive pairs only (its negatives are static images, data.neg_ratio)
    batch_neg_ratio: float = 0.0


@dataclass
class OcclusionConfig:
    enabled: bool = False
    tau: float = 0.7  # pair overlap: area(bi & bj) / min(area bi, area bj) > tau
    weight: float = 0.5  # inside the detection loss
    offset_weight: float = 1.0
    # the loss's normaliser (Eq. 14: the number of occlusions) is at least this many per image:
    # 0 = the paper; 1 keeps batches with few or no occlusions from swamping detection
    norm_min_per_image: float = 1.0
    score_thresh: float = 0.1  # decoded occlusion centres kept above this
    top_k: int = 100
    tau_o: float = 0.7  # refinding: gaussian score threshold
    tau_w: int = 30  # refinding: only tracks lost for fewer than tau_w frames


@dataclass
class TrackerConfig:
    conf_thres: float = 0.4
    top_k: int = 500
    track_buffer: int = 30  # frames at 30 fps; scaled by fps / 30
    emb_thresh: float = 0.4
    iou_thresh: float = 0.5
    # FairMOT stage 2 also IoU-matches Lost tracks lost for at most this many frames
    # (0 = FairMOT: Tracked tracks only)
    lost_iou_frames: int = 0
    unconfirmed_thresh: float = 0.7
    iou_only_thresh: float = 0.8  # first stage when there are no embeddings (--reid none)
    motion_lambda: float = 0.98
    feat_momentum: float = 0.9
    min_box_area: float = 100.0
    max_aspect: float = 1.6  # outputs with w / h above this are dropped (pedestrians)
    refind_update_kalman: bool = True
    # CenterTrack
    new_thresh: float = 0.4
    pre_thresh: float = 0.5
    max_age: int = 30  # frames an unmatched track is kept (official CenterTrack: 0 = dropped at once)
    hungarian: bool = False
    reattach_thresh: float = 0.4  # CenterTrack with embeddings: cosine distance to re-attach a lost track


@dataclass
class TrainConfig:
    epochs: int = 30
    lr: float = 1e-4
    lr_step: list[int] = field(default_factory=lambda: [20])
    lr_gamma: float = 0.1
    batch_size: int = 12  # images per optimizer step over all ranks; a frame pair counts as two
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # 0 = off
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # float16 autocast + GradScaler; only takes effect on CUDA
    # bfloat16 autocast on CPU (no scaler needed: bf16 has float32's range): true, false or
    # auto (on where the CPU has AVX512-BF16 or AMX; oneDNN runs bf16 convolutions natively
    # there and emulates them, often slower than float32, elsewhere). Measure with
    # benchmarks/bench_train_step.py.
    cpu_bf16: bool | str = False
    channels_last: bool = False  # NHWC memory format (faster convolutions on recent CPUs/GPUs)
    out: str = "runs/train"
    log_every: int = 10
    init: str | None = None  # checkpoint to fine-tune from (shape-mismatched heads are skipped)
    eval_after: bool = True  # track + evaluate the validation sequences after training

    def __post_init__(self) -> None:
        if isinstance(self.cpu_bf16, str) and self.cpu_bf16 != "auto":
            raise ConfigError(f"train.cpu_bf16: expected true, false or auto, got {self.cpu_bf16!r}")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    reid: ReIDConfig = field(default_factory=ReIDConfig)
    occlusion: OcclusionConfig = field(default_factory=OcclusionConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# ----------------------------------------------------------------------------------------------
# YAML files, includes and overrides


def read_yaml_with_bases(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """Read a YAML config, resolving ``base:`` includes (relative to the including file)."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"{path}: circular 'base:' include ({' -> '.join(map(str, _seen))})")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping, got {type(data).__name__}")
    bases = data.pop("base", None) or []
    merged: dict = {}
    for base in [bases] if isinstance(bases, str) else bases:
        merged = merge_dicts(merged, read_yaml_with_bases(path.parent / base, _seen + (path,)))
    return merge_dicts(merged, data)


def merge_dicts(base: dict, override: dict) -> dict:
    """Recursive merge: mappings merge key by key, every other value in ``override`` wins."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_dicts(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> dict:
    """``"a.b=c"`` -> ``{"a": {"b": c}}`` with ``c`` parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.lr=2e-4")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML: {exc}") from exc
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def load_config(files: list[str | Path] | None = None, overrides: list[str] | None = None,
                extra: dict | None = None) -> Config:
    """Layer config files (each with its bases), then ``extra`` (tool flags), then ``--set``."""
    merged: dict = {}
    for path in files or []:
        merged = merge_dicts(merged, read_yaml_with_bases(path))
    if extra:
        merged = merge_dicts(merged, extra)
    for text in overrides or []:
        merged = merge_dicts(merged, parse_override(text))
    return from_dict(Config, merged)


# ----------------------------------------------------------------------------------------------
# Validation into dataclasses


def from_dict(cls: type, data: dict, where: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; reject unknown keys and wrong types by name."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = list(fields)
    kwargs = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in names:
            suggestion = _suggest_key(str(key), names, where)
            hint = f"; did you mean '{suggestion}'?" if suggestion else ""
            raise ConfigError(f"unknown config key '{dotted}'{hint} (valid: {', '.join(names)})")
        kwargs[key] = _coerce(hints[key], value, dotted)
        choices = fields[key].metadata.get("choices")
        if choices:
            check_choice(kwargs[key], choices, dotted)
    return cls(**kwargs)


def field_paths(cls: type, prefix: str = "") -> list[str]:
    """Dotted paths of every field of dataclass ``cls`` and of the dataclasses nested in it."""
    hints = typing.get_type_hints(cls)
    paths = []
    for f in dataclasses.fields(cls):
        path = prefix + f.name
        paths.append(path)
        if dataclasses.is_dataclass(hints[f.name]):
            paths += field_paths(hints[f.name], path + ".")
    return paths


def _suggest_key(key: str, names: list[str], where: str) -> str | None:
    """The nearest valid key at this level, else the path of a field of that exact name at
    another level (``augment.pair_jitter`` -> ``data.augment.pair_jitter``), else None."""
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
    if close:
        return f"{where}.{close[0]}" if where else close[0]
    elsewhere = [p for p in field_paths(Config) if p.rsplit(".", 1)[-1] == key]
    return elsewhere[0] if elsewhere else None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value if value is not None else {}, where)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} fits none of {tp}")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            value = [value]  # a single value where a list is expected
        return [_coerce(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is float:
        if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or
                                           (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{where}: unsupported config type {tp}")


# ----------------------------------------------------------------------------------------------
# Saving


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, path: str | Path) -> Path:
    """Write the resolved config as YAML (``path`` may be a folder: writes config.yaml in it)."""
    path = Path(path)
    if path.suffix not in (".yaml", ".yml"):
        path = path / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    return path


def check_choice(value: str, choices: tuple[str, ...] | list[str], where: str) -> str:
    """Reject ``value`` unless it is one of ``choices`` (nearest choice suggested)."""
    if value not in choices:
        close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.4)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{where}: '{value}' is not one of {', '.join(choices)}{hint}")
    return value


def check_ratio(value: float, where: str) -> float:
    """Reject a ratio (such as Nneg / Npos) unless it is a finite number >= 0; returns it as float."""
    if not (value >= 0 and math.isfinite(value)):
        raise ConfigError(f"{where} must be a finite number >= 0, got {value}")
    return float(value)
