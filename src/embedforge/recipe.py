"""The recipe: one YAML file naming one choice per pipeline stage, validated before anything runs.

Each section maps one to one onto a constructor's keyword arguments (the
``loss:`` section is the loss's arguments plus its ``name``), in typed, frozen
pydantic models that reject an unknown key by name, so a typo fails at once
instead of being silently ignored. ``--set train.epochs=3`` style overrides
are applied to the raw mapping first and validated the same way.
"""

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from embedforge.devices import DeviceChoice
from embedforge.errors import UserError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSection(_Section):
    """Images: scikit-learn's digits, generated dSprites, or a folder + ``image,label`` CSV.

    Digits and dSprites are split stratified by class. An image folder (the
    re-identification layout: one label per individual) is split by image, seeded;
    held-out images of an individual with no training image count as new
    individuals and are left out of the retrieval metrics. The folder's images
    are resized to ``image_size``.

    ``storage`` (image_folder only): ``memory`` decodes every image once, up front;
    ``disk`` reads each batch's images from disk when it is needed (in parallel,
    the next batch while the model computes this one), for folders whose decoded
    images do not fit in memory (50,000 RGB images at 224 take 30 GB in float32);
    ``auto`` keeps them in memory when they take at most 2 GiB (n × channels ×
    image_size² × 4 bytes), else reads from disk. Digits and dSprites are
    generated in memory.
    """

    source: Literal["digits", "dsprites", "image_folder"] = "digits"
    size: int | None = Field(None, gt=0, description="number of generated items (dsprites)")
    root: str | None = Field(None, description="image folder (image_folder)")
    csv: str | None = Field(None, description="CSV with image,label columns (image_folder)")
    image_size: int = Field(64, gt=0, description="images are resized to this (image_folder)")
    channels: Literal[1, 3] = 3
    storage: Literal["auto", "memory", "disk"] = Field(
        "auto", description="decoded images kept in memory or read per batch (image_folder)"
    )
    allow_outside_root: bool = Field(
        False, description="read CSV-listed images whose resolved path leaves root (image_folder)"
    )
    test_fraction: float = Field(0.3, gt=0, lt=1)
    seed: int = 0

    @model_validator(mode="after")
    def _folder_needs_paths(self) -> "DataSection":
        has_paths = self.root is not None and self.csv is not None
        if self.source == "image_folder" and not has_paths:
            raise ValueError("data.source 'image_folder' needs data.root and data.csv")
        if self.source != "image_folder" and (self.root or self.csv):
            raise ValueError("data.root and data.csv are for data.source 'image_folder'")
        return self

    @field_validator("storage")
    @classmethod
    def _disk_is_for_folders(cls, storage: str, info: ValidationInfo) -> str:
        source = info.data.get("source")
        if storage == "disk" and source != "image_folder":
            raise ValueError(
                f"'disk' is for data.source 'image_folder' ({source!r} is generated in memory)"
            )
        return storage


class PaletteDataSection(_Section):
    """Palettes (sets of weighted rows): a table, or the bundled synthetic palettes.

    The keyword arguments of :func:`embedforge.data.read_palettes`, plus where the
    table comes from and how many objects are held out for the validation metric.
    """

    source: Literal["palettes"]
    path: str | None = Field(None, description="CSV/Parquet file; None: synthetic palettes")
    size: int = Field(24_000, gt=0, description="number of synthetic objects (path is None)")
    colour_space: Literal["rgb", "lab"] = "rgb"
    id_column: str | None = None
    weight_column: str | None = None
    feature_columns: list[str] | None = None
    max_rows: int = Field(64, gt=0, description="a larger set keeps its heaviest rows")
    validation_objects: int = Field(
        1000, ge=2, description="held out for the metric; at most a fifth of the objects"
    )
    seed: int = Field(0, description="synthetic data and the held-out subset")


def _source(raw: Any) -> str:
    value = raw.get("source", "digits") if isinstance(raw, dict) else getattr(raw, "source", "")
    return "palettes" if value == "palettes" else "images"


AnyDataSection = Annotated[
    Annotated[DataSection, Tag("images")] | Annotated[PaletteDataSection, Tag("palettes")],
    Discriminator(_source),
]


class EncoderSection(_Section):
    """The small CNN trunk for images (its embedding comes from the ``embedder`` section)."""

    name: Literal["small_cnn"] = "small_cnn"
    feature_dim: int = Field(84, gt=0)


class TimmSection(_Section):
    """A timm backbone (``pip install embedforge[timm]``); weights only from a local file."""

    name: Literal["timm"]
    model_name: str = Field(description="any timm.create_model name, e.g. resnet50")
    weights: str | None = Field(None, description=".safetensors or PyTorch file; no download")


class DeepSetsSection(_Section):
    """:class:`~embedforge.encoders.deep_sets.DeepSets`; ``dim`` is the embedding size."""

    name: Literal["deep_sets"]
    dim: int = Field(64, gt=0)
    hidden: int = Field(128, gt=0)


class SetTransformerSection(_Section):
    """:class:`~embedforge.encoders.set_transformer.SetTransformer`."""

    name: Literal["set_transformer"]
    dim: int = Field(64, gt=0)
    hidden: int = Field(64, gt=0)
    heads: int = Field(4, gt=0)
    blocks: int = Field(2, ge=0)


class RasterCNNSection(_Section):
    """:class:`~embedforge.encoders.raster_cnn.RasterCNN`, the painted-image baseline."""

    name: Literal["raster_cnn"]
    dim: int = Field(64, gt=0)
    image_size: int = Field(32, gt=1)
    channels: int = Field(32, gt=0)


SetEncoderSection = DeepSetsSection | SetTransformerSection | RasterCNNSection
SET_ENCODERS = ("deep_sets", "set_transformer", "raster_cnn")


def _encoder_name(raw: Any) -> str:
    if isinstance(raw, dict):
        return raw.get("name", "small_cnn")
    return getattr(raw, "name", "")


AnyEncoderSection = Annotated[
    Annotated[EncoderSection, Tag("small_cnn")]
    | Annotated[TimmSection, Tag("timm")]
    | Annotated[DeepSetsSection, Tag("deep_sets")]
    | Annotated[SetTransformerSection, Tag("set_transformer")]
    | Annotated[RasterCNNSection, Tag("raster_cnn")],
    Discriminator(_encoder_name),
]


class EmbedderSection(_Section):
    """The head from the trunk's features to the embedding."""

    dim: int = Field(64, gt=0)
    normalize: bool = True
    linear: bool = Field(
        True,
        description="false: no linear map, the trunk's features are the embedding "
        "(dim must equal their size)",
    )


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
    decoupled: bool = Field(False, description="the positive left out of the denominator")


class CosineTripletLossSection(_Section):
    """Anchor/positive/negative cosine loss (palettes: the negative is another object's view)."""

    name: Literal["cosine_triplet"]


class SupConLossSection(_Section):
    name: Literal["supcon"]
    temperature: float = Field(0.1, gt=0)


class ArcFaceLossSection(_Section):
    name: Literal["arcface"]
    margin: float = 28.6
    scale: float = 64.0


class SoftmaxLossSection(_Section):
    """A linear classifier on the embeddings + cross-entropy (the supervised baseline)."""

    name: Literal["softmax"]
    bias: bool = True


class VAELossSection(_Section):
    """The negative ELBO of a VAE whose encoder is the model (the generative baseline)."""

    name: Literal["vae"]
    latent_dim: int | None = Field(
        10, gt=0, description="null: the embedding is the posterior mean (the tutorial's VAE)"
    )
    beta: float = Field(1.0, ge=0, description="weight of the KL term (beta-VAE)")


LossSection = Annotated[
    TripletLossSection
    | ContrastiveLossSection
    | NTXentLossSection
    | CosineTripletLossSection
    | SupConLossSection
    | ArcFaceLossSection
    | SoftmaxLossSection
    | VAELossSection,
    Field(discriminator="name"),
]


class ProjectionSection(_Section):
    """SimCLR's projection head: the loss sees head(embedding), ``model(x)`` stays the embedding.

    See :class:`~embedforge.encoders.projection_head.ProjectionHead`; ``dim`` is its output.
    """

    hidden_dim: int = Field(gt=0)
    dim: int = Field(gt=0)


class SamplerSection(_Section):
    """P classes × K samples per batch (metric learning); absent: plain shuffled batches."""

    p: int = Field(gt=1)
    k: int = Field(gt=1)


class ViewsSection(_Section):
    """Image views (see :class:`embedforge.views.image_views.ImageViews`); 0 turns a step off.

    ``pair`` (self-supervised training): ``"both"`` contrasts two random views of each image
    (the SimCLR paper); ``"one"`` contrasts the image itself with one random view (the dSprites
    tutorial's setting). ``interpolation``: ``"nearest"`` keeps binary images binary, as
    torchvision's ``RandomAffine`` (the tutorial's views) does.
    """

    degrees: float = 0.0
    translate: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    hflip: float = 0.0
    interpolation: Literal["bilinear", "nearest"] = "bilinear"
    pair: Literal["both", "one"] = "both"


class SetViewsSection(_Section):
    """Set views (see :class:`embedforge.views.set_views.SetViews`); 0 turns a step off."""

    permute: bool = True
    weight_concentration: float = Field(50.0, ge=0)
    feature_sigma: float = Field(0.02, ge=0)
    drop_below: float = Field(0.05, ge=0)
    drop_probability: float = Field(0.3, ge=0, le=1)


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
    validate_every: int = Field(
        1, gt=0, description="validate every N epochs (and always after the last)"
    )
    checkpoint_interval_s: float = Field(
        30.0,
        ge=0,
        description="seconds between 'last' checkpoints (0: every epoch; the final epoch and an "
        "early stop are always saved)",
    )
    best_metric: Literal[
        "precision_at_1", "r_precision", "mean_average_precision_at_r", "view_precision_at_1"
    ] = Field(
        "mean_average_precision_at_r",
        description="palettes: view_precision_at_1 (the default there)",
    )
    device: DeviceChoice = "auto"


_IMAGE_ONLY = ("embedder", "sampler", "views")
_IMAGE_DEFAULTS: dict[str, Any] = {
    "embedder": EmbedderSection(),
    "sampler": None,
    "views": None,
}
_IMAGE_METRICS = ("precision_at_1", "r_precision", "mean_average_precision_at_r")


class Recipe(_Section):
    """One choice per stage. Defaults follow ``data.source``.

    Images: ``small_cnn`` + ``embedder``, ``triplet_margin``, image ``views``, and no
    ``projection`` head (the loss then sees the embedding itself).
    Palettes (``data.source: palettes``): a set encoder (default ``set_transformer``) whose
    output is the embedding, ``ntxent`` (or ``cosine_triplet``), ``set_views`` (default: the
    :class:`~embedforge.views.set_views.SetViews` defaults), ``best_metric:
    view_precision_at_1``, and a ``projection`` head when one is given (with ``ntxent``);
    the image-only sections (embedder, sampler, views) are refused.
    """

    data: AnyDataSection = DataSection()
    encoder: AnyEncoderSection = EncoderSection()
    embedder: EmbedderSection = EmbedderSection()
    loss: LossSection = TripletLossSection(name="triplet_margin")
    projection: ProjectionSection | None = None
    sampler: SamplerSection | None = None
    views: ViewsSection | None = None
    set_views: SetViewsSection | None = None
    optimizer: OptimizerSection = OptimizerSection()
    schedule: ScheduleSection = ScheduleSection()
    train: TrainSection = TrainSection()

    @model_validator(mode="before")
    @classmethod
    def _palette_defaults(cls, raw: Any) -> Any:
        """Fill the palette defaults into the raw mapping, so recipe.yaml shows them."""
        if not isinstance(raw, dict) or _source(raw.get("data", {})) != "palettes":
            return raw
        raw = dict(raw)
        for key, default in (
            ("encoder", {"name": "set_transformer"}),
            ("loss", {"name": "ntxent"}),
            ("set_views", {}),
            ("train", {}),
        ):
            section = raw.get(key)
            if section is None:
                raw[key] = dict(default)
            elif isinstance(section, dict):
                raw[key] = {**default, **section}
        if isinstance(raw["train"], dict):
            raw["train"] = {"best_metric": "view_precision_at_1", **raw["train"]}
        return raw

    @model_validator(mode="after")
    def _sections_fit_the_source(self) -> "Recipe":
        palettes = isinstance(self.data, PaletteDataSection)
        problems = []
        if palettes:
            given = [key for key in _IMAGE_ONLY if getattr(self, key) != _IMAGE_DEFAULTS[key]]
            problems += [
                f"section {key!r} is for images, not data.source 'palettes'" for key in given
            ]
            if self.encoder.name not in SET_ENCODERS:
                problems.append(f"encoder.name must be one of {SET_ENCODERS} for palettes")
            if self.loss.name not in ("ntxent", "cosine_triplet"):
                problems.append("loss.name must be 'ntxent' or 'cosine_triplet' for palettes")
            elif self.loss.name == "cosine_triplet" and self.projection is not None:
                problems.append("section 'projection' needs loss 'ntxent' for palettes")
            if self.train.best_metric != "view_precision_at_1":
                problems.append("train.best_metric must be 'view_precision_at_1' for palettes")
            if self.train.self_supervised:
                problems.append("train.self_supervised is for images (palettes always are)")
        else:
            if self.set_views is not None:
                problems.append("section 'set_views' is for data.source 'palettes'")
            if self.encoder.name in SET_ENCODERS:
                problems.append(f"encoder {self.encoder.name!r} is for data.source 'palettes'")
            if self.loss.name == "cosine_triplet":
                problems.append("loss 'cosine_triplet' is for data.source 'palettes'")
            if self.train.best_metric not in _IMAGE_METRICS:
                problems.append(f"train.best_metric must be one of {_IMAGE_METRICS} for images")
            if self.train.self_supervised and self.loss.name != "ntxent":
                problems.append("train.self_supervised needs loss 'ntxent' (the two-view loss)")
            if self.loss.name == "vae":
                given = [key for key in ("views", "projection") if getattr(self, key) is not None]
                problems += [
                    f"section {key!r} is unused by loss 'vae' (it reconstructs the images)"
                    for key in given
                ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def to_yaml(self) -> str:
        """The recipe as YAML, without the sections its data source does not use."""
        unused = set(_IMAGE_ONLY) if isinstance(self.data, PaletteDataSection) else {"set_views"}
        return yaml.safe_dump(self.model_dump(mode="json", exclude=unused), sort_keys=False)


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat |= _flat(value, f"{prefix}.{key}" if prefix else str(key))
    return flat


def recipe_differences(old: Recipe, new: Recipe) -> list[str]:
    """``key: old -> new`` for every dotted key whose value differs, sorted by key.

    >>> base = parse_recipe({})
    >>> recipe_differences(base, parse_recipe({"train": {"epochs": 3}, "loss": {
    ...     "name": "triplet_margin", "margin": 0.2}}))
    ['loss.margin: 0.05 -> 0.2', 'train.epochs: 10 -> 3']
    """
    before, after = _flat(old.model_dump(mode="json")), _flat(new.model_dump(mode="json"))
    missing = object()
    return [
        f"{key}: {before.get(key, missing)!r} -> {after.get(key, missing)!r}".replace(
            repr(missing), "(absent)"
        )
        for key in sorted(before.keys() | after.keys())
        if before.get(key, missing) != after.get(key, missing)
    ]


class _RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping.

    YAML requires keys to be unique, but PyYAML keeps the last of two silently, so a recipe
    with ``epochs: 5`` below ``epochs: 100`` would train 5 epochs without a word.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: list[Any] = []
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *defaults' may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"key {key!r} given a second time; each key may appear once",
                    key_node.start_mark,
                )
            seen.append(key)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, where: str, expected: str) -> Any:
    """``text`` read as YAML (safely, each key once); invalid YAML is one line naming
    ``where``, line and column.

    >>> _parse_yaml("[0.9, 1.1]", "--set views.scale", "a YAML value")
    [0.9, 1.1]
    >>> _parse_yaml("[0.9", "--set views.scale", "a YAML value")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    embedforge.errors.UserError: --set views.scale, line 1, column 5: not valid YAML (while ...
    """
    try:
        return yaml.load(text, Loader=_RecipeLoader)  # a SafeLoader: no Python objects
    except yaml.MarkedYAMLError as error:  # a syntax error, at a line and column
        mark = error.problem_mark
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = ", ".join(part for part in (error.context, error.problem) if part)
        raise UserError(f"{where}{at}: not valid YAML ({problem}); expected {expected}") from None
    except yaml.YAMLError as error:  # e.g. a control character the reader refuses
        problem = " ".join(str(error).split())
        raise UserError(f"{where}: not valid YAML ({problem}); expected {expected}") from None


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.key=value`` to the raw mapping; the value is parsed as YAML.

    A new ``name`` for a section (``encoder.name=timm``) switches to another choice, whose
    keys differ: the section starts afresh from that name, so the file's keys for the old
    choice do not count as unknown ones.

    >>> raw = {"encoder": {"name": "small_cnn", "feature_dim": 84}}
    >>> apply_override(raw, "encoder.name=timm"); raw
    {'encoder': {'name': 'timm'}}
    """
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
    value = _parse_yaml(text, f"--set {key}", "a YAML value such as 3, 0.1, true or [0.9, 1.1]")
    if leaf == "name" and parents and node.get("name") != value:
        node.clear()
    node[leaf] = value


def _tagged_sections(union: Any) -> dict[str, type[_Section]]:
    """A tagged union's sections by the tag pydantic puts in an error's location
    (``loss.triplet_margin.margn``): the member's ``Tag``, else its ``name``."""
    sections = {}
    for member in get_args(get_args(union)[0]):  # Annotated[Union[...], discriminator]
        tags = [meta.tag for meta in getattr(member, "__metadata__", ()) if isinstance(meta, Tag)]
        section = get_args(member)[0] if tags else member
        sections[tags[0] if tags else get_args(section.model_fields["name"].annotation)[0]] = (
            section
        )
    return sections


_UNIONS = {"data": AnyDataSection, "encoder": AnyEncoderSection, "loss": LossSection}
"""The sections whose class follows a tag (data.source, encoder.name, loss.name)."""


def _keys_beside(loc: list[str]) -> list[str]:
    """The keys of the section holding the unknown key at ``loc`` (pydantic's location,
    a union's tag included)."""
    if len(loc) == 1:
        return list(Recipe.model_fields)
    if loc[0] in _UNIONS:
        return list(_tagged_sections(_UNIONS[loc[0]])[loc[1]].model_fields)
    annotation = Recipe.model_fields[loc[0]].annotation  # a section, or a section | None
    section = next(arg for arg in (annotation, *get_args(annotation)) if isinstance(arg, type))
    return list(section.model_fields)


def _describe(error: ValidationError, origin: str) -> str:
    problems = []
    for item in error.errors():
        tagged = [str(part) for part in item["loc"]]
        loc = tagged
        if len(tagged) > 1 and tagged[0] in _UNIONS:
            loc = [tagged[0], *tagged[2:]]  # drop the union's tag: loss.<name>.key -> loss.key
        key = ".".join(loc)
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            keys = _keys_beside(tagged)
            close = difflib.get_close_matches(loc[-1], keys, n=1)
            guess = f" (did you mean {'.'.join([*loc[:-1], close[0]])!r}?)" if close else ""
            problems.append(f"unknown key {key!r}{guess}; expected one of {', '.join(keys)}")
        elif not loc:  # a check across sections
            problems.append(message)
        else:
            problems.append(f"key {key!r}: {message} (got {item.get('input')!r})")
    return f"{origin}: " + "; ".join(problems)


def parse_recipe(raw: dict[str, Any], *, origin: str = "recipe") -> Recipe:
    """Validate a raw mapping; every problem is named by its dotted key."""
    try:
        return Recipe.model_validate(raw)
    except ValidationError as error:
        raise UserError(_describe(error, origin)) from None


def _read_recipe_text(path: Path) -> str:
    """The recipe file's text; a missing, unreadable or non-UTF-8 file is one UserError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: recipe file not found; expected a recipe YAML file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory; expected a recipe YAML file") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read the recipe ({error.strerror})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise UserError(
            f"{path}, line {line}: byte 0x{data[error.start]:02x} is not UTF-8; expected a "
            "UTF-8 recipe file"
        ) from None


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a recipe YAML file, apply ``key=value`` overrides, validate."""
    path = Path(path)
    text = _read_recipe_text(path)
    raw = _parse_yaml(text, str(path), "a mapping of sections, as in configs/") or {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a recipe is a mapping of sections, got {type(raw).__name__}")
    # a section's new name first: it starts that section afresh (see apply_override)
    for assignment in sorted(overrides, key=lambda a: not a.partition("=")[0].endswith(".name")):
        apply_override(raw, assignment)
    return parse_recipe(raw, origin=str(path))


BUNDLED = Path(__file__).parent / "configs"
"""The recipes shipped with the package (the repository's ``configs/`` links here)."""


def bundled_recipe(name: str, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """A shipped recipe by file name (e.g. ``"palette.yaml"``), with ``key=value`` overrides.

    >>> bundled_recipe("palette.yaml", ["data.size=100"]).data.size
    100
    """
    return load_recipe(BUNDLED / name, overrides)
