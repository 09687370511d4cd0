"""Malformed recipes and ``--set`` overrides, met by ``embedforge train`` and ``load_recipe``.

A recipe is refused before anything is trained or written, by key (see
:mod:`embedforge.recipe`), so each case's command is ``train RECIPE --out run`` and its
Python twin :func:`~embedforge.recipe.load_recipe`, with the same overrides.
"""

from embedforge.bad_inputs.case import Case, Place
from embedforge.recipe import load_recipe

RECIPE = "recipe.yaml"
FOLDER = b"<a folder>"
"""``text`` for a case whose recipe path is a folder."""


def recipe_case(
    name: str,
    text: str | bytes | None,
    expected: str,
    *,
    key: str | None = None,
    overrides: tuple[str, ...] = (),
    names_file: bool = True,
) -> Case:
    """A recipe file holding ``text`` (None: no file at all; ``FOLDER``: a folder in its
    place) trained with ``--set`` for each override; the message must name ``key`` and,
    unless ``names_file`` is false (a problem of the command line, not of the file), the
    recipe file."""

    def make(at: Place) -> None:
        if text is FOLDER:
            at.folder.joinpath(RECIPE).mkdir()
        elif text is not None:
            at.write(RECIPE, text)

    def argv(at: Place) -> list[str]:
        sets = [part for override in overrides for part in ("--set", override)]
        return ["train", at(RECIPE), "--out", at("run"), *sets]

    return Case(
        name=name,
        make=make,
        argv=argv,
        call=lambda at: load_recipe(at(RECIPE), list(overrides)),
        expected=expected,
        path=RECIPE if names_file else None,
        key=key,
    )


PALETTES = "data:\n  source: palettes\n"

CASES = [
    recipe_case(
        "recipe: a value of the wrong type",
        "train:\n  epochs: three\n",
        "Input should be a valid integer",
        key="train.epochs",
    ),
    recipe_case(
        "recipe: a value out of range",
        "train:\n  epochs: 0\n",
        "Input should be greater than 0",
        key="train.epochs",
    ),
    recipe_case(
        "recipe: an unknown key",
        "train:\n  epoch: 3\n",
        "(did you mean 'train.epochs'?); expected one of epochs, batch_size, seed",
        key="unknown key 'train.epoch'",
    ),
    recipe_case(
        "recipe: an unknown section",
        "trian:\n  epochs: 3\n",
        "expected one of data, encoder, embedder, loss, method, projection",
        key="unknown key 'trian'",
    ),
    recipe_case(
        "recipe: an image folder without its paths",
        "data:\n  source: image_folder\n",
        "key 'data.root': Field required",
        key="data.root",
    ),
    recipe_case(
        "recipe: a section that is not a mapping",
        "train:\n",
        "Input should be a valid dictionary",
        key="train",
    ),
    recipe_case(
        "recipe: set_views on an image recipe",
        "set_views:\n  permute: false\n",
        "section 'set_views' is for data.source 'palettes'",
        key="set_views",
    ),
    recipe_case(
        "recipe: views on a palette recipe",
        PALETTES + "views:\n  degrees: 10\n",
        "section 'views' is for images, not data.source 'palettes'",
        key="views",
    ),
    recipe_case(
        "recipe: loss vae with views",
        "loss:\n  name: vae\nviews:\n  degrees: 10\n",
        "section 'views' is unused by loss 'vae'",
        key="views",
    ),
    recipe_case(
        "recipe: a palette loss that is not for palettes",
        PALETTES + "loss:\n  name: triplet_margin\n",
        "loss.name 'triplet_margin' cannot train palettes; expected a loss of two views",
        key="loss.name",
    ),
    recipe_case(
        "recipe: palettes kept by EMD recall without the EMD loss",
        PALETTES + "train:\n  best_metric: emd_recall_at_10\n",
        "train.best_metric must be one of ('view_precision_at_1',) for palettes with loss 'ntxent'",
        key="train.best_metric",
    ),
    recipe_case(
        "recipe: self-supervised without the two-view loss",
        "train:\n  self_supervised: true\n",
        "train.self_supervised needs a loss of two views (barlow_twins, ntxent, vicreg)",
        key="train.self_supervised",
    ),
    recipe_case(
        "recipe: a method beside a loss",
        "method:\n  name: byol\nloss:\n  name: ntxent\n",
        "section 'loss' conflicts with section 'method': a method holds its own loss and heads",
    ),
    recipe_case(
        "recipe: an unknown method",
        "method:\n  name: byl\n",
        "key 'method.name': unknown choice 'byl'; expected one of 'barlow_twins'",
        key="method.name",
    ),
    recipe_case(
        "recipe: a method key of another method",
        "method:\n  name: byol\n  queue_size: 10\n",
        "unknown key 'method.queue_size'",
        key="method.queue_size",
    ),
    recipe_case(
        "recipe: a cross-batch memory for a loss that takes none",
        "loss:\n  name: arcface\nmemory:\n  size: 512\n",
        "section 'memory' needs one of the losses contrastive, multi_similarity, ntxent",
    ),
    recipe_case(
        "recipe: a cross-batch memory smaller than a batch",
        "memory:\n  size: 64\n",
        "memory.size 64 is smaller than a batch (128)",
    ),
    recipe_case(
        "recipe: an unknown loss",
        "loss:\n  name: tripplet\n",
        "key 'loss.name': unknown choice 'tripplet'; expected one of 'arcface'",
        key="loss.name",
    ),
    recipe_case(
        "recipe: a YAML list, not a mapping",
        "- train\n- loss\n",
        "a recipe is a mapping of sections, got list",
    ),
    recipe_case(
        "recipe: invalid YAML",
        "train: [\n  epochs: 1\n",
        "line 3, column 1: not valid YAML (while parsing a flow sequence, expected ',' or ']'",
    ),
    recipe_case(
        "recipe: a key given twice",
        "train:\n  epochs: 100\n  batch_size: 64\n  epochs: 5\n",
        "line 4, column 3: not valid YAML (while constructing a mapping, key 'epochs' given a "
        "second time; each key may appear once)",
    ),
    recipe_case(
        "recipe: a tab indenting a key",
        "train:\n\tepochs: 1\n",
        "line 2, column 1: not valid YAML (while scanning for the next token, found character "
        "'\\t' that cannot start any token); expected a mapping of sections",
    ),
    recipe_case(
        "recipe: not UTF-8 (latin-1)",
        "train:\n  epochs: 1\n# réglages\n".encode("latin-1"),
        "line 3: byte 0xe9 is not UTF-8; expected a UTF-8 recipe file",
    ),
    recipe_case(
        "recipe: a folder, not a file",
        FOLDER,
        "is a directory; expected a recipe YAML file",
    ),
    recipe_case(
        "recipe: the file missing",
        None,
        "recipe file not found; expected a recipe YAML file",
    ),
    recipe_case(
        "--set with a value that is not YAML",
        "train:\n  epochs: 1\n",
        "not valid YAML (while parsing a flow sequence, expected ',' or ']', but got '<stream "
        "end>'); expected a YAML value such as 3, 0.1, true or [0.9, 1.1]",
        key="--set views.scale",
        overrides=("views.scale=[0.9, 1.1",),
        names_file=False,
    ),
    recipe_case(
        "--set without '='",
        "train:\n  epochs: 1\n",
        "--set expects key=value (e.g. train.epochs=3)",
        key="train.epochs",
        overrides=("train.epochs",),
        names_file=False,
    ),
    recipe_case(
        "--set below a value",
        "train:\n  epochs: 1\n",
        "'epochs' is a value, not a section",
        key="--set train.epochs.max",
        overrides=("train.epochs.max=3",),
        names_file=False,
    ),
]
"""Recipes and overrides that must be refused."""
