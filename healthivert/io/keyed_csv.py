"""A CSV table kept with the key it was computed from (``NAME.key.json`` beside it), so a
rerun with the same inputs reads it back instead of recomputing (measuring a phantom cohort
through the GAN takes about an hour on a 2-core CPU)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from healthivert.io.atomic import atomic_write_text


def key_path(path: str | Path) -> Path:
    """Where the key of the table at ``path`` is kept."""
    return Path(path).with_suffix(".key.json")


def _normal(key: dict) -> dict:
    return json.loads(json.dumps(key))  # tuples as lists, as read back from the file


def read_keyed_csv(path: str | Path, key: dict, text_columns: tuple[str, ...] = ()) -> pd.DataFrame | None:
    """The table at ``path`` if its stored key equals ``key``; None when absent, stale or unreadable.

    ``text_columns`` are read as strings with empty cells kept as "" (not NaN).
    """
    path = Path(path)
    if not (path.is_file() and key_path(path).is_file()):
        return None
    try:
        if json.loads(key_path(path).read_text(encoding="utf-8")) != _normal(key):
            return None
        return pd.read_csv(path, dtype={c: str for c in text_columns}).fillna({c: "" for c in text_columns})
    except (OSError, ValueError):  # unreadable or half-edited: recompute
        return None


def write_keyed_csv(path: str | Path, df: pd.DataFrame, key: dict) -> None:
    """Write the table, then its key (atomically each: a key never names a missing table)."""
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    key_path(path).unlink(missing_ok=True)  # no moment where an old key sits beside a new table
    atomic_write_text(path, buf.getvalue())
    atomic_write_text(key_path(path), json.dumps(_normal(key), indent=1) + "\n")
