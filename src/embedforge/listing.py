"""``embedforge list [STAGE]``: every registered component, with what it is and its keys.

Read from the registries (:mod:`embedforge.registry`), so what is listed is exactly what a
recipe accepts: each entry's name, the first line of its config's docstring, and each key
with its type and default.
"""

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
    Registry,
)

STAGES: dict[str, tuple[tuple[str, Registry], ...]] = {
    "losses": (("loss (recipe key loss.name)", LOSSES),),
    "methods": (("self-supervised method (method.name)", METHODS),),
    "encoders": (
        ("image trunk (encoder.name)", ENCODERS),
        ("set encoder (encoder.name, palettes)", SET_ENCODERS),
    ),
    "data": (("data source (data.source)", DATA_SOURCES),),
    "samplers": (("batch sampler (sampler.name)", SAMPLERS),),
    "views": (
        ("image view preset (views.preset)", VIEWS),
        ("set view preset (set_views.preset)", SET_VIEWS),
    ),
}


def describe_stage(stage: str) -> str:
    """The listing of one stage, as printed.

    >>> print(describe_stage("samplers"))  # doctest: +NORMALIZE_WHITESPACE
    batch sampler (sampler.name):
      pk  P classes × K items per batch, so in-batch miners always find positives.
          p: int = required   (classes per batch)
          k: int = required   (items per class)
    """
    if stage not in STAGES:
        raise UserError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    lines = []
    for title, registry in STAGES[stage]:
        lines.append(f"{title}:")
        entries = list(registry.entries())
        width = max(len(entry.name) for entry in entries)
        for entry in entries:
            lines.append(f"  {entry.name:<{width}}  {entry.summary}")
            for key, kind, default in entry.options():
                field = entry.config.model_fields[key]
                note = f"   ({field.description})" if field.description else ""
                lines.append(f"  {'':<{width}}      {key}: {kind} = {default}{note}")
    return "\n".join(lines)


def describe(stages: list[str] | None = None) -> str:
    """The listing of ``stages`` (all of them by default), a blank line between stages."""
    return "\n\n".join(describe_stage(stage) for stage in stages or STAGES)
