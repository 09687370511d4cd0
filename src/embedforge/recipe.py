"""The recipe: one YAML file naming one choice per pipeline stage, validated before anything runs.

Each section maps one to one onto a constructor's keyword arguments (the
``loss:`` section is the loss's arguments plus its ``name``), in typed, frozen
pydantic models that reject an unknown key by name, so a typo fails at once
instead of being silently ignored. ``--set train.epochs=3`` style overrides
are applied to the raw mapping first and validated the same way.
"""

import difflib
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    Field,
    ValidationError,
    model_validator,
)

from embedforge.config import Section
from embedforge.data.source import SetDataConfig, SetSource
from embedforge.devices import DeviceChoice
from embedforge.errors import UserError
from embedforge.registry import (
    DATA_SOURCES,
    ENCODERS,
    LOSSES,
    METHODS,
    SAMPLERS,
    SET_ENCODERS,
    SET_VIEWS,
    VIEWS,
)


def _is_sets(raw_data: Any) -> bool:
    """Whether a raw ``data`` section names a set source (palettes), whose defaults differ."""
    source = raw_data.get("source", "digits") if isinstance(raw_data, dict) else None
    return source in DATA_SOURCES and isinstance(DATA_SOURCES[source].target, SetSource)


AnyDataSection = DATA_SOURCES.section("digits")
"""Any registered data source's section (``embedforge list data``), told apart by ``source``."""


AnyEncoderSection = ENCODERS.section("small_cnn", SET_ENCODERS)
"""An image trunk's or a set encoder's section (``embedforge list encoders``), by ``name``."""


class EmbedderSection(Section):
    """The head from the trunk's features to the embedding."""

    dim: int = Field(64, gt=0)
    normalize: bool = True
    linear: bool = Field(
        True,
        description="false: no linear map, the trunk's features are the embedding "
        "(dim must equal their size)",
    )


LossSection = LOSSES.section("triplet_margin")
MethodSection = METHODS.section()
"""Any registered loss's section (see ``embedforge list losses``), told apart by ``name``."""


class ProjectionSection(Section):
    """SimCLR's projection head: the loss sees head(embedding), ``model(x)`` stays the embedding.

    See :class:`~embedforge.encoders.projection_head.ProjectionHead`; ``dim`` is its output.
    """

    hidden_dim: int = Field(gt=0)
    dim: int = Field(gt=0)


class MemorySection(Section):
    """Cross-batch memory (XBM, arXiv:1912.06798): the loss also compares each anchor with the
    last ``size`` training embeddings. See :class:`~embedforge.losses.CrossBatchMemory`."""

    size: int = Field(1024, gt=0, description="embeddings kept (at least the global batch)")


SamplerSection = SAMPLERS.section("pk")
"""A batch sampler's section (``embedforge list samplers``); absent: plain shuffled batches."""


ViewsSection = VIEWS.section("identity")
"""Image views: a preset (``embedforge list views``; default ``identity``, no change) and any
of its options overridden (see :mod:`embedforge.views.image_pipeline`)."""
SetViewsSection = SET_VIEWS.section("palette")
"""Set views (see :class:`embedforge.views.set_views.SetViews`); 0 turns a step off."""


class OptimizerSection(Section):
    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0)


class ScheduleSection(Section):
    name: Literal["constant", "one_cycle", "cosine"] = "constant"
    warmup_epochs: float = Field(0.0, ge=0, description="linear warm-up (cosine)")


class TrainSection(Section):
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
        "precision_at_1",
        "r_precision",
        "mean_average_precision_at_r",
        "view_precision_at_1",
        "emd_recall_at_10",
    ] = Field(
        "mean_average_precision_at_r",
        description="palettes: view_precision_at_1 (the default there), or emd_recall_at_10 "
        "(the default with loss emd_distillation)",
    )
    device: DeviceChoice = "auto"


_IMAGE_ONLY = ("embedder", "sampler", "views")
_IMAGE_DEFAULTS: dict[str, Any] = {
    "embedder": EmbedderSection(),
    "sampler": None,
    "views": None,
}
_IMAGE_METRICS = ("precision_at_1", "r_precision", "mean_average_precision_at_r")
_PALETTE_METRICS = ("view_precision_at_1", "emd_recall_at_10")
_PALETTE_CALLS = ("two_views", "anchor_positive_negative", "palette_pairs")


def _palette_metric(loss: Any) -> str:
    """A palette recipe's default ``train.best_metric``: agreement with EMD for a loss that
    learns it, else view matching."""
    name = loss.get("name") if isinstance(loss, dict) else None
    return "emd_recall_at_10" if name == "emd_distillation" else "view_precision_at_1"


class Recipe(Section):
    """One choice per stage. Defaults follow ``data.source``.

    Images: ``small_cnn`` + ``embedder``, ``triplet_margin``, image ``views``, and no
    ``projection`` head (the loss then sees the embedding itself).
    Palettes (``data.source: palettes``): a set encoder (default ``set_transformer``) whose
    output is the embedding, ``ntxent`` (or ``cosine_triplet``, or ``emd_distillation``:
    distances that approximate exact EMD), ``set_views`` (default: the
    :class:`~embedforge.views.set_views.SetViews` defaults), ``best_metric:
    view_precision_at_1`` (``emd_recall_at_10`` with ``emd_distillation``), and a
    ``projection`` head when one is given (with ``ntxent``);
    the image-only sections (embedder, sampler, views) are refused.
    """

    data: AnyDataSection = Field(default_factory=lambda: DATA_SOURCES["digits"].config())
    encoder: AnyEncoderSection = Field(default_factory=lambda: ENCODERS["small_cnn"].config())
    embedder: EmbedderSection = EmbedderSection()
    loss: LossSection = Field(default_factory=lambda: LOSSES["triplet_margin"].config())
    method: MethodSection | None = Field(
        None, description="a self-supervised method (it holds its loss and heads)"
    )
    projection: ProjectionSection | None = None
    memory: MemorySection | None = Field(
        None, description="cross-batch memory for a loss called with labels"
    )
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
        if not isinstance(raw, dict):
            return raw
        with_method = raw.get("method") is not None
        if with_method:  # checked here, before a default loss is filled in
            given = [key for key in ("loss", "projection", "memory") if raw.get(key) is not None]
            if given:
                raise ValueError(
                    f"section {given[0]!r} conflicts with section 'method': a method holds "
                    "its own loss and heads (set them under method:)"
                )
        if not _is_sets(raw.get("data", {})):
            return raw
        raw = dict(raw)
        for key, default in (
            ("encoder", {"name": "set_transformer"}),
            *(() if with_method else (("loss", {"name": "ntxent"}),)),
            ("set_views", {}),
            ("train", {}),
        ):
            section = raw.get(key)
            if section is None:
                raw[key] = dict(default)
            elif isinstance(section, dict):
                raw[key] = {**default, **section}
        if isinstance(raw["train"], dict):
            raw["train"] = {"best_metric": _palette_metric(raw.get("loss")), **raw["train"]}
        return raw

    @model_validator(mode="after")
    def _sections_fit_the_source(self) -> "Recipe":
        palettes = isinstance(self.data, SetDataConfig)
        calls = self.loss_calls()
        problems = []
        if palettes:
            given = [key for key in _IMAGE_ONLY if getattr(self, key) != _IMAGE_DEFAULTS[key]]
            problems += [
                f"section {key!r} is for images, not data.source 'palettes'" for key in given
            ]
            if self.encoder.name not in SET_ENCODERS:
                problems.append(
                    f"encoder.name must be a set encoder for palettes: {SET_ENCODERS.names()}"
                )
            if not calls & {*_PALETTE_CALLS, "momentum_views"}:
                fitting = _losses_calling(*_PALETTE_CALLS)
                problems.append(
                    f"loss.name {self.loss.name!r} cannot train palettes; expected a loss of two "
                    "views, (anchor, positive, negative) or palette pairs with their EMD: "
                    f"{fitting}"
                )
            elif "two_views" not in calls and self.projection is not None:
                problems.append(
                    f"section 'projection' needs a loss of two views for palettes, not "
                    f"{self.loss.name!r}"
                )
            metrics = _PALETTE_METRICS if "palette_pairs" in calls else _PALETTE_METRICS[:1]
            if self.train.best_metric not in metrics:
                problems.append(
                    f"train.best_metric must be one of {metrics} for palettes with loss "
                    f"{self.loss.name!r}"
                )
            if self.train.self_supervised:
                problems.append("train.self_supervised is for images (palettes always are)")
        else:
            if self.set_views is not None:
                problems.append("section 'set_views' is for data.source 'palettes'")
            if self.encoder.name in SET_ENCODERS:
                problems.append(f"encoder {self.encoder.name!r} is for data.source 'palettes'")
            if not calls & {"labels", "two_views", "reconstruction", "momentum_views"}:
                problems.append(f"loss {self.loss.name!r} is for data.source 'palettes'")
            if self.train.best_metric not in _IMAGE_METRICS:
                problems.append(f"train.best_metric must be one of {_IMAGE_METRICS} for images")
            if self.train.self_supervised and not calls & {"two_views", "momentum_views"}:
                problems.append(
                    f"train.self_supervised needs a loss of two views "
                    f"({_losses_calling('two_views')}), not {self.loss.name!r}"
                )
            if "reconstruction" in calls:
                given = [key for key in ("views", "projection") if getattr(self, key) is not None]
                problems += [
                    f"section {key!r} is unused by loss {self.loss.name!r} (it reconstructs "
                    "the images)"
                    for key in given
                ]
        problems += self._memory_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _memory_problems(self) -> list[str]:
        """Why the ``memory`` section cannot serve this recipe's loss, if it cannot."""
        if self.memory is None or self.method is not None:
            return []
        if isinstance(self.data, SetDataConfig) or self.train.self_supervised:
            return ["section 'memory' needs labels: not for palettes or train.self_supervised"]
        if not type(self.loss).takes_references:
            fitting = ", ".join(e.name for e in LOSSES.entries() if e.config.takes_references)
            return [f"section 'memory' needs one of the losses {fitting}, not {self.loss.name!r}"]
        batch = self.sampler.p * self.sampler.k if self.sampler else self.train.batch_size
        if self.memory.size < batch:
            return [f"memory.size {self.memory.size} is smaller than a batch ({batch})"]
        return []

    def loss_calls(self) -> frozenset[str]:
        """How the loss is called (:mod:`embedforge.losses.loss_config`): the method's, when
        the recipe names one, else the loss section's."""
        return type(self.method).calls if self.method is not None else type(self.loss).calls

    @property
    def self_supervised(self) -> bool:
        """Two views of each item, labels unused: a method, or ``train.self_supervised``."""
        return self.method is not None or self.train.self_supervised

    def to_yaml(self) -> str:
        """The recipe as YAML, without the sections its data source does not use."""
        unused = set(_IMAGE_ONLY) if isinstance(self.data, SetDataConfig) else {"set_views"}
        if self.method is not None:
            unused.add("loss")  # the method holds its loss
        sections = self.model_dump(mode="json", exclude=unused)
        for name, section in sections.items():  # a section's choice first, as a reader looks
            if isinstance(section, dict):
                first = [key for key in ("source", "name", "preset") if key in section]
                sections[name] = {key: section[key] for key in first} | section
        return yaml.safe_dump(sections, sort_keys=False)


def _losses_calling(*calls: str) -> str:
    """The registered losses called in one of ``calls``, for an error message."""
    return ", ".join(entry.name for entry in LOSSES.entries() if entry.config.calls & set(calls))


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


CHOICE_SECTIONS = {
    "data": (DATA_SOURCES,),
    "encoder": (ENCODERS, SET_ENCODERS),
    "loss": (LOSSES,),
    "method": (METHODS,),
    "sampler": (SAMPLERS,),
    "views": (VIEWS,),
    "set_views": (SET_VIEWS,),
}
"""The sections that are a registry's choices (pydantic's error paths name the choice too)."""


def _keys_beside(loc: list[str]) -> list[str]:
    """The keys of the section holding the unknown key at ``loc`` (pydantic's location,
    a choice's tag included)."""
    if len(loc) == 1:
        return list(Recipe.model_fields)
    if loc[0] in CHOICE_SECTIONS:
        registries = CHOICE_SECTIONS[loc[0]]
        config = next(registry[loc[1]].config for registry in registries if loc[1] in registry)
        return list(config.model_fields)
    annotation = Recipe.model_fields[loc[0]].annotation  # a section, or a section | None
    section = next(arg for arg in (annotation, *get_args(annotation)) if isinstance(arg, type))
    return list(section.model_fields)


def _describe(error: ValidationError, origin: str) -> str:
    problems = []
    for item in error.errors():
        tagged = [str(part) for part in item["loc"]]
        loc = tagged
        if len(tagged) > 1 and tagged[0] in CHOICE_SECTIONS:
            loc = [tagged[0], *tagged[2:]]  # drop the choice's tag: loss.<name>.key -> loss.key
        key = ".".join(loc)
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            keys = _keys_beside(tagged)
            close = difflib.get_close_matches(loc[-1], keys, n=1)
            guess = f" (did you mean {'.'.join([*loc[:-1], close[0]])!r}?)" if close else ""
            problems.append(f"unknown key {key!r}{guess}; expected one of {', '.join(keys)}")
        elif item["type"] == "union_tag_invalid":  # a name no registry entry has
            context = item["ctx"]
            field = str(context["discriminator"]).removesuffix("()")
            problems.append(
                f"key {key + '.' + field!r}: unknown choice {context['tag']!r}; expected one "
                f"of {context['expected_tags']}"
            )
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
