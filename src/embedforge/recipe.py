"""The recipe: one YAML file naming one choice per pipeline stage, validated before anything runs.

Each section maps one to one onto a constructor's keyword arguments (the
``loss:`` section is the loss's arguments plus its ``name``), in typed, frozen
pydantic models that reject an unknown key by name, so a typo fails at once
instead of being silently ignored. ``--set train.epochs=3`` style overrides
are applied to the raw mapping first and validated the same way.
"""

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embedforge.errors import UserError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSection(_Section):
    source: Literal["digits", "dsprites"] = "digits"
    size: int | None = Field(None, gt=0, description="number of generated items (dsprites)")
    test_fraction: float = Field(0.3, gt=0, lt=1)
    seed: int = 0


class EncoderSection(_Section):
    name: Literal["small_cnn"] = "small_cnn"
    feature_dim: int = Field(84, gt=0)


class EmbedderSection(_Section):
    dim: int = Field(64, gt=0)
    normalize: bool = True


class TripletLossSection(_Section):
    name: Literal["triplet_margin"]
    margin: float = 0.05
    distance: Literal["euclidean", "squared_euclidean", "cosine"] = "euclidean"
    mining: Literal["all", "hard", "semihard", "easy"] = "all"
    smooth: bool = False


class ContrastiveLossSection(_Section):
    name: Literal["contrastive"]
    pos_margin: float = 0.0
    neg_margin: float = 1.0
    distance: Literal["euclidean", "squared_euclidean", "cosine"] = "euclidean"


class NTXentLossSection(_Section):
    name: Literal["ntxent"]
    temperature: float = Field(0.07, gt=0)
    neg_pairs: int | None = Field(None, gt=0)


class SupConLossSection(_Section):
    name: Literal["supcon"]
    temperature: float = Field(0.1, gt=0)


class ArcFaceLossSection(_Section):
    name: Literal["arcface"]
    margin: float = 28.6
    scale: float = 64.0


LossSection = Annotated[
    TripletLossSection
    | ContrastiveLossSection
    | NTXentLossSection
    | SupConLossSection
    | ArcFaceLossSection,
    Field(discriminator="name"),
]


class SamplerSection(_Section):
    """P classes × K samples per batch (metric learning); absent: plain shuffled batches."""

    p: int = Field(gt=1)
    k: int = Field(gt=1)


class ViewsSection(_Section):
    """Image views (see :class:`embedforge.views.image_views.ImageViews`); 0 turns a step off."""

    degrees: float = 0.0
    translate: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    hflip: float = 0.0


class OptimizerSection(_Section):
    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0)


class ScheduleSection(_Section):
    name: Literal["constant", "one_cycle", "cosine"] = "constant"
    warmup_epochs: float = Field(0.0, ge=0, description="linear warm-up (cosine)")


class TrainSection(_Section):
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(128, gt=1, description="used when there is no sampler")
    seed: int = 0
    self_supervised: bool = Field(
        False, description="two views of each item, labels unused (SimCLR)"
    )
    accumulation_steps: int = Field(1, gt=0)
    clip_grad_norm: float | None = Field(None, gt=0)
    amp: bool = Field(True, description="mixed precision, on a GPU only")
    patience: int | None = Field(None, gt=0, description="early stopping, in epochs")
    best_metric: Literal["precision_at_1", "r_precision", "mean_average_precision_at_r"] = (
        "mean_average_precision_at_r"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"


class Recipe(_Section):
    data: DataSection = DataSection()
    encoder: EncoderSection = EncoderSection()
    embedder: EmbedderSection = EmbedderSection()
    loss: LossSection = TripletLossSection(name="triplet_margin")
    sampler: SamplerSection | None = None
    views: ViewsSection | None = None
    optimizer: OptimizerSection = OptimizerSection()
    schedule: ScheduleSection = ScheduleSection()
    train: TrainSection = TrainSection()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.key=value`` to the raw mapping; the value is parsed as YAML."""
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise UserError(f"--set expects key=value (e.g. train.epochs=3), got {assignment!r}")
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"--set {key}: {part!r} is a value, not a section")
        node = child
    node[leaf] = yaml.safe_load(text)


def _describe(error: ValidationError, origin: str) -> str:
    problems = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        if loc[:1] == ["loss"] and len(loc) > 2:  # drop the union's tag: loss.<name>.key
            loc = ["loss", *loc[2:]]
        key = ".".join(loc)
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key {key!r}")
        else:
            problems.append(f"key {key!r}: {item['msg']} (got {item.get('input')!r})")
    return f"{origin}: " + "; ".join(problems)


def parse_recipe(raw: dict[str, Any], *, origin: str = "recipe") -> Recipe:
    """Validate a raw mapping; every problem is named by its dotted key."""
    try:
        return Recipe.model_validate(raw)
    except ValidationError as error:
        raise UserError(_describe(error, origin)) from None


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a recipe YAML file, apply ``key=value`` overrides, validate."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise UserError(f"{path}: recipe file not found") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a recipe is a mapping of sections, got {type(raw).__name__}")
    for assignment in overrides:
        apply_override(raw, assignment)
    return parse_recipe(raw, origin=str(path))
