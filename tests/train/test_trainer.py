import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tests.train.killing import killed_after_first_resume_point

from embedforge.build import build_model, build_optimizer, check_optimizer_covers
from embedforge.cli import main
from embedforge.errors import UserError
from embedforge.files.run_folder import BEST, LAST
from embedforge.files.state import load_state
from embedforge.losses import ArcFaceLoss
from embedforge.recipe import load_recipe, parse_recipe
from embedforge.train import run_log as run_log_module
from embedforge.train import trainer as trainer_module
from embedforge.train.image_task import ImageTask
from embedforge.train.trainer import build_task, train

CONFIGS = Path(__file__).parents[2] / "configs"
SMALL = {
    "loss": {"name": "triplet_margin", "margin": 0.2, "mining": "batch_hard"},
    "sampler": {"p": 5, "k": 4},
    "optimizer": {"name": "adamw", "lr": 0.003},
    "schedule": {"name": "one_cycle"},
    "train": {"epochs": 3, "seed": 1},
}


def test_run_folder_holds_recipe_checkpoints_and_metrics(tmp_path: Path) -> None:
    result = train(parse_recipe(SMALL), tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert (run / "recipe.yaml").is_file() and (run / LAST).is_file() and (run / BEST).is_file()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [0, 1, 2] == [row["epoch"] for row in result.history]
    assert {"precision_at_1", "r_precision", "mean_average_precision_at_r", "loss"} <= set(rows[0])
    assert load_recipe(run / "recipe.yaml") == parse_recipe(SMALL)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    logged = events.Scalars("mean_average_precision_at_r")
    assert [event.step for event in logged] == [0, 1, 2]
    assert logged[-1].value == pytest.approx(rows[-1]["mean_average_precision_at_r"])
    with pytest.raises(UserError, match="--resume"):
        train(parse_recipe(SMALL), run, progress=False)


def test_a_cuda_recipe_without_a_gpu_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    recipe = parse_recipe({**SMALL, "train": {**SMALL["train"], "device": "cuda"}})
    with pytest.raises(UserError, match=r"recipe train\.device is 'cuda' but no GPU is available"):
        train(recipe, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / LAST).exists()


def test_seeded_runs_are_identical(tmp_path: Path) -> None:
    first = train(parse_recipe(SMALL), tmp_path / "a", progress=False)
    second = train(parse_recipe(SMALL), tmp_path / "b", progress=False)
    assert [r["loss"] for r in first.history] == [r["loss"] for r in second.history]
    a, b = load_state(tmp_path / "a" / LAST)["model"], load_state(tmp_path / "b" / LAST)["model"]
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_mixed_precision_loop_trains_clips_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GPU's autocast + gradient-scaler loop, run on the CPU's autocast (no GPU here)."""
    monkeypatch.setattr(trainer_module, "uses_mixed_precision", lambda settings, device: True)
    settings = {**SMALL["train"], "clip_grad_norm": 1.0, "accumulation_steps": 2}
    recipe = parse_recipe({**SMALL, "train": {**settings, "checkpoint_interval_s": 0}})
    whole = train(recipe, tmp_path / "whole", progress=False)
    assert all(math.isfinite(row["loss"]) for row in whole.history)
    assert load_state(tmp_path / "whole" / LAST)["scaler"]["scale"] > 0  # checkpointed
    with killed_after_first_resume_point(monkeypatch):
        train(recipe, tmp_path / "resumed", progress=False)
    resumed = train(recipe, tmp_path / "resumed", resume=True, progress=False)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in whole.history]


def test_resuming_under_a_changed_schedule_is_refused(tmp_path: Path) -> None:
    one_epoch = {**SMALL, "train": {**SMALL["train"], "epochs": 1}}
    train(parse_recipe(one_epoch), tmp_path / "run", progress=False)
    refused = "one_cycle schedule spans 62 optimizer steps and this recipe's 186"
    with pytest.raises(UserError, match=re.escape(refused)):
        train(parse_recipe(SMALL), tmp_path / "run", resume=True, progress=False)
    constant = {**SMALL, "schedule": {"name": "constant"}}
    short = parse_recipe({**constant, "train": one_epoch["train"]})
    train(short, tmp_path / "flat", progress=False)
    extended = train(parse_recipe(constant), tmp_path / "flat", resume=True, progress=False)
    assert [row["epoch"] for row in extended.history] == [0, 1, 2]


def test_resuming_under_an_edited_recipe_is_refused_naming_the_keys(tmp_path: Path) -> None:
    constant = {**SMALL, "schedule": {"name": "constant"}, "train": {**SMALL["train"], "epochs": 1}}
    train(parse_recipe(constant), tmp_path / "run", progress=False)
    saved = (tmp_path / "run" / "recipe.yaml").read_text()
    edited = {**constant, "loss": {**SMALL["loss"], "margin": 0.3}}
    edited["train"] = {**constant["train"], "seed": 5}
    refused = "train.seed: 1 -> 5"
    with pytest.raises(UserError, match=re.escape("loss.margin: 0.2 -> 0.3; " + refused)):
        train(parse_recipe(edited), tmp_path / "run", resume=True, progress=False)
    assert (tmp_path / "run" / "recipe.yaml").read_text() == saved  # not overwritten
    longer = {**constant, "train": {**constant["train"], "epochs": 2, "checkpoint_interval_s": 0}}
    resumed = train(parse_recipe(longer), tmp_path / "run", resume=True, progress=False)
    assert [row["epoch"] for row in resumed.history] == [0, 1]


def _record_saves(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(file name, epoch) of every checkpoint the trainer writes from now on."""
    saves: list[tuple[str, int]] = []
    save_state = run_log_module.save_state

    def recording(path: Path, state: dict) -> None:
        saves.append((path.name, state["epoch"]))
        save_state(path, state)

    monkeypatch.setattr(run_log_module, "save_state", recording)
    return saves


@pytest.mark.parametrize(("interval", "last_epochs"), [(0, [0, 1, 2]), (1e9, [2])])
def test_last_checkpoint_waits_for_its_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interval: float, last_epochs: list[int]
) -> None:
    saves = _record_saves(monkeypatch)
    recipe = parse_recipe({**SMALL, "train": {**SMALL["train"], "checkpoint_interval_s": interval}})
    train(recipe, tmp_path / "run", progress=False)
    assert [epoch for name, epoch in saves if name == Path(LAST).name] == last_epochs
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 3


def test_patience_stops_early_and_saves_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saves = _record_saves(monkeypatch)
    falling = iter([0.9, 0.8, 0.85, 0.7, 0.95])  # best at epoch 0, then 2 epochs without a gain
    monkeypatch.setattr(
        ImageTask, "validate", lambda self: {"mean_average_precision_at_r": next(falling)}
    )
    settings = {"epochs": 5, "patience": 2, "checkpoint_interval_s": 1e9}
    recipe = parse_recipe({**SMALL, "train": {**SMALL["train"], **settings}})
    result = train(recipe, tmp_path / "run", progress=False)
    assert (result.epochs_run, result.best_epoch, result.best_value) == (3, 0, 0.9)
    assert saves == [(Path(BEST).name, 0), (Path(LAST).name, 2)]
    assert load_state(tmp_path / "run" / LAST)["epoch"] == 2


def test_killed_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    recipe = CONFIGS / "digits_triplet.yaml"
    overrides = ["--set", "train.epochs=6", "--set", "train.checkpoint_interval_s=0"]
    command = [sys.executable, "-m", "embedforge", "train", str(recipe), *overrides]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run(
        [*command, "--out", str(tmp_path / "whole")], check=True, env=env, capture_output=True
    )

    killed = subprocess.Popen(
        [*command, "--out", str(tmp_path / "killed")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and killed.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            killed.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    assert killed.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert load_state(tmp_path / "killed" / LAST)["epoch"] < 5

    subprocess.run(
        [*command, "--out", str(tmp_path / "killed"), "--resume"],
        check=True,
        env=env,
        capture_output=True,
    )
    whole = load_state(tmp_path / "whole" / LAST)["model"]
    resumed = load_state(tmp_path / "killed" / LAST)["model"]
    assert all(torch.equal(whole[key], resumed[key]) for key in whole)


def test_optimizer_covers_trunk_embedder_and_arcface_weights() -> None:
    recipe = parse_recipe({"loss": {"name": "arcface"}})
    model = build_model(recipe, image_size=8, in_channels=1)
    loss = ArcFaceLoss(10, recipe.embedder.dim)
    optimizer = build_optimizer(recipe, model, loss)
    assert [group["name"] for group in optimizer.param_groups] == ["trunk", "embedder", "loss"]
    assert any(p is loss.W for p in optimizer.param_groups[2]["params"])
    notebook_bug = torch.optim.AdamW(model[0].parameters())  # embedder and W left out
    with pytest.raises(RuntimeError, match="not optimised"):
        check_optimizer_covers(notebook_bug, model, loss)


def test_train_command_reports_a_bad_key_without_a_traceback(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "train",
            str(CONFIGS / "digits_triplet.yaml"),
            "--set",
            "train.epoch=1",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown key 'train.epoch'" in err and "Traceback" not in err


def test_classic_digits_triplet_recipe_reaches_the_map_at_r_target(tmp_path: Path) -> None:
    result = train(load_recipe(CONFIGS / "digits_triplet.yaml"), tmp_path / "run", progress=False)
    assert result.best_value >= 0.95


@pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with the gloo backend is not available",
)
def test_two_process_training_matches_one_process(tmp_path: Path) -> None:
    """torchrun + gloo, 2 ranks on the CPU, against 1 rank on the same global batches.

    The loss gradients are identical (tests/train/test_distributed.py checks that
    to 1e-10); what differs here is batch norm, whose statistics stay per rank on
    the CPU (SyncBatchNorm is GPU-only), so final metrics agree within 0.03.
    """
    finals = []
    for processes in (1, 2):
        out = tmp_path / f"ranks{processes}"
        subprocess.run(
            [
                sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={processes}", "-m", "embedforge", "train",
                str(CONFIGS / "digits_triplet.yaml"), "--set", "train.epochs=12",
                "--set", "train.device=cpu",  # gloo, also where there are GPUs
                "--out", str(out),
            ],
            check=True, capture_output=True,
        )  # fmt: skip
        finals.append(json.loads((out / "metrics.jsonl").read_text().splitlines()[-1]))
    one, two = finals
    for metric in ("precision_at_1", "mean_average_precision_at_r"):
        assert two[metric] > 0.9
        assert abs(one[metric] - two[metric]) < 0.03


@pytest.mark.parametrize(
    "config,overrides",
    [
        ("digits_arcface.yaml", ["train.epochs=2"]),
        (
            "dsprites_simclr.yaml",
            ["data.size=300", "train.epochs=1", "train.batch_size=60"],
        ),
        ("dsprites_supervised.yaml", ["data.size=300", "train.epochs=1", "train.batch_size=60"]),
        ("dsprites_vae.yaml", ["data.size=300", "train.epochs=1", "train.batch_size=60"]),
    ],
)
def test_bundled_recipes_train_briefly(tmp_path: Path, config: str, overrides: list[str]) -> None:
    result = train(load_recipe(CONFIGS / config, overrides), tmp_path / "run", progress=False)
    assert result.epochs_run == len(result.history) >= 1
    assert all(torch.isfinite(torch.tensor(row["loss"])) for row in result.history)
    if config == "digits_arcface.yaml":  # W is trained: it moved away from its initial value
        recipe = load_recipe(CONFIGS / config, overrides)
        torch.manual_seed(recipe.train.seed)  # as train() does before building
        initial = build_task(recipe, torch.device("cpu")).loss_fn.W
        trained = load_state(tmp_path / "run" / LAST)["loss"]["W"]
        assert trained.shape == initial.shape and not torch.allclose(trained, initial)


def test_reid_recipe_trains_on_an_image_folder(tmp_path: Path, reid_folder: Path) -> None:
    data = reid_folder
    overrides = [
        f"data.root={data / 'images'}",
        f"data.csv={data / 'train.csv'}",
        "data.image_size=32",
        "train.epochs=2",
        "train.batch_size=16",
    ]
    recipe = load_recipe(CONFIGS / "reid_arcface.yaml", overrides)
    assert recipe.train.accumulation_steps * recipe.train.batch_size == 64
    result = train(recipe, tmp_path / "run", progress=False)
    assert len(result.history) == 2
    assert 0.0 <= result.history[-1]["precision_at_1"] <= 1.0
    state = load_state(tmp_path / "run" / LAST)
    individuals = {line.split(",")[1] for line in (data / "train.csv").read_text().split()[1:]}
    assert state["loss"]["W"].shape == (512, len(individuals))  # one ArcFace class each


def test_validate_every_skips_validation_but_always_validates_the_last_epoch(
    tmp_path: Path,
) -> None:
    recipe = parse_recipe({**SMALL, "train": {**SMALL["train"], "epochs": 5, "validate_every": 2}})
    result = train(recipe, tmp_path / "run", progress=False)
    validated = [row["epoch"] for row in result.history if "precision_at_1" in row]
    assert validated == [1, 3, 4]
    assert result.best_epoch in validated
    assert all("loss" in row for row in result.history)


def test_cross_batch_memory_trains_checkpoints_and_resumes_bit_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memory is part of the loss's state: a killed run resumes to the same memory,
    position and weights as one that ran through (PML keeps its position out of the state)."""
    recipe = parse_recipe(
        {**SMALL, "memory": {"size": 50}, "train": {**SMALL["train"], "checkpoint_interval_s": 0}}
    )
    whole = train(recipe, tmp_path / "whole", progress=False)
    with killed_after_first_resume_point(monkeypatch):
        train(recipe, tmp_path / "resumed", progress=False)
    resumed = train(recipe, tmp_path / "resumed", resume=True, progress=False)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in whole.history]
    got, want = load_state(tmp_path / "resumed" / LAST), load_state(tmp_path / "whole" / LAST)
    assert {"embedding_memory", "label_memory", "next_slot", "num_filled"} <= set(want["loss"])
    for part in ("model", "loss"):
        assert all(torch.equal(got[part][k], want[part][k]) for k in want[part]), part
    assert int(want["loss"]["num_filled"]) == 50
    plain = train(parse_recipe(SMALL), tmp_path / "plain", progress=False)
    assert [r["loss"] for r in plain.history] != [r["loss"] for r in whole.history]
