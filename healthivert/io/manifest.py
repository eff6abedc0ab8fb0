"""Dataset manifests: VerSe 2019 Genant grades and splits, joined to a VerSe tree."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from healthivert.errors import InputError
from healthivert.io.verse_tree import read_verse_tree
from healthivert.labels import VERSE_NAMES

MANIFEST_COLUMNS = ["subject", "vertebra_label", "vertebra", "genant_grade", "split"]
SPLITS = {"train", "val", "test"}


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read and check a manifest CSV (one row per graded vertebra)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such manifest")
    try:
        df = pd.read_csv(path, dtype={"subject": str, "vertebra": str, "split": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable CSV ({exc})") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path}: manifest lacks columns {missing}")
    df = df[MANIFEST_COLUMNS].copy()
    bad_grade = ~df["genant_grade"].isin([0, 1, 2, 3])
    bad_label = ~df["vertebra_label"].isin(list(VERSE_NAMES))
    bad_split = ~df["split"].isin(SPLITS)
    for mask, what in ((bad_grade, "genant_grade"), (bad_label, "vertebra_label"), (bad_split, "split")):
        if mask.any():
            row = int(mask.idxmax()) + 2
            value = df.loc[mask.idxmax(), what]
            value = value.item() if hasattr(value, "item") else value  # 4, not np.int64(4)
            raise InputError(f"{path}: line {row}: bad {what} {value!r}")
    return df.astype({"vertebra_label": int, "genant_grade": int})


def build_verse2019_manifest(source_csv: str | Path) -> pd.DataFrame:
    """The project's manifest from the VerSe 2019 grade table (checked, sorted)."""
    df = read_manifest(source_csv)
    names = df["vertebra_label"].map(VERSE_NAMES)
    if (names != df["vertebra"]).any():
        bad = df[names != df["vertebra"]].iloc[0]
        raise InputError(f"{source_csv}: label {bad.vertebra_label} is named {bad.vertebra!r}")
    return df.sort_values(["subject", "vertebra_label"]).reset_index(drop=True)


def join_manifest_to_tree(manifest: pd.DataFrame, root: str | Path) -> pd.DataFrame:
    """Add each graded vertebra's study files (ct, mask, centroids) from a VerSe tree.

    Subjects absent from the tree get empty paths; ``missing`` lists what each row lacks.
    """
    studies = {s.subject: s for s in read_verse_tree(root)}
    rows = []
    for subject in manifest["subject"]:
        s = studies.get(subject)
        rows.append({
            "ct": str(s.ct) if s and s.ct else "",
            "mask": str(s.mask) if s and s.mask else "",
            "centroids": str(s.centroids) if s and s.centroids else "",
            "missing": ";".join(s.missing) if s else "study",
        })
    return pd.concat([manifest.reset_index(drop=True), pd.DataFrame(rows)], axis=1)
