"""The base of every recipe section: typed, frozen, and refusing an unknown key by name.

Each component's config (a loss's margin, an encoder's width) is one of these, defined next
to the component's code and registered with it (:mod:`embedforge.registry`); the recipe is
assembled from them, so a typo fails at once instead of being silently ignored.
"""

from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A recipe section: keyword arguments of one constructor, validated.

    >>> class Margin(Section):
    ...     margin: float = 0.1
    >>> Margin(margin=0.2).margin
    0.2
    >>> from pydantic import ValidationError
    >>> try:
    ...     Margin(marginn=0.2)
    ... except ValidationError as error:
    ...     print(error.errors()[0]["type"], error.errors()[0]["loc"])
    extra_forbidden ('marginn',)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path_keys: ClassVar[tuple[str, ...]] = ()
    """Keys holding paths: a run records them absolute (embedforge.files.run_folder)."""
    file_keys: ClassVar[tuple[str, ...]] = ()
    """Keys naming input files a run fingerprints (embedforge.files.data_pin)."""


@dataclass(frozen=True)
class Shapes:
    """What a component's builder may need to know of the data and the parts around it.

    ``embedding_dim``: the size of what the loss sees (the embedding, or a projection head's
    output); ``num_classes``: training classes (ArcFace, the softmax baseline);
    ``image_size`` / ``in_channels``: the images (image trunks, the VAE's decoder);
    ``in_features``: the features of a set's rows (set encoders).
    """

    embedding_dim: int = 0
    num_classes: int = 0
    image_size: int = 0
    in_channels: int = 0
    in_features: int = 0
