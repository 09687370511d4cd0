"""The `embedforge` command line.

Each sub-command imports its implementation lazily, so `embedforge --help`
answers at once instead of waiting for torch to load. A :class:`UserError`
becomes one line on stderr and exit code 2, with no traceback.
"""

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from embedforge import __version__
from embedforge.devices import DEVICE_CHOICES
from embedforge.errors import UserError


def _run_demo(args: argparse.Namespace) -> None:
    from embedforge.demo import run_demo

    run_demo(epochs=args.epochs, seed=args.seed)


def _run_train(args: argparse.Namespace) -> None:
    from embedforge.train.trainer import train_from_file

    train_from_file(args.recipe, args.out, args.set, resume=args.resume, overwrite=args.overwrite)


def _run_embed(args: argparse.Namespace) -> None:
    if args.engine == "ray":
        from embedforge.ray_embed import embed_with_ray

        embed_with_ray(
            args.run_dir,
            args.data,
            args.out,
            address=args.address,
            workers=args.workers,
            backend=args.backend,
            device=args.device,
            chunk_rows=args.chunk_rows,
            overwrite=args.overwrite,
        )
        return
    if args.workers is not None or args.address is not None:
        raise UserError(
            "--workers and --address are options of --engine ray; add --engine ray, or drop them"
        )
    from embedforge.embed import embed_file

    embed_file(
        args.run_dir,
        args.data,
        args.out,
        device=args.device,
        backend=args.backend,
        overwrite=args.overwrite,
        allow_changed_data=args.allow_changed_data,
        chunk_rows=args.chunk_rows,
    )


def _run_export(args: argparse.Namespace) -> None:
    from embedforge.export import export_run

    exported = export_run(args.run_dir, format=args.format, out=args.out, overwrite=args.overwrite)
    print(
        f"exported {args.run_dir} to {exported.path}: onnxruntime gives PyTorch's embeddings "
        f"within {exported.max_difference:.2g} on random batches"
    )


def _run_evaluate(args: argparse.Namespace) -> None:
    from embedforge.evaluate.evaluate_run import METRICS, evaluate_run, summary_line

    metrics = evaluate_run(args.run_dir, allow_changed_data=args.allow_changed_data)
    print(f"{summary_line(metrics)}: {Path(args.run_dir) / METRICS}")


def _run_report(args: argparse.Namespace) -> None:
    from embedforge.evaluate.report import write_report

    path = write_report(
        args.run_dir,
        out=args.out,
        overwrite=args.overwrite,
        allow_changed_data=args.allow_changed_data,
    )
    print(f"report: {path}")


def _run_quickstart(args: argparse.Namespace) -> None:
    from embedforge.quickstart import run_quickstart

    run_quickstart(Path(args.out), overwrite=args.overwrite)


def _run_ssl_compare(args: argparse.Namespace) -> None:
    from embedforge.experiments.ssl_compare import QUICK, run_ssl_compare

    defaults = QUICK if args.quick else {"size": 20_000, "epochs_scale": 1.0}
    if args.size is None:  # what --size and --epochs-scale do not set themselves
        args.size = defaults["size"]
    if args.epochs_scale is None:
        args.epochs_scale = defaults["epochs_scale"]
    if args.epochs_scale <= 0 or args.size < 30:
        raise UserError("--epochs-scale must be positive and --size at least 30")
    command = shlex.join(["embedforge", *args.argv])
    methods = [name.strip() for name in args.methods.split(",")] if args.methods else None
    run_ssl_compare(
        Path(args.out),
        epochs_scale=args.epochs_scale,
        size=args.size,
        command=command,
        train_runs=not args.no_train,
        methods=methods,
    )


def _run_list(args: argparse.Namespace) -> None:
    from embedforge.listing import describe

    print(describe(args.stages))


IVFPQ_OPTIONS = ("shards", "nlist", "nprobe", "pq_m", "rerank", "train_size", "target_recall")


def _run_index_build(args: argparse.Namespace) -> None:
    from embedforge.search import Searcher, build_ivfpq_search, check_search_folder

    given = {name: getattr(args, name) for name in IVFPQ_OPTIONS if getattr(args, name) is not None}
    if args.kind == "ivfpq":
        index = build_ivfpq_search(
            args.run_dir, args.data, args.out, overwrite=args.overwrite, metric=args.metric,
            progress=True, **given,
        )  # fmt: skip
        print(
            f"indexed {len(index)} objects (ivfpq, {args.metric}, {index.params['shards']} "
            f"shards, nprobe {index.params['nprobe']}): {args.out}"
        )
        return
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UserError(f"{options}: options of --kind ivfpq, not of --kind {args.kind}")
    check_search_folder(Path(args.out), overwrite=args.overwrite)  # before the embedding work
    searcher = Searcher.build(args.run_dir, args.data, metric=args.metric, kind=args.kind)
    searcher.save(args.out, overwrite=args.overwrite)
    print(f"indexed {len(searcher.index)} objects ({args.kind}, {args.metric}): {args.out}")


def _run_index_rebuild(args: argparse.Namespace) -> None:
    from embedforge.search import rebuild_index

    index = rebuild_index(args.index_dir)
    print(
        f"rebuilt the {index.kind} index of {len(index)} objects from its vectors: {args.index_dir}"
    )


def _run_search(args: argparse.Namespace) -> None:
    from embedforge.embed import check_output_path
    from embedforge.search import Searcher

    if args.out:
        check_output_path(args.out, overwrite=args.overwrite)
    searcher = Searcher.load(args.index_dir, rebuild=args.rebuild, nprobe=args.nprobe)
    neighbours = searcher.search(args.queries, k=args.k)
    if args.out:
        from embedforge.embed import write_embeddings

        write_embeddings(neighbours.set_index("query_id"), args.out, overwrite=args.overwrite)
        print(f"{len(neighbours)} neighbours written to {args.out}")
    else:
        print(neighbours.to_string(index=False))


def _add_overwrite(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace {what} if it exists (only ever one embedforge wrote)",
    )


def _add_allow_changed_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-changed-data",
        action="store_true",
        help="score the run's recorded split on its data as it is now, even though the data "
        "changed since training (the recorded items still there are used)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="embedforge",
        description="Learn embeddings for sets of weighted rows and for images, then use them.",
    )
    parser.add_argument("--version", action="version", version=f"embedforge {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="train a small embedding on scikit-learn's digits and print retrieval metrics",
        description=(
            "Train a small CNN with batch-hard triplet loss on 70%% of scikit-learn's digits "
            "and print P@1, R-precision and MAP@R for the held-out 30%% against it, next to "
            "the same metrics on raw pixels."
        ),
    )
    demo.add_argument("--epochs", type=int, default=100, help="training epochs (default 100)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(handler=_run_demo)

    train = commands.add_parser(
        "train",
        help="train the recipe in a YAML file into a run folder",
        description="Train a recipe. The run folder gets recipe.yaml, checkpoints/ and "
        "metrics.jsonl (one line per epoch with the validation metrics).",
    )
    train.add_argument("recipe", help="recipe YAML file (see configs/)")
    train.add_argument("--out", help="run folder (default runs/<recipe name>)")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. --set train.epochs=3 (repeatable)",
    )
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    _add_overwrite(train, "the run in --out (start it again)")
    train.set_defaults(handler=_run_train)

    embed = commands.add_parser(
        "embed",
        help="embed a palette table, or a run's own items, with a trained run",
        description="Embed every object of a palette table (palette.csv or color.csv layout, "
        "or the generic columns the run was trained with; a CSV or Parquet file, or a folder of "
        "part files) with the run's best weights: object_id, emb_0 ... emb_{d-1}, one row per "
        "object, in the order objects first appear. The table is streamed in chunks, so each "
        "object's rows must come together (e.g. sorted by id) unless a file fits in one chunk. "
        "Without DATA, embed the run's own training and held-out items: id, split, label, "
        "emb_0 ... Parquet or CSV by the extension of --out.",
    )
    embed.add_argument("run_dir", help="run folder (recipe.yaml + checkpoints/best.safetensors)")
    embed.add_argument(
        "data", nargs="?", help="palette table (CSV or Parquet); omit to embed the run's own "
        "training and held-out items (image runs)",
    )  # fmt: skip
    embed.add_argument(
        "--out", required=True,
        help="output file: .parquet or .csv; with --engine ray, a folder of Parquet part files",
    )  # fmt: skip
    embed.add_argument(
        "--engine", choices=("local", "ray"), default="local",
        help="local (default): this process; ray: a Ray Data job, one part file of DATA per "
        "task, on a pool of actors that each load the run once (pip install embedforge[ray])",
    )  # fmt: skip
    embed.add_argument(
        "--address", default=None, metavar="ADDR",
        help="--engine ray: the Ray cluster to join ('auto' in 'ray job submit'); default: "
        "start a local Ray",
    )  # fmt: skip
    embed.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="--engine ray: actors, one CPU each (default: one per part file, at most one per CPU)",
    )  # fmt: skip
    embed.add_argument(
        "--chunk-rows", type=int, default=None, metavar="N",
        help="palette table rows read at a time; memory follows it (default 131072)",
    )  # fmt: skip
    embed.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="(default auto)")
    embed.add_argument(
        "--backend", choices=("torch", "onnx"), default="torch",
        help="torch (default), or onnx: RUN_DIR/model.onnx from 'embedforge export' run by "
        "onnxruntime on the CPU (needs DATA)",
    )  # fmt: skip
    _add_overwrite(embed, "the --out file")
    _add_allow_changed_data(embed)
    embed.set_defaults(handler=_run_embed)

    export = commands.add_parser(
        "export",
        help="write a run's encoder as an ONNX model, checked against PyTorch",
        description="Export the run's embedding model with its best weights to ONNX (set "
        "encoders: inputs values (batch, set, features) float32 and mask (batch, set) bool; "
        "image encoders: images (batch, C, H, W); output embeddings (batch, d); batch and set "
        "size dynamic). The file is kept only if onnxruntime matches PyTorch within 1e-5 on "
        "random batches of varied sizes.",
    )
    export.add_argument("run_dir", help="run folder (recipe.yaml + checkpoints/best.safetensors)")
    export.add_argument("--format", default="onnx", help="onnx (default; the only one so far)")
    export.add_argument(
        "--out", help="output .onnx file (default RUN_DIR/model.onnx, what embed --backend onnx "
        "runs)",
    )  # fmt: skip
    _add_overwrite(export, "the --out file")
    export.set_defaults(handler=_run_export)

    evaluate = commands.add_parser(
        "evaluate",
        help="all metrics of a run's best checkpoint into RUN_DIR/metrics.json",
    )
    evaluate.add_argument("run_dir", help="a run folder (recipe.yaml + checkpoints/)")
    _add_allow_changed_data(evaluate)
    evaluate.set_defaults(handler=_run_evaluate)

    report = commands.add_parser(
        "report",
        help="one self-contained HTML page about a run (RUN_DIR/report.html)",
        description="Write recipe, training curves, metrics, UMAP map, similarity matrix "
        "and (re-id runs) the open-set threshold curve into one HTML file with the plots "
        "embedded. Re-evaluates when metrics.json is missing or older than the checkpoint.",
    )
    report.add_argument("run_dir", help="a run folder (recipe.yaml + checkpoints/)")
    report.add_argument("--out", help="HTML file to write (default RUN_DIR/report.html)")
    _add_overwrite(report, "an existing --out file")
    _add_allow_changed_data(report)
    report.set_defaults(handler=_run_report)

    quickstart = commands.add_parser(
        "quickstart",
        help="the whole pipeline on the bundled data, in a few minutes",
        description="On synthetic palettes and on scikit-learn's digits: train, export the "
        "embeddings, evaluate, build a search index, write the reports, and print where each "
        "file is.",
    )
    quickstart.add_argument(
        "--out", default="quickstart", help="folder for everything (default ./quickstart)"
    )
    _add_overwrite(quickstart, "an earlier quickstart folder")
    quickstart.set_defaults(handler=_run_quickstart)

    listing = commands.add_parser(
        "list",
        help="every registered component a recipe can name, with its keys",
        description="List the losses, encoders, data sources, samplers and view presets a "
        "recipe accepts: each with a one-line description and its keys (type = default).",
    )
    listing.add_argument(
        "stages", nargs="*", metavar="STAGE",
        help="losses, encoders, data, samplers or views (default: all)",
    )  # fmt: skip
    listing.set_defaults(handler=_run_list)

    experiment = commands.add_parser("experiment", help="run a whole comparison")
    experiments = experiment.add_subparsers(dest="experiment", metavar="NAME", required=True)
    ssl_compare = experiments.add_parser(
        "ssl-compare",
        help="which representation of dSprites shapes is good: SimCLR, VAE, supervised, ...",
        description="Train or load each encoder of the self-supervised comparison on "
        "procedural dSprites, probe its frozen features, and write results.md/json, "
        "few_shot.png, rsm.png and report.html to --out (runs/ holds the encoders; a killed "
        "run continues where it stopped).",
    )
    ssl_compare.add_argument(
        "--epochs-scale", type=float, default=None,
        help="multiply every schedule's epochs (default 1; 0.1 with --quick)",
    )  # fmt: skip
    ssl_compare.add_argument(
        "--size", type=int, default=None, help="dSprites images (default 20000; 2000 with --quick)"
    )
    ssl_compare.add_argument(
        "--methods", default=None,
        help="comma-separated methods to compare (default all: simclr,byol,simsiam,moco,"
        "barlow_twins,vicreg,dino); the baselines always run",
    )  # fmt: skip
    ssl_compare.add_argument(
        "--quick", action="store_true",
        help="1,500 images and a tenth of every schedule: every method and baseline in minutes",
    )  # fmt: skip
    ssl_compare.add_argument("--out", default="ssl_compare", help="output folder")
    ssl_compare.add_argument(
        "--no-train", action="store_true",
        help="train nothing: report the complete runs, list the others as pending",
    )  # fmt: skip
    ssl_compare.set_defaults(handler=_run_ssl_compare)

    index = commands.add_parser("index", help="build a search index over embedded data")
    index_commands = index.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    index_build = index_commands.add_parser(
        "build",
        help="embed DATA with a run and index it (FAISS, or exact torch search)",
    )
    index_build.add_argument("run_dir", help="a run folder (recipe.yaml + checkpoints/)")
    index_build.add_argument(
        "data", help="the collection to index: a palette table (palette runs), or a folder of "
        "images or a CSV with an 'image' column (runs trained on an image folder)",
    )  # fmt: skip
    index_build.add_argument("--out", required=True, help="index folder to write")
    index_build.add_argument("--metric", choices=("l2", "inner_product"), default="l2")
    index_build.add_argument(
        "--kind", choices=("flat", "ivf", "hnsw", "ivfpq"), default="flat",
        help="flat is exact; ivf or hnsw for large collections (need faiss); ivfpq: DATA is "
        "an embeddings table from 'embedforge embed' (a Parquet file or a folder of part "
        "files), indexed shard by shard into on-disk inverted lists",
    )  # fmt: skip
    ivfpq = index_build.add_argument_group("--kind ivfpq")
    ivfpq.add_argument("--shards", type=int, help="shards added one at a time (default 1)")
    ivfpq.add_argument("--nlist", type=int, help="inverted lists (default round(sqrt(n)))")
    ivfpq.add_argument(
        "--nprobe", type=int,
        help="lists visited per query, recorded (default: the fewest reaching --target-recall)",
    )  # fmt: skip
    ivfpq.add_argument(
        "--target-recall", type=float,
        help="recall@10 against exact search, measured on 1,000 of the table's rows, that the "
        "default nprobe must reach (default 0.95)",
    )  # fmt: skip
    ivfpq.add_argument(
        "--pq-m", type=int, help="PQ sub-quantisers, a divisor of the dimension (default ~dim/4)"
    )
    ivfpq.add_argument(
        "--rerank", type=int,
        help="candidates per neighbour re-ranked by exact distance (default 10; 0: off)",
    )  # fmt: skip
    ivfpq.add_argument(
        "--train-size", type=int, help="rows sampled to train on (default 50 per list, >= 10k)"
    )
    _add_overwrite(index_build, "the index folder in --out")
    index_build.set_defaults(handler=_run_index_build)
    index_rebuild = index_commands.add_parser(
        "rebuild",
        help="build INDEX_DIR's index again from its kept vectors, not reading its FAISS file",
        description="Build the index of INDEX_DIR (a folder from 'embedforge index build') "
        "again from its embeddings.npy, with the recorded kind and parameters, and replace "
        "index/ atomically; index.faiss is never read. The way to adopt a folder from "
        "elsewhere without trusting its FAISS file.",
    )
    index_rebuild.add_argument("index_dir", help="an index folder from 'embedforge index build'")
    index_rebuild.set_defaults(handler=_run_index_rebuild)

    search = commands.add_parser("search", help="nearest neighbours of query objects in an index")
    search.add_argument("index_dir", help="an index folder from 'embedforge index build'")
    search.add_argument(
        "queries", help="query palettes (CSV/Parquet), or query images (a folder, or a CSV "
        "with an 'image' column, names relative to the CSV's folder)",
    )  # fmt: skip
    search.add_argument("-k", type=int, default=10, help="neighbours per query (default 10)")
    search.add_argument("--out", help="write query_id, rank, neighbour_id, distance here")
    search.add_argument(
        "--rebuild", action="store_true",
        help="do not read INDEX_DIR's FAISS file: build the index again from its kept vectors "
        "(for a folder from elsewhere)",
    )  # fmt: skip
    search.add_argument(
        "--nprobe", type=int,
        help="lists an IVF or IVF-PQ index visits per query, instead of the recorded number",
    )  # fmt: skip
    _add_overwrite(search, "the --out file")
    search.set_defaults(handler=_run_search)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # what was asked for, for results that record their command
    if args.command is None:
        parser.print_help()
        return 0
    try:
        args.handler(args)
    except UserError as error:
        print(f"embedforge: error: {error}", file=sys.stderr)
        return 2
    return 0
