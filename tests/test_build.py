"""build_data's image-folder storage: decoded in memory or read per batch, same training."""

import shutil
from itertools import islice
from pathlib import Path

import pytest
import torch

from embedforge import build
from embedforge.build import build_data
from embedforge.data import image_folder_source
from embedforge.data.lazy_images import LazyImages
from embedforge.errors import UserError
from embedforge.files.run_folder import LAST
from embedforge.files.state import load_state
from embedforge.recipe import Recipe, load_recipe, parse_recipe
from embedforge.train.task import shuffled_batches
from embedforge.train.trainer import build_task, train

CONFIGS = Path(__file__).parents[1] / "configs"


def reid_recipe(folder: Path, *overrides: str) -> Recipe:
    """configs/reid_arcface.yaml on ``folder``, small and short (as conftest's ``reid_run``)."""
    return load_recipe(
        CONFIGS / "reid_arcface.yaml",
        [
            f"data.root={folder / 'images'}",
            f"data.csv={folder / 'train.csv'}",
            "data.image_size=32",
            "train.epochs=1",
            "train.batch_size=16",
            *overrides,
        ],
    )


@pytest.mark.parametrize(
    ("storage", "limit", "lazy"),
    [
        ("auto", image_folder_source.IN_MEMORY_LIMIT, False),  # 51 images of 3 × 32 × 32
        ("auto", 1000, True),
        ("memory", 1000, False),
        ("disk", image_folder_source.IN_MEMORY_LIMIT, True),
    ],
)
def test_storage_decides_where_the_images_live(
    reid_folder: Path, monkeypatch: pytest.MonkeyPatch, storage: str, limit: int, lazy: bool
) -> None:
    monkeypatch.setattr(image_folder_source, "IN_MEMORY_LIMIT", limit)
    split = build_data(reid_recipe(reid_folder, f"data.storage={storage}").data)
    kind = LazyImages if lazy else torch.Tensor
    assert isinstance(split.train_images, kind) and isinstance(split.test_images, kind)


@pytest.mark.parametrize("source", ["digits", "dsprites"])
@pytest.mark.parametrize("key", ["storage", "root", "image_size"])
def test_image_folder_keys_are_refused_for_generated_images(source: str, key: str) -> None:
    with pytest.raises(UserError, match=rf"unknown key 'data\.{key}'"):
        parse_recipe({"data": {"source": source, key: "x"}})


def test_training_from_disk_gives_the_weights_of_training_in_memory(
    reid_folder: Path, tmp_path: Path
) -> None:
    histories = []
    for storage in ("memory", "disk"):
        recipe = reid_recipe(reid_folder, f"data.storage={storage}", "data.test_fraction=0.2")
        result = train(recipe, tmp_path / storage, progress=False)
        histories.append(
            [{k: v for k, v in row.items() if k != "seconds"} for row in result.history]
        )
    assert histories[0] == histories[1]  # loss and validation (embedded from disk) alike
    memory, disk = (load_state(tmp_path / storage / LAST) for storage in ("memory", "disk"))
    for part in ("model", "loss"):
        assert memory[part].keys() == disk[part].keys()
        assert all(torch.equal(memory[part][key], disk[part][key]) for key in memory[part])


def test_a_missing_image_fails_the_batch_that_reads_it(reid_folder: Path, tmp_path: Path) -> None:
    shutil.copytree(reid_folder, tmp_path, dirs_exist_ok=True)
    recipe = reid_recipe(tmp_path, "data.storage=disk", "train.batch_size=8")
    task = build_task(recipe, torch.device("cpu"))
    images = task.split.train_images
    assert isinstance(images, LazyImages)
    third = next(islice(shuffled_batches(len(images), 8, seed=0, epoch=0), 2, None))
    name = images.folder.image_names[images.rows[third[0]]]
    (tmp_path / "images" / name).unlink()
    batches = task.batches(0)
    assert [len(labels) for _, labels in islice(batches, 2)] == [8, 8]
    with pytest.raises(UserError) as caught:
        next(batches)
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "images" / name)) and "\n" not in message


def test_without_the_linear_map_the_trunk_features_are_the_embedding() -> None:
    recipe = load_recipe(CONFIGS / "dsprites_simclr.yaml", ["embedder.linear=false"])
    model = build.build_model(recipe, image_size=64, in_channels=1)
    assert not list(model[1].parameters())
    images = torch.rand(5, 1, 64, 64)
    model.eval()
    torch.testing.assert_close(model(images), model[0](images))
    optimizer = build.build_optimizer(recipe, model, torch.nn.Identity())
    assert [group["name"] for group in optimizer.param_groups] == ["trunk"]


def test_without_the_linear_map_dim_must_be_the_trunk_feature_size() -> None:
    recipe = load_recipe(
        CONFIGS / "dsprites_simclr.yaml", ["embedder.linear=false", "embedder.dim=32"]
    )
    with pytest.raises(UserError, match=r"embedder\.dim \(32\) must equal the trunk's .* \(84\)"):
        build.build_model(recipe, image_size=64, in_channels=1)


def test_data_allow_outside_root_lets_listed_images_outside_the_root_be_read(
    reid_folder: Path, tmp_path: Path
) -> None:
    """Every image listed by its absolute path, the root an empty folder beside them."""
    header, *rows = (reid_folder / "train.csv").read_text().splitlines()
    listed = [f"{reid_folder / 'images' / row.split(',')[0]},{row.split(',')[1]}" for row in rows]
    (tmp_path / "train.csv").write_text("\n".join([header, *listed]) + "\n")
    (tmp_path / "images").mkdir()
    with pytest.raises(UserError, match=r"train\.csv, line 2, column 'image': .* outside the"):
        build_data(reid_recipe(tmp_path).data)
    split = build_data(reid_recipe(tmp_path, "data.allow_outside_root=true").data)
    assert len(split.train_labels) + len(split.test_labels) == len(rows)
