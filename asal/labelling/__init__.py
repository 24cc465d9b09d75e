"""A person labels in the browser: ``asal label`` runs the one AL loop with a :class:`Person` as its annotator
and serves the labelling page (:mod:`asal.labelling.app`) over the session (:mod:`asal.labelling.session`).

A session of strategy S and seed k of experiment E keeps its files in ``results/E/labelling/S/``:
``seed<k>_journal.jsonl`` (every answer, as given), the loop's checkpoint while it runs, and at the end
``seed<k>.csv`` and ``seed<k>_indices.csv``, the files ``asal run-al`` writes.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from ..errors import BadConfig
from .journal import Journal
from .session import PERSON, LabelError, LabellingSession, Person

log = logging.getLogger(__name__)

#: Where a session's files go: ``{exp}``, ``{strategy}``, ``{seed}``.
SESSION = "results/{exp}/labelling/{strategy}/seed{seed}"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def session_paths(exp_name: str, strategy: str, seed: int, outputs=()) -> dict[str, Path]:
    """The files of one session: ``runs``, ``indices``, ``journal`` and each extra output of the strategy."""
    from ..paths import RUN_OUTPUTS

    base = SESSION.format(exp=exp_name, strategy=strategy, seed=seed)
    return {"runs": Path(f"{base}.csv"), "indices": Path(f"{base}_indices.csv"),
            "journal": Path(f"{base}_journal.jsonl"), **{kind: Path(base + RUN_OUTPUTS[kind][0]) for kind in outputs}}


def open_session(config_file: str, exp_name: str, *, strategy: str | None, seed: int, device,
                 score_batch_size: int | None = None, results: str | Path | None = None) -> LabellingSession:
    """The session of ``strategy`` (default: the experiment's first) and ``seed`` of experiment ``exp_name``
    in ``config_file``, over the files its pre-processing wrote (a clear error names any that is missing).
    ``results``: a folder for the session's files instead of :data:`SESSION`'s (a benchmark's)."""
    from ..config import experiment, load_config
    from ..data import read_split
    from ..paths import ADVISORY_FILES, path, run_inputs
    from ..settings import RunSettings
    from ..strategies import spec
    from ..strategies.base import load_strategy

    exp = experiment(load_config(config_file), exp_name)
    name = strategy or exp["strategies"][0]
    entry = spec(name)
    files = {kind: where for kind, where in run_inputs(entry, exp_name, exp).items()
             if kind not in ADVISORY_FILES or Path(where).exists()}  # no GAN verdict without labels: no warning
    missing = [f"{kind} ({where})" for kind, where in files.items() if not Path(where).exists()]
    if missing:
        raise BadConfig(f"strategy {name!r} of experiment {exp_name!r} needs {', '.join(missing)}: run "
                        f"`snakemake --cores 2 preprocess_{exp_name}` first")
    settings = RunSettings.of(entry.config_slice(exp), strategy=name, where=f"{config_file}: experiments.{exp_name}")
    loaded = load_strategy(name, settings=settings, device=device,
                           files={kind: where for kind, where in files.items() if kind not in ("pool", "test")})
    out = session_paths(exp_name, name, seed, entry.outputs)
    if results is not None:
        out = {kind: Path(results) / where.name for kind, where in out.items()}
    for where in out.values():
        where.parent.mkdir(parents=True, exist_ok=True)
    return LabellingSession(
        read_split(files["pool"]), read_split(files["test"]), strategy=loaded, settings=settings, seed=seed,
        device=device, out_csv=out["runs"], out_indices=out["indices"], journal=Journal(out["journal"]),
        outputs={kind: out[kind] for kind in entry.outputs}, experiment=exp_name,
        gan_samples=path("gan_samples", exp_name), score_batch_size=score_batch_size)


def serve(session: LabellingSession, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None) -> None:
    """Start the session's loop and serve its page until interrupted. Off localhost a token is required: the
    given one, else a fresh one, printed with the page's address."""
    from werkzeug.serving import make_server

    from .app import create_app

    if host not in LOOPBACK and not token:
        token = secrets.token_urlsafe(16)
    server = make_server(host, port, create_app(session, token=token), threaded=True)
    session.start()
    address = f"http://{host if ':' not in host else f'[{host}]'}:{server.server_port}/"
    print(f"labelling page: {address}{f'?token={token}' if token else ''}  (Ctrl-C to stop; answers are kept)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        session.close()


__all__ = ["PERSON", "Journal", "LabelError", "LabellingSession", "Person", "open_session", "serve", "session_paths"]
