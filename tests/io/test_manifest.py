"""Dataset manifests: the shipped VerSe 2019 list and the checks on any manifest CSV."""

from __future__ import annotations

import pandas as pd
import pytest

from healthivert.errors import InputError
from healthivert.io import build_verse2019_manifest, read_manifest
from healthivert.io.manifest import MANIFEST_COLUMNS
from tests.helpers import PROJECT_ROOT, shared_path

VERSE2019 = PROJECT_ROOT / "data_manifests" / "verse2019.csv"


def test_verse2019_manifest_shape():
    raw = pd.read_csv(VERSE2019)
    assert list(raw.columns) == ["subject", "vertebra_label", "vertebra", "genant_grade", "split"]
    assert len(raw) == 1460
    df = read_manifest(VERSE2019)
    assert len(df) == 1460
    assert set(df["split"]) == {"train", "val", "test"}
    assert set(df["genant_grade"]) <= {0, 1, 2, 3}
    assert not df.duplicated(["subject", "vertebra_label"]).any()


@pytest.mark.realdata
def test_verse2019_manifest_matches_its_source():
    source = shared_path("manifests/verse2019_genant_grades.csv")
    built = build_verse2019_manifest(source)
    shipped = read_manifest(VERSE2019)
    pd.testing.assert_frame_equal(shipped, built)


_HEADER = ",".join(MANIFEST_COLUMNS)


@pytest.mark.parametrize(
    "text, message",
    [
        ("subject,vertebra_label,genant_grade\nsub-a,20,1\n", "manifest lacks columns ['vertebra', 'split']"),
        (f"{_HEADER}\nsub-a,20,L1,1,train\nsub-a,21,L2,4,train\n", "line 3: bad genant_grade 4"),
        (f"{_HEADER}\nsub-a,27,L1,1,train\n", "line 2: bad vertebra_label 27"),
        (f"{_HEADER}\nsub-a,20,L1,1,holdout\n", "line 2: bad split 'holdout'"),
        ("", "not a readable CSV"),
    ],
)
def test_read_manifest_checks_rows(tmp_path, text, message):
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_manifest(path)
    assert message in str(info.value)


def test_build_manifest_checks_names_and_sorts(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(f"{_HEADER}\nsub-b,20,L1,0,val\nsub-a,21,L2,1,train\nsub-a,20,L1,2,train\n")
    df = build_verse2019_manifest(path)
    assert list(zip(df["subject"], df["vertebra_label"])) == [("sub-a", 20), ("sub-a", 21), ("sub-b", 20)]
    path.write_text(f"{_HEADER}\nsub-a,20,T12,1,train\n")
    with pytest.raises(InputError, match="label 20 is named 'T12'"):
        build_verse2019_manifest(path)
    with pytest.raises(InputError, match="no such manifest"):
        read_manifest(tmp_path / "none.csv")
