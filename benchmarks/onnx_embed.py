"""Embedding throughput: the PyTorch model against its ONNX export run by onnxruntime (CPU).

The same inputs go through the same batching (:func:`embedforge.inference.embed_sets`,
sets in chunks sorted by size and padded to their own largest set; ``embed_images``) with
the model swapped, as ``embedforge embed --backend torch|onnx`` does: the default palette
encoder (``configs/palette.yaml``'s Set Transformer, 64-d, two blocks) on synthetic
palettes, and the small CNN with its 64-d embedder on 8×8 images (digits, tiled) and
64×64 images (the dSprites size, random pixels: throughput does not depend on them).
Weights are freshly initialised; a trained run has the same graph and costs the same.
Each repeat times both backends back to back (alternating which goes first) and the
speed-up is the median of the repeats' own ratios, because the machine may be shared; each
thread count is given to both. Writes
benchmarks/results/onnx_embed.md.

    python benchmarks/onnx_embed.py [--repeats 5] [--sets 4096] [--threads 2,1]
"""

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import onnxruntime
import torch
from torch import Tensor, nn

from embedforge.build import build_model, build_palettes
from embedforge.data.digits import digits_images
from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.embed import PaletteRun, set_features
from embedforge.inference import embed_images, embed_sets
from embedforge.onnx_encoder import OnnxEncoder
from embedforge.onnx_export import ImageInputs, OnnxInputs, SetInputs, export_onnx
from embedforge.recipe import bundled_recipe, parse_recipe
from measure import command_line, machine_line, write_report

CPU = torch.device("cpu")
BATCHES = (256, 1024)


def timed(fn: Callable[[], Tensor]) -> tuple[float, Tensor]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def compare(
    name: str,
    model: nn.Module,
    inputs: OnnxInputs,
    embed: Callable[[nn.Module, int], Tensor],
    count: int,
    args: argparse.Namespace,
) -> list[str]:
    """Table rows for ``model`` and its export, one per thread count and batch size."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        export_onnx(model.eval(), inputs, path, metadata={}, label=name)
        for threads in args.threads:
            torch.set_num_threads(threads)
            exported = OnnxEncoder(path, threads=threads)
            for batch in BATCHES:
                rows.append(measure(name, threads, batch, model, exported, embed, count, args))
                print(rows[-1], flush=True)
    return rows


def measure(
    name: str,
    threads: int,
    batch: int,
    model: nn.Module,
    exported: nn.Module,
    embed: Callable[[nn.Module, int], Tensor],
    count: int,
    args: argparse.Namespace,
) -> str:
    """One table row: both backends timed ``args.repeats`` times, in turn, after a warm-up;
    odd repeats run onnxruntime first, so neither always follows the other."""
    embed(model, batch), embed(exported, batch)  # warm-up
    seconds = {"torch": [], "onnx": []}
    difference = 0.0
    for repeat in range(args.repeats):
        order = [("torch", model), ("onnx", exported)]
        outputs = {}
        for backend, encoder in order[:: 1 if repeat % 2 == 0 else -1]:
            elapsed, outputs[backend] = timed(lambda encoder=encoder: embed(encoder, batch))
            seconds[backend].append(elapsed)
        difference = max(difference, float((outputs["onnx"] - outputs["torch"]).abs().max()))
    ratio = statistics.median(t / o for t, o in zip(seconds["torch"], seconds["onnx"], strict=True))
    return (
        f"| {name} | {threads} | {batch:,} | {count / statistics.median(seconds['torch']):,.0f} | "
        f"{count / statistics.median(seconds['onnx']):,.0f} | {ratio:.2f} | {difference:.1e} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sets", type=int, default=4096, help="palettes embedded per call")
    parser.add_argument("--images", type=int, default=16384, help="8×8 images per call")
    parser.add_argument("--large-images", type=int, default=2048, help="64×64 images per call")
    parser.add_argument(
        "--threads", type=lambda text: [int(n) for n in text.split(",")], default=[2, 1],
        help="comma-separated thread counts, each given to both torch and onnxruntime",
    )  # fmt: skip
    args = parser.parse_args()
    torch.manual_seed(0)

    recipe = bundled_recipe("palette.yaml")
    palettes = build_palettes(recipe.data, synthetic_palettes(args.sets, seed=0).rows)
    sizes = palettes.sets.sizes.float()
    st = PaletteRun.from_recipe(recipe).model
    rows = compare(
        "set_transformer (palette.yaml), palettes",
        st,
        SetInputs(features=set_features(recipe.data)),
        lambda model, batch: embed_sets(model, palettes.sets, CPU, batch=batch),
        len(palettes.sets),
        args,
    )

    images_recipe = parse_recipe({"embedder": {"dim": 64}})
    digits = digits_images()[0]
    for size, images in [
        (8, digits.repeat(args.images // len(digits) + 1, 1, 1, 1)[: args.images]),
        (64, torch.rand(args.large_images, 1, 64, 64)),
    ]:
        cnn = build_model(images_recipe, image_size=size, in_channels=1)
        rows += compare(
            f"small_cnn + embedder, {size}×{size} images",
            cnn,
            ImageInputs(channels=1, size=size),
            lambda model, batch, images=images: embed_images(model, images, CPU, batch=batch),
            len(images),
            args,
        )

    text = "\n".join(
        [
            "# Embedding throughput: PyTorch vs onnxruntime",
            "",
            f"Command: `{command_line()}` ({date.today()}; {machine_line()}, the last row's; "
            f"{os.cpu_count()} CPU cores; onnxruntime {onnxruntime.__version__}, "
            "CPUExecutionProvider). The machine was shared with other heavy work while this ran "
            f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end), so "
            "absolute numbers are lower and noisier than on an idle machine, most of all with "
            "as many threads as cores. Each row gives both backends the same thread count "
            "(`torch.set_num_threads`, onnxruntime's `intra_op_num_threads`).",
            "",
            f"Same inputs, same batching (`embed_sets` / `embed_images`), only the model "
            f"swapped: the PyTorch module or its ONNX export (`embedforge export`) run by "
            f"onnxruntime. Palettes: {len(palettes.sets):,} synthetic palettes "
            f"({sizes.min():.0f}–{sizes.max():.0f} colours, mean {sizes.mean():.1f}), in "
            f"chunks sorted by size. Throughput is items per second over the whole call (median "
            f"of {args.repeats} repeats after a warm-up, the backends in turn, onnxruntime "
            "first in odd repeats); speed-up is the median of the repeats' torch/onnxruntime "
            "time ratios; max abs diff is the largest absolute difference between the two "
            "backends' embeddings over all repeats.",
            "",
            "| model, inputs | threads | batch | torch items/s | onnxruntime items/s | speed-up | "
            "max abs diff |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    write_report(Path(__file__).parent / "results" / "onnx_embed.md", text)


if __name__ == "__main__":
    main()
