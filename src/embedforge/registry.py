"""One registry per pipeline stage: each component registered once, next to its code.

timm's habit (``register_model`` beside each model, ``create_model`` by name), in a small
form: a component's module defines its config (a :class:`~embedforge.config.Section` whose
``name`` field is a one-value ``Literal``) and decorates what builds it::

    @LOSSES.register(TripletMarginConfig)
    def build(config, context): ...

The recipe schema (one discriminated union per stage), the CLI's choices, the estimator's
accepted names and ``embedforge list`` are all read from here, so adding a component is
adding its file. A registry imports every module of its packages the first time it is asked
for its entries (registration is the only side effect of importing them).
"""

import importlib
import pkgutil
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from pydantic import Discriminator, Tag
from pydantic.fields import FieldInfo

from embedforge.config import Section
from embedforge.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered component: its name, its config (the recipe section) and what builds it."""

    name: str
    config: type[Section]
    target: T

    @property
    def summary(self) -> str:
        """The first line of the config's docstring: what the component is, in one line."""
        return (self.config.__doc__ or "").strip().splitlines()[0] if self.config.__doc__ else ""

    def options(self) -> list[tuple[str, str, str]]:
        """``(key, type, default or "required")`` of every config key but the name key."""
        return [
            (key, _type_name(field.annotation), _default(field))
            for key, field in self.config.model_fields.items()
            if key not in ("name", "source", "preset")
        ]


class Registry(Generic[T]):
    """The components of one stage, by name.

    ``key`` is the config field holding the name (``name``; ``source`` for data sources),
    ``default`` the entry a recipe gets when it names none.
    """

    def __init__(self, stage: str, packages: tuple[str, ...], *, key: str = "name") -> None:
        self.stage, self.packages, self.key = stage, packages, key
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = False

    def register(self, config: type[Section]) -> Callable[[T], T]:
        """Register ``config``'s component; the decorated object is what builds it."""
        name = _literal_name(config, self.key)

        def add(target: T) -> T:
            if name in self._entries and self._entries[name].config is not config:
                raise ValueError(f"{self.stage}: {name!r} is registered twice")
            self._entries[name] = Entry(name, config, target)
            return target

        return add

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for package_name in self.packages:
            package = importlib.import_module(package_name)
            for module in pkgutil.iter_modules(package.__path__, f"{package_name}."):
                importlib.import_module(module.name)

    def entries(self) -> Iterator[Entry[T]]:
        """Every entry, by name."""
        self._load()
        return iter(sorted(self._entries.values(), key=lambda entry: entry.name))

    def names(self) -> tuple[str, ...]:
        return tuple(entry.name for entry in self.entries())

    def __getitem__(self, name: str) -> Entry[T]:
        self._load()
        if name not in self._entries:
            raise UserError(
                f"unknown {self.stage} {name!r}; expected one of {', '.join(self.names())}"
            )
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def section(self, default: str | None = None, *extra: "Registry[Any]") -> Any:
        """The recipe type of this stage (and ``extra`` stages sharing its key): a union of
        the entries' configs told apart by their name, ``default`` when the key is absent."""
        entries = [entry for registry in (self, *extra) for entry in registry.entries()]
        key = self.key

        def name_of(raw: Any) -> Any:
            return raw.get(key, default) if isinstance(raw, dict) else getattr(raw, key, None)

        name_of.__name__ = key  # pydantic names the discriminator by it in its errors

        members = tuple(Annotated[entry.config, Tag(entry.name)] for entry in entries)
        return Annotated[typing.Union[members], Discriminator(name_of)]  # noqa: UP007


def _literal_name(config: type[Section], key: str) -> str:
    field = config.model_fields.get(key)
    values = typing.get_args(field.annotation) if field is not None else ()
    if (
        field is None
        or typing.get_origin(field.annotation) is not typing.Literal
        or (len(values) != 1)
    ):
        raise TypeError(f"{config.__name__}.{key} must be a Literal of the component's name")
    return values[0]


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if typing.get_args(annotation) == () else None
    return text or str(annotation).replace("typing.", "")


def _default(field: FieldInfo) -> str:
    return "required" if field.is_required() else repr(field.get_default(call_default_factory=True))


LOSSES: Registry[Any] = Registry("loss", ("embedforge.losses",))
"""Losses: ``build(config, shapes) -> nn.Module``; the config's ``calls`` say how it is called."""
METHODS: Registry[Any] = Registry("method", ("embedforge.methods",))
"""Self-supervised methods: ``build(config, shapes, encoder) -> Method`` (a loss module over
two views that may hold heads and a momentum target of ``encoder``)."""
ENCODERS: Registry[Any] = Registry("encoder", ("embedforge.encoders",))
"""Image trunks: ``build(config, shapes) -> nn.Module`` with a ``feature_dim``."""
SET_ENCODERS: Registry[Any] = Registry("set encoder", ("embedforge.encoders",))
"""Set encoders: ``build(config, shapes) -> nn.Module``, ``(values, mask) -> (B, dim)``."""
DATA_SOURCES: Registry[Any] = Registry("data source", ("embedforge.data",), key="source")
"""Data sources: an :class:`embedforge.data.source.ImageSource` or ``SetSource``."""
SAMPLERS: Registry[Any] = Registry("sampler", ("embedforge.samplers",))
"""Batch samplers: ``build(config, labels, seed) -> BatchSampler``."""
VIEWS: Registry[Any] = Registry("image view preset", ("embedforge.views",), key="preset")
"""Image view presets: ImageViews subclasses a recipe names and overrides (the target is the
class itself)."""
SET_VIEWS: Registry[Any] = Registry("set view preset", ("embedforge.views",), key="preset")
"""Set view presets, as VIEWS for sets."""
