"""The one training loop every image recipe runs: views, forward, loss, backward, step, log.

The step is visible in one screen; accumulation, clipping, mixed precision and
checkpointing are a few plain lines each. Every epoch re-seeds all randomness
from (seed, epoch), so a run resumed from its last checkpoint (written at the
end of each epoch) continues exactly as the uninterrupted run would have.
"""

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset
from tqdm import tqdm

from embedforge.errors import UserError
from embedforge.evaluate.retrieval import retrieval_metrics
from embedforge.recipe import Recipe, load_recipe
from embedforge.train.build import (
    build_data,
    build_loss,
    build_model,
    build_optimizer,
    build_schedule,
    build_views,
)
from embedforge.train.checkpoint import atomic_write, load_state, save_state
from embedforge.train.pk_sampler import PKSampler

LAST, BEST = "checkpoints/last.safetensors", "checkpoints/best.safetensors"


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    epochs_run: int
    best_epoch: int
    best_value: float
    history: list[dict]


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def _device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("recipe train.device is 'cuda' but no GPU is available")
    return torch.device(choice)


@torch.no_grad()
def embed_images(
    model: nn.Module, images: Tensor, device: torch.device, batch: int = 1024
) -> Tensor:
    """Embeddings in eval mode, batch by batch, on the CPU."""
    model.eval()
    return torch.cat([model(chunk.to(device)).float().cpu() for chunk in images.split(batch)])


def _write_history(run_dir: Path, history: list[dict]) -> None:
    text = "".join(json.dumps(row) + "\n" for row in history)
    atomic_write(run_dir / "metrics.jsonl", lambda tmp: tmp.write_text(text))


def train(
    recipe: Recipe, run_dir: str | Path, *, resume: bool = False, progress: bool = True
) -> TrainResult:
    """Train ``recipe`` into ``run_dir`` (recipe.yaml, checkpoints/, metrics.jsonl)."""
    run_dir = Path(run_dir)
    if (run_dir / LAST).exists() and not resume:
        raise UserError(f"{run_dir} already holds a run: pass --resume, or choose another --out")
    settings = recipe.train
    device = _device(settings.device)
    split = build_data(recipe.data)
    _, channels, size, _ = split.train_images.shape
    torch.manual_seed(settings.seed)  # initial weights (model and loss) depend on the seed only
    model = build_model(recipe, image_size=size, in_channels=channels).to(device)
    loss_fn = build_loss(recipe, num_classes=int(split.train_labels.max()) + 1).to(device)
    optimizer = build_optimizer(recipe, model, loss_fn)
    views = build_views(recipe)

    dataset = TensorDataset(split.train_images, split.train_labels)
    if recipe.sampler is not None:
        sampler = PKSampler(
            split.train_labels, p=recipe.sampler.p, k=recipe.sampler.k, seed=settings.seed
        )
        batch_size = sampler.batch_size
    else:
        shuffle = torch.Generator()
        sampler, batch_size = RandomSampler(dataset, generator=shuffle), settings.batch_size
    # Random batches drop a ragged last batch so batch norm never sees a single item.
    loader = DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, drop_last=recipe.sampler is None
    )
    steps_per_epoch = math.ceil(len(loader) / settings.accumulation_steps)
    schedule = build_schedule(recipe, optimizer, steps_per_epoch=steps_per_epoch)
    amp = settings.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=amp)

    history: list[dict] = []
    start_epoch, best_value, best_epoch = 0, -math.inf, -1
    if resume and (run_dir / LAST).exists():
        state = load_state(run_dir / LAST)
        model.load_state_dict(state["model"])
        loss_fn.load_state_dict(state["loss"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, best_value, best_epoch = (
            state["epoch"] + 1,
            state["best_value"],
            state["best_epoch"],
        )
        history = [
            json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        ]
        history = history[:start_epoch]
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / "recipe.yaml", lambda tmp: tmp.write_text(recipe.to_yaml()))

    epochs = tqdm(
        range(start_epoch, settings.epochs), desc="training", unit="epoch", disable=not progress
    )
    for epoch in epochs:
        started = time.perf_counter()
        torch.manual_seed(_epoch_seed(settings.seed, epoch))
        generator = torch.Generator(device).manual_seed(_epoch_seed(settings.seed, epoch))
        if isinstance(sampler, PKSampler):
            sampler.set_epoch(epoch)
        else:
            shuffle.manual_seed(_epoch_seed(settings.seed, epoch))
        model.train()
        loss_fn.train()
        total_loss, batches = 0.0, 0
        for step, (images, labels) in enumerate(loader):
            images, labels = images.to(device), labels.to(device)
            with torch.autocast(device.type, enabled=amp):
                if settings.self_supervised:
                    first, second = (
                        (views(images, generator) for _ in range(2)) if views else (images, images)
                    )
                    loss = loss_fn(model(first), model(second))
                else:
                    inputs = views(images, generator) if views else images
                    loss = loss_fn(model(inputs).float(), labels)
            scaler.scale(loss / settings.accumulation_steps).backward()
            total_loss, batches = total_loss + loss.item(), batches + 1
            if (step + 1) % settings.accumulation_steps == 0 or step + 1 == len(loader):
                if settings.clip_grad_norm is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(
                        [p for g in optimizer.param_groups for p in g["params"]],
                        settings.clip_grad_norm,
                    )
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                schedule.step()

        metrics = retrieval_metrics(
            embed_images(model, split.test_images, device),
            split.test_labels,
            embed_images(model, split.train_images, device),
            split.train_labels,
        )
        row = {
            "epoch": epoch,
            "loss": total_loss / max(batches, 1),
            **metrics,
            "seconds": time.perf_counter() - started,
        }
        history.append(row)
        value = metrics[settings.best_metric]
        if value > best_value:
            best_value, best_epoch = value, epoch
            save_state(
                run_dir / BEST,
                {"model": model.state_dict(), "loss": loss_fn.state_dict(), "epoch": epoch},
            )
        save_state(
            run_dir / LAST,
            {
                "model": model.state_dict(),
                "loss": loss_fn.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "best_value": best_value,
                "best_epoch": best_epoch,
            },
        )
        _write_history(run_dir, history)
        epochs.set_postfix(loss=f"{row['loss']:.4f}", **{settings.best_metric: f"{value:.4f}"})
        if settings.patience is not None and epoch - best_epoch >= settings.patience:
            break
    return TrainResult(run_dir, len(history), best_epoch, best_value, history)


def train_from_file(path: str, out: str | None, overrides: list[str], resume: bool) -> TrainResult:
    """The ``embedforge train`` command: load, override, train, print a summary line."""
    recipe = load_recipe(path, overrides)
    run_dir = Path(out) if out else Path("runs") / Path(path).stem
    result = train(recipe, run_dir, resume=resume)
    print(
        f"trained {result.epochs_run} epochs into {run_dir}: best "
        f"{recipe.train.best_metric} = {result.best_value:.4f} at epoch {result.best_epoch}"
    )
    return result
