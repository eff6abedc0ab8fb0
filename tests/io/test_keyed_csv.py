"""Tables kept with the key they were computed from (healthivert/io/keyed_csv.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from healthivert.io.keyed_csv import key_path, read_keyed_csv, write_keyed_csv

KEY = {"phantom": {"seed": 1000, "n_fractures": (1, 3)}, "synthesizer": "gan"}


def _table() -> pd.DataFrame:
    return pd.DataFrame({"study_id": ["a", "b"], "morphology": ["", "wedge"], "rhlv_middle": [0.1, np.nan]})


def test_a_table_reads_back_only_under_its_own_key(tmp_path):
    path = tmp_path / "cache" / "features.csv"
    write_keyed_csv(path, _table(), KEY)
    assert key_path(path).name == "features.key.json"
    back = read_keyed_csv(path, {**KEY, "phantom": {"seed": 1000, "n_fractures": [1, 3]}}, ("morphology",))
    assert back["morphology"].tolist() == ["", "wedge"]  # no NaN for an empty text cell
    assert back["rhlv_middle"].iloc[0] == 0.1 and np.isnan(back["rhlv_middle"].iloc[1])
    assert read_keyed_csv(path, {**KEY, "synthesizer": "prior"}) is None
    assert read_keyed_csv(tmp_path / "absent.csv", KEY) is None


def test_a_table_without_a_readable_key_is_not_trusted(tmp_path):
    path = tmp_path / "features.csv"
    write_keyed_csv(path, _table(), KEY)
    key_path(path).write_text('{"phantom": ', encoding="utf-8")
    assert read_keyed_csv(path, KEY) is None
    key_path(path).unlink()
    assert read_keyed_csv(path, KEY) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.csv"]  # no temporary left behind
