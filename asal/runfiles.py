"""The columns of a run's files, without torch: ``asal summarize`` and the plots read runs through these.

A run writes one row per cycle (:data:`ROW_COLUMNS`) and one row per pool sample it took (:data:`INDEX_COLUMNS`).
"""

from __future__ import annotations

#: Per-cycle diagnostics a strategy or its annotator may report (NaN in the rows of the others).
DIAGNOSTICS = ("synthetic_entropy_start", "synthetic_entropy", "match_distance", "generate_seconds",
               "features_seconds", "search_seconds", "rerank_scored", "oracle_confidence", "coreset_radius",
               "ascent_steps")
#: A cycle's reads of a pool kept on disk (:mod:`asal.data.rows`): images read (training, selection and its
#: figures) and the seconds they took; NaN for a pool held in memory.
IO_COLUMNS = ("pool_rows_read", "read_seconds")
ROW_COLUMNS = [
    "strategy", "seed", "cycle", "n_labelled", "test_accuracy", "n_selected", "selected_entropy",
    "select_seconds", "train_seconds", *DIAGNOSTICS, *IO_COLUMNS,
]
#: ``label`` is the annotator's class id, -1 where none was given (skipped, or an ADBA line's centre);
#: ``cycle`` the first cycle whose model trains on the row (0 for the initial set).
INDEX_COLUMNS = ["pool_idx", "label", "cycle"]
