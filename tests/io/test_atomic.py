"""Atomic writes: a failure never leaves a file or folder that looks complete, nor temp litter."""

from __future__ import annotations

import pytest

from healthivert.io.atomic import atomic_directory, atomic_write, atomic_write_npz, atomic_write_text


class Boom(RuntimeError):
    pass


def test_atomic_directory_leaves_nothing_when_the_body_raises(tmp_path):
    target = tmp_path / "out" / "study"
    with pytest.raises(Boom):
        with atomic_directory(target) as tmp:
            (tmp / "result.json").write_text("{}")
            (tmp / "maps").mkdir()
            raise Boom
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_atomic_directory_keeps_the_old_directory_when_the_body_raises(tmp_path):
    target = tmp_path / "study"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(Boom):
        with atomic_directory(target) as tmp:
            (tmp / "new.txt").write_text("new")
            raise Boom
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["study"]


@pytest.mark.parametrize("existing", [False, True])
def test_atomic_directory_appears_complete(tmp_path, existing):
    target = tmp_path / "study"
    if existing:
        target.mkdir()
        (target / "old.txt").write_text("old")
    with atomic_directory(target) as tmp:
        assert tmp != target and tmp.parent == tmp_path
        assert not (target / "result.json").exists()
        (tmp / "result.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["result.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["study"]


def test_atomic_write_leaves_no_temp_file_on_error(tmp_path):
    target = tmp_path / "sub" / "mask.nii.gz"

    def half_then_fail(tmp):
        assert tmp.name.endswith(".nii.gz") and tmp.parent == target.parent  # writers pick format by suffix
        tmp.write_bytes(b"half a file")
        raise Boom

    with pytest.raises(Boom):
        atomic_write(target, half_then_fail)
    assert list(target.parent.iterdir()) == []


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    target = atomic_write_text(tmp_path / "result.json", "old")

    def fail(tmp):
        tmp.write_text("new, half")
        raise Boom

    with pytest.raises(Boom):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_atomic_write_replaces(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    assert atomic_write_text(tmp_path / "a.txt", "two") == tmp_path / "a.txt"
    assert (tmp_path / "a.txt").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_write_npz_keeps_the_name_and_the_arrays(tmp_path):
    import numpy as np

    path = atomic_write_npz(tmp_path / "cache.npz", {"a": np.arange(3), "b": np.ones((2, 2), np.float16)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.npz"]  # no ".npz.npz", no temp left
    with np.load(path) as data:
        assert data["a"].tolist() == [0, 1, 2] and data["b"].dtype == np.float16
