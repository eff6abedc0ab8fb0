"""The results folder the viewer was started on, and the only files it may read.

Every path the viewer builds from study ids or vertebra names is resolved (symlinks
followed) and checked to lie inside the results folder. Study ids are validated against
the list discovered on disk, never used as given. The one exception is a study's own
recorded inputs (``result.json`` -> ``inputs``: the user's CT and mask), which may lie
anywhere: they are read exactly as recorded, never from anything a browser sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from healthivert.errors import InputError
from healthivert.io.ids import is_safe_name
from healthivert.report.contract import RESULT_FILE, ResultContractError, read_result_file


class UnsafePathError(InputError):
    """A requested path lies outside the results folder (``..``, absolute path or symlink)."""


class UnknownStudyError(InputError):
    """A study id that is not one of the studies discovered in the results folder."""


def resolve_inside(root: str | Path, *parts: str | Path) -> Path:
    """``root / parts`` resolved (symlinks followed), refused unless it stays inside ``root``.

    Args:
        root: a folder; resolved first.
        parts: relative path components; absolute ones and ``..`` escapes are refused.

    Raises:
        UnsafePathError: an absolute part, or a result outside ``root``.
    """
    base = Path(root).resolve()
    for part in parts:
        if Path(part).is_absolute() or Path(part).drive:
            raise UnsafePathError(f"{part}: absolute paths are not accepted")
    target = base.joinpath(*parts).resolve()
    if target != base and not target.is_relative_to(base):
        raise UnsafePathError(f"{Path(*parts) if parts else '.'}: lies outside the results folder {base}")
    return target


@dataclass
class ResultsFolder:
    """A folder of study result folders (each with ``result.json``), or one study folder.

    Attributes:
        root: the resolved folder the viewer may read.
        studies: study id (from ``result.json``) -> its resolved folder inside ``root``.
        problems: one line per folder that was skipped, and why (a result.json that does not
            follow the result contract is listed as unreadable, with the reason).
    """

    root: Path
    studies: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # result.json path -> ((mtime_ns, size), its checked content): the viewer reruns its script
    # on every click and would otherwise parse and validate every study's file each time
    _checked: dict[Path, tuple[tuple[int, int], dict]] = field(default_factory=dict, repr=False)

    def read_result(self, path: Path) -> dict:
        """A result.json inside this folder, read and checked against the contract once per
        version of the file (keyed by its modification time and size). Callers must not change it.

        Raises:
            ResultContractError: it cannot be read or does not follow the result contract.
        """
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        cached = self._checked.get(path)
        if stamp is not None and cached is not None and cached[0] == stamp:
            return cached[1]
        result = read_result_file(path)
        if stamp is not None:
            self._checked[path] = (stamp, result)
        return result

    @classmethod
    def open(cls, path: str | Path) -> ResultsFolder:
        """Discover the studies under ``path``.

        Raises:
            InputError: ``path`` is not a folder.
        """
        root = Path(path).expanduser().resolve()
        if not root.is_dir():
            raise InputError(f"{path}: not a folder of results")
        folder = cls(root)
        folder.refresh()
        return folder

    @property
    def single_study(self) -> bool:
        """True when the folder is itself one study's result folder."""
        return (self.root / RESULT_FILE).is_file()

    def refresh(self) -> None:
        """Re-scan the folder (a batch may still be adding studies)."""
        self.studies, self.problems = {}, []
        if self.single_study:
            candidates = [self.root]
        else:  # study folders, and those of a batch output (DIR/studies/<id>/)
            parents = [self.root] + [p for p in (self.root / "studies",) if p.is_dir() and not p.is_symlink()]
            candidates = sorted(
                p for parent in parents for p in parent.iterdir()
                if not p.name.startswith(".") and p.name != "studies"  # .x.part: being written
            )
        for candidate in candidates:
            self._add(candidate)

    def _add(self, candidate: Path) -> None:
        try:
            folder = resolve_inside(self.root, candidate.relative_to(self.root))
            result = resolve_inside(self.root, candidate.relative_to(self.root), RESULT_FILE)
        except UnsafePathError:
            self.problems.append(f"{candidate.name}: skipped, it points outside the results folder")
            return
        if not folder.is_dir() or not result.is_file():
            return
        try:
            study_id = self.read_result(result)["study_id"]
        except ResultContractError as exc:
            self.problems.append(f"{candidate.name}: unreadable {exc}")
            return
        if not is_safe_name(study_id):
            self.problems.append(f"{candidate.name}: skipped, unsafe study id {study_id!r}")
        elif study_id in self.studies:
            # a folder named like its study wins; otherwise the first in name order
            kept, skipped = self.studies[study_id], folder
            if candidate.name == study_id:
                kept, skipped = folder, kept
            self.studies[study_id] = kept
            self.problems.append(f"{skipped.name}: skipped, study id {study_id!r} also in {kept.name}")
        else:
            self.studies[study_id] = folder

    def set_aside(self, study_id: str, error: ResultContractError) -> None:
        """Drop a discovered study whose result.json can no longer be read, listing it as unreadable."""
        folder = self.studies.pop(study_id, None)
        if folder is not None:
            self.problems.append(f"{folder.name}: unreadable {error}")

    def study_dir(self, study_id: object) -> Path:
        """The folder of a discovered study.

        Raises:
            UnknownStudyError: ``study_id`` is not a discovered study (whatever it contains).
        """
        if not isinstance(study_id, str) or study_id not in self.studies:
            raise UnknownStudyError(f"no study {str(study_id)[:80]!r} in {self.root}")
        return self.studies[study_id]

    def study_file(self, study_id: object, *parts: str) -> Path:
        """A file inside a discovered study's folder (checked to stay inside the results folder)."""
        folder = self.study_dir(study_id)
        return resolve_inside(self.root, folder.relative_to(self.root), *parts)
