"""What every stage shares about its tables: a unit's address, the activation cache's columns,
and an empty table of a schema. A leaf module (pandas only): editing the aggregation, the
statistics or the pages never reruns the jobs that write these tables."""

from __future__ import annotations

import pandas as pd

#: The columns that address a unit: the site (hidden, ffn), the hidden layer, the index within it.
UNIT = ["site", "layer", "neuron"]

def unit_rows(table: pd.DataFrame, site: str, layer: int, neuron: int) -> pd.DataFrame:
    """The rows of ``table`` (with the :data:`UNIT` columns) that belong to one unit."""
    return table[(table["site"] == site) & (table["layer"] == layer) & (table["neuron"] == neuron)]


#: Columns and dtypes of an activation cache shard: one row per (clip, unit), pooled over frames.
ACTIVATION_SCHEMA = {
    "clip_id": "str",
    "site": "str",
    "layer": "int32",
    "neuron": "int32",
    "mean": "float32",
    "std": "float32",
    "max": "float32",
}

#: Columns and dtypes of the long per-segment attribution table.
ATTRIBUTION_SCHEMA = {
    "clip_id": "str",
    "site": "str",
    "layer": "int32",
    "neuron": "int32",
    "segment": "int32",
    "start_s": "float32",
    "end_s": "float32",
    "attribution": "float32",
}
#: Columns and dtypes of the segment index written beside each safetensors shard.
SEGMENT_SCHEMA = {
    "clip_id": "str",
    "segment": "int32",
    "start_s": "float32",
    "end_s": "float32",
    "level_db": "float32",
    "loud": "bool",
}


#: Columns renamed in 0.2.0 (old name -> new): the energy flag was called "voiced", though a loud
#: unvoiced consonant counts. Readers of segment indexes, ablation summaries and the tables built
#: from them accept the old names until 0.3.0 (:func:`current_names`).
RENAMED_COLUMNS = {
    "voiced": "loud",
    "voiced_share": "loud_share",
    "voiced_time_share": "loud_time_share",
    "mean_voiced_share": "mean_loud_share",
    "mean_voiced_time_share": "mean_loud_time_share",
}


def current_names(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with any column of :data:`RENAMED_COLUMNS` under its new name (a table written by
    0.1.0 reads like one written now)."""
    old = {k: v for k, v in RENAMED_COLUMNS.items() if k in table.columns}
    return table.rename(columns=old) if old else table


def empty_table(schema: dict[str, str]) -> pd.DataFrame:
    """A table with no rows and the given columns and dtypes (an empty shard)."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in schema.items()})
