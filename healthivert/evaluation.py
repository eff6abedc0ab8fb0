"""Graded results against expert Genant grades: the numbers a paper's table reports.

Results come from one study result folder (``result.json``), a folder of them, a batch output
folder (``studies/<id>/result.json``, and ``failed.csv``) or a per-vertebra CSV
(``vertebrae.csv`` / ``cohort.csv`` columns). Truth is a CSV naming the study (``subject`` or
``study_id``), the vertebra (``vertebra_label``/``label`` as a VerSe number, or
``vertebra``/``name`` as "L1") and the grade (``genant_grade`` or ``grade``), e.g.
``data_manifests/verse2019.csv`` (shipped as ``healthivert/data/verse2019.csv``).

Matching is by (study id, VerSe label). A result's study id matches a truth subject when they
are equal, or when the result id is the truth id followed by a suffix that starts with ``_``,
``-`` or ``.`` (``sub-verse008_ct`` -> ``sub-verse008``) and exactly one truth id fits that
way; an ambiguous id is left unmatched and named in the notes. Only studies present in both
are evaluated; within them every truth vertebra counts: one missing from the results is
"not graded: missing from the results" (a batch study in ``failed.csv``: "study failed"),
and result vertebrae without a truth row are counted, not scored. VerSe 2019's split scans
(one study each in a batch, ``sub-verse400_split-verse090``) are ``sub-verse400_series0`` /
``_series1`` in the shipped manifest, which does not record which split is which series: they
are left unmatched and named in the notes (rename the results to match).

Two views: over the *graded* vertebrae only (per-grade and macro P/R/F1, exact agreement,
linear-weighted kappa, confusion matrix, fracture sensitivity/specificity with 95 % Wilson
intervals), and *intention-to-diagnose* over every truth vertebra, where a vertebra that was
not graded counts as a miss.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from healthivert.errors import InputError
from healthivert.io.atomic import atomic_write_text
from healthivert.io.csv_text import csv_text
from healthivert.labels import NAME_TO_VERSE, SPINE_ORDER, VERSE_NAMES

GRADES = (0, 1, 2, 3)
GRADE_NAMES = {0: "normal", 1: "mild", 2: "moderate", 3: "severe"}
THRESHOLDS = (1, 2)  # a fracture is grade >= 1, or (moderate/severe) grade >= 2
Z95 = 1.959963984540054  # two-sided 95 % normal quantile

#: the truth manifest shipped in the package (used when no --grades is given); the checkout's
#: data_manifests/verse2019.csv links to it
DEFAULT_GRADES = Path(__file__).resolve().parent / "data" / "verse2019.csv"

RESULT_COLUMNS = ["study_id", "label", "name", "genant_grade", "status"]
TRUTH_COLUMNS = ["study_id", "label", "name", "truth_grade"]
PER_VERTEBRA_COLUMNS = ["study_id", "label", "name", "truth_grade", "predicted_grade", "status"]

MISSING = "not graded: missing from the results"
ITD_CONVENTION = ("every truth vertebra of the evaluated studies counts; one that was not graded is a miss: "
                  "a not-graded fracture (truth >= threshold) is a false negative, a not-graded "
                  "non-fracture a false positive, and a not-graded vertebra never agrees exactly")

# accepted spellings of each column, in order of preference
_ID_COLUMNS = ("study_id", "subject")
_LABEL_COLUMNS = ("label", "vertebra_label")
_NAME_COLUMNS = ("name", "vertebra")
_RESULT_GRADE_COLUMNS = ("genant_grade", "grade", "predicted_grade")
_TRUTH_GRADE_COLUMNS = ("genant_grade", "grade", "truth_grade")
_NULL = {"", "nan", "na", "n/a", "none", "null", "<na>"}
_ID_SUFFIX_START = "_-."


# ---------------------------------------------------------------- statistics


def wilson_interval(successes: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / total`` (95 % by default)."""
    if total <= 0:
        raise ValueError("a proportion needs total > 0")
    p = successes / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Proportion:
    """``successes`` of ``total``, with its 95 % Wilson interval (None when total is 0)."""

    successes: int
    total: int

    @property
    def value(self) -> float | None:
        return self.successes / self.total if self.total else None

    @property
    def ci95(self) -> tuple[float, float] | None:
        return wilson_interval(self.successes, self.total) if self.total else None

    def to_dict(self) -> dict:
        ci = self.ci95
        return {"successes": self.successes, "total": self.total, "value": _round(self.value),
                "ci95": None if ci is None else [_round(ci[0]), _round(ci[1])]}

    def text(self) -> str:
        """``0.800 (8/10; 0.490-0.943)``, or ``- (0/0)``."""
        if not self.total:
            return "- (0/0)"
        lo, hi = self.ci95
        return f"{self.value:.3f} ({self.successes}/{self.total}; {lo:.3f}-{hi:.3f})"


@dataclass(frozen=True)
class FractureDetection:
    """Fracture = grade >= ``threshold``: counts, sensitivity and specificity."""

    threshold: int
    tp: int
    fn: int
    tn: int
    fp: int

    @property
    def sensitivity(self) -> Proportion:
        return Proportion(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> Proportion:
        return Proportion(self.tn, self.tn + self.fp)

    def to_dict(self) -> dict:
        return {"tp": self.tp, "fn": self.fn, "tn": self.tn, "fp": self.fp,
                "sensitivity": self.sensitivity.to_dict(), "specificity": self.specificity.to_dict()}


@dataclass(frozen=True)
class GradedMetrics:
    """Agreement over the vertebrae that were graded and have a truth grade."""

    precision: dict[int, float]
    recall: dict[int, float]
    f1: dict[int, float]
    support: dict[int, int]  # truth count per grade
    predicted: dict[int, int]  # predicted count per grade
    macro: dict[str, float]  # over grades 0-3 (the paper's metric)
    grades_in_truth: tuple[int, ...]
    macro_in_truth: dict[str, float]  # over the grades present in the truth only
    exact: Proportion
    kappa_linear: float | None  # None where undefined (one grade only)
    confusion: list[list[int]]  # rows truth 0-3, columns predicted 0-3
    fracture: dict[int, FractureDetection]

    def to_dict(self) -> dict:
        return {
            "per_grade": {str(g): {"precision": _round(self.precision[g]), "recall": _round(self.recall[g]),
                                   "f1": _round(self.f1[g]), "support": self.support[g],
                                   "predicted": self.predicted[g]} for g in GRADES},
            "macro_grades_0_3": {k: _round(v) for k, v in self.macro.items()},
            "macro_grades_in_truth": {"grades": list(self.grades_in_truth),
                                      **{k: _round(v) for k, v in self.macro_in_truth.items()}},
            "exact_agreement": self.exact.to_dict(),
            "kappa_linear": _round(self.kappa_linear),
            "confusion": {"rows": "truth grade 0-3", "columns": "predicted grade 0-3", "matrix": self.confusion},
            "fracture": {f"grade>={t}": m.to_dict() for t, m in self.fracture.items()},
        }


@dataclass(frozen=True)
class EvaluationReport:
    """Everything :func:`evaluate` found; :meth:`to_dict` is ``metrics.json``."""

    results_source: str
    truth_source: str
    studies: list[str]  # evaluated (truth ids)
    studies_without_truth: list[str]  # result ids with no truth study (not scored)
    id_matches: dict[str, str]  # result id -> truth id, where they differ
    n_truth: int
    n_graded: int
    not_graded_reasons: dict[str, int]  # reason group -> count, most frequent first
    not_graded_by_truth: dict[int, int]  # truth grade -> not-graded count
    n_result_without_truth: int  # result vertebrae of evaluated studies with no truth row
    graded: GradedMetrics | None  # None when no vertebra was graded
    itd_exact: Proportion
    itd_fracture: dict[int, FractureDetection]
    per_vertebra: pd.DataFrame = field(repr=False)  # PER_VERTEBRA_COLUMNS
    notes: list[str] = field(default_factory=list)

    @property
    def n_not_graded(self) -> int:
        return self.n_truth - self.n_graded

    def to_dict(self) -> dict:
        return {
            "results": self.results_source,
            "truth": self.truth_source,
            "studies": {"evaluated": self.studies, "without_truth": self.studies_without_truth,
                        "id_matches": self.id_matches},
            "counts": {"truth_vertebrae": self.n_truth, "graded": self.n_graded, "not_graded": self.n_not_graded,
                       "not_graded_reasons": self.not_graded_reasons,
                       "not_graded_by_truth_grade": {str(g): self.not_graded_by_truth[g] for g in GRADES},
                       "result_vertebrae_without_truth": self.n_result_without_truth},
            "graded": None if self.graded is None else self.graded.to_dict(),
            "intention_to_diagnose": {
                "convention": ITD_CONVENTION,
                "exact_agreement": self.itd_exact.to_dict(),
                "fracture": {f"grade>={t}": m.to_dict() for t, m in self.itd_fracture.items()},
            },
            "notes": self.notes,
        }


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


# ---------------------------------------------------------------- reading


def _is_null(cell: str) -> bool:
    return cell.strip().lower() in _NULL


def _parse_label(cell: str, where: str) -> int:
    text = cell.strip()
    try:
        number = float(text)
    except ValueError:
        label = NAME_TO_VERSE.get(text.upper())
        if label is None:
            raise InputError(f"{where}: {text!r} is not a vertebra (a VerSe label or a name like L1)") from None
        return label
    if not number.is_integer() or int(number) not in VERSE_NAMES:
        raise InputError(f"{where}: {text!r} is not a VerSe vertebra label")
    return int(number)


def _parse_grade(cell: object, where: str, allow_null: bool) -> int | None:
    """A Genant grade 0-3 from a CSV cell or a JSON value; None for an empty cell where allowed."""
    if cell is None or (isinstance(cell, str) and _is_null(cell)):
        if allow_null:
            return None
        raise InputError(f"{where}: no grade")
    if isinstance(cell, bool):
        raise InputError(f"{where}: grade {cell!r} is not 0-3")
    try:
        number = float(cell)
    except (TypeError, ValueError):
        raise InputError(f"{where}: grade {cell!r} is not 0-3") from None
    if not number.is_integer() or int(number) not in GRADES:
        raise InputError(f"{where}: grade {cell!r} is not 0-3")
    return int(number)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable CSV ({' '.join(str(exc).split())})") from None


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {c.strip().lower(): c for c in columns}
    return next((lowered[n] for n in names if n in lowered), None)


def _vertebra_table(df: pd.DataFrame, source: Path, grade_columns: tuple[str, ...], truth: bool) -> pd.DataFrame:
    """Normalise a per-vertebra CSV to study_id, label, name, grade (and status for results)."""
    cols = list(df.columns)
    id_col, label_col = _pick(cols, _ID_COLUMNS), _pick(cols, _LABEL_COLUMNS)
    name_col, grade_col = _pick(cols, _NAME_COLUMNS), _pick(cols, grade_columns)
    status_col = None if truth else _pick(cols, ("status",))
    missing = [what for what, col in (("study id (" + " or ".join(_ID_COLUMNS) + ")", id_col),
                                      ("vertebra (" + " or ".join(_LABEL_COLUMNS + _NAME_COLUMNS) + ")",
                                       label_col or name_col),
                                      ("grade (" + " or ".join(grade_columns) + ")", grade_col)) if col is None]
    if missing:
        raise InputError(f"{source}: no column for {'; '.join(missing)}; columns are {', '.join(cols) or 'none'}")
    rows = []
    for i, row in enumerate(df.to_dict("records")):
        where = f"{source}: line {i + 2}"
        study = row[id_col].strip()
        if not study:
            raise InputError(f"{where}: no study id")
        if label_col is not None:
            label = _parse_label(row[label_col], where)
            if name_col is not None and not _is_null(row[name_col]):
                named = _parse_label(row[name_col], where)
                if named != label:
                    raise InputError(f"{where}: label {label} ({VERSE_NAMES[label]}) disagrees with "
                                     f"{name_col} {row[name_col].strip()!r}")
        else:
            label = _parse_label(row[name_col], where)
        grade = _parse_grade(row[grade_col], where, allow_null=not truth)
        rec = {"study_id": study, "label": label, "name": VERSE_NAMES[label], "grade": grade}
        if not truth:
            status = row[status_col].strip() if status_col else ""
            rec["status"] = status or ("graded" if grade is not None else "not graded")
        rows.append(rec)
    return pd.DataFrame(rows, columns=["study_id", "label", "name", "grade"] + ([] if truth else ["status"]))


def _check_unique(df: pd.DataFrame, source: str) -> None:
    rows = df[df["label"].notna()]
    dup = rows.duplicated(["study_id", "label"], keep=False)
    if dup.any():
        pairs = sorted({f"{s} {VERSE_NAMES[int(lab)]}" for s, lab in rows.loc[dup, ["study_id", "label"]].values})
        raise InputError(f"{source}: {len(pairs)} (study, vertebra) pair(s) appear more than once, e.g. "
                         f"{', '.join(pairs[:3])}")


def _study_folders(path: Path) -> list[Path]:
    """Result folders under ``path``: itself, its sub-folders, and a batch's ``studies/*/``."""
    if (path / "result.json").is_file():
        return [path]
    parents = [path] + [p for p in (path / "studies",) if p.is_dir()]
    return sorted(p for parent in parents for p in parent.iterdir()
                  if not p.name.startswith(".") and p.is_dir() and (p / "result.json").is_file())


def _read_result_json(folder: Path) -> tuple[str, list[dict]]:
    """A result folder's study id and its vertebra rows."""
    file = folder / "result.json"
    try:
        result = json.loads(file.read_text(encoding="utf-8"))
        study, vertebrae = result["study_id"], result["vertebrae"]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{file}: unreadable ({' '.join(str(exc).split())})") from None
    except (KeyError, TypeError):
        raise InputError(f"{file}: not a result (needs study_id and vertebrae)") from None
    if not isinstance(study, str) or not study or not isinstance(vertebrae, list):
        raise InputError(f"{file}: not a result (needs study_id and vertebrae)")
    rows = []
    for i, v in enumerate(vertebrae):
        where = f"{file}: vertebra {i + 1}"
        if not isinstance(v, dict) or "label" not in v or "genant_grade" not in v:
            raise InputError(f"{where}: needs label and genant_grade")
        label = _parse_label(str(v["label"]), where)
        grade = _parse_grade(v["genant_grade"], f"{where} ({VERSE_NAMES[label]})", allow_null=True)
        status = str(v.get("status") or "").strip() or ("graded" if grade is not None else "not graded")
        rows.append({"study_id": study, "label": label, "name": VERSE_NAMES[label], "genant_grade": grade,
                     "status": status})
    return study, rows


def _failed_studies(path: Path, done: set[str]) -> list[dict]:
    """Marker rows (label <NA>) for a batch's failed studies that have no result."""
    failed = path / "failed.csv"
    if not failed.is_file() or not (path / "studies").is_dir():
        return []
    df = _read_csv(failed)
    if "study_id" not in df.columns:
        return []
    reasons = df["reason"] if "reason" in df.columns else pd.Series([""] * len(df))
    return [{"study_id": s.strip(), "label": None, "name": "", "genant_grade": None,
             "status": f"study failed: {r.strip() or 'no reason recorded'}"}
            for s, r in zip(df["study_id"], reasons) if s.strip() and s.strip() not in done]


def load_results(path: str | Path) -> pd.DataFrame:
    """Per-vertebra results as a DataFrame with :data:`RESULT_COLUMNS`.

    ``genant_grade`` is <NA> for a vertebra that was not graded (``status`` says why). A batch
    folder's failed studies (``failed.csv``) appear as one row each with label <NA> and status
    "study failed: <reason>", so their truth vertebrae count as not graded, not as absent.

    Raises:
        InputError: unreadable or malformed input, grades outside 0-3, duplicate (study, label).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file():
        table = _vertebra_table(_read_csv(path), path, _RESULT_GRADE_COLUMNS, truth=False)
        df = table.rename(columns={"grade": "genant_grade"})
    else:
        folders = _study_folders(path)
        if not folders:
            raise InputError(f"{path}: no result.json in it, in its sub-folders or in studies/*/")
        rows, seen = [], Counter()
        for folder in folders:
            study, vertebrae = _read_result_json(folder)
            seen[study] += 1
            rows += vertebrae
        twice = sorted(s for s, n in seen.items() if n > 1)
        if twice:
            raise InputError(f"{path}: study id(s) {', '.join(twice[:3])} appear in more than one result folder")
        rows += _failed_studies(path, set(seen))
        df = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    df = df[RESULT_COLUMNS].astype({"label": "Int64", "genant_grade": "Int64"})
    _check_unique(df, str(path))
    return df


def load_truth(path: str | Path | None = None, split: str | None = None) -> pd.DataFrame:
    """Expert grades as a DataFrame with :data:`TRUTH_COLUMNS`, optionally one split only.

    Args:
        path: CSV (default :data:`DEFAULT_GRADES`).
        split: keep the rows whose ``split`` column equals it (train, val, test).

    Raises:
        InputError: unreadable file, missing columns, grades outside 0-3, duplicate rows, no split column.
    """
    path = Path(path) if path is not None else DEFAULT_GRADES
    if not path.is_file():
        raise InputError(f"{path}: no such truth CSV")
    raw = _read_csv(path)
    table = _vertebra_table(raw, path, _TRUTH_GRADE_COLUMNS, truth=True).rename(columns={"grade": "truth_grade"})
    _check_unique(table, str(path))
    if split is not None:
        split_col = _pick(list(raw.columns), ("split",))
        if split_col is None:
            raise InputError(f"{path}: no split column, so --split {split} cannot select rows")
        splits = raw[split_col].str.strip().str.lower()
        keep = (splits == split.strip().lower()).to_numpy()
        if not keep.any():
            raise InputError(f"{path}: no rows in split {split!r} (splits: {', '.join(sorted(set(splits)))})")
        table = table[keep].reset_index(drop=True)
    return table.astype({"label": int, "truth_grade": int})


# ---------------------------------------------------------------- matching and metrics


def match_study_ids(result_ids: list[str], truth_ids: list[str]) -> tuple[dict[str, str], list[str]]:
    """Result study id -> truth study id, and notes on ids left unmatched as ambiguous.

    Equal ids match. Otherwise a result id matches a truth id it starts with when the rest
    begins with ``_``, ``-`` or ``.`` (``sub-verse008_ct`` -> ``sub-verse008``) and only one
    truth id fits. Two result ids matching one truth id is an error.
    """
    truth = set(truth_ids)
    mapping, notes = {}, []
    for rid in sorted(set(result_ids)):
        if rid in truth:
            mapping[rid] = rid
            continue
        fits = [t for t in truth if rid.startswith(t) and rid[len(t)] in _ID_SUFFIX_START]
        if len(fits) == 1:
            mapping[rid] = fits[0]
        elif len(fits) > 1:
            notes.append(f"result study {rid} left unmatched: it could be any of {', '.join(sorted(fits))}")
    by_truth: dict[str, list[str]] = {}
    for rid, tid in mapping.items():
        by_truth.setdefault(tid, []).append(rid)
    clash = {t: r for t, r in by_truth.items() if len(r) > 1}
    if clash:
        tid, rids = sorted(clash.items())[0]
        raise InputError(f"result studies {' and '.join(rids)} both match truth study {tid}")
    return mapping, notes


def reason_group(status: str) -> str:
    """The short reason of a not-graded status: "not graded: cut by the field of view (touches
    the anterior edge)" -> "cut by the field of view"."""
    text = re.sub(r"^not graded\s*[:,-]?\s*", "", status.strip(), flags=re.IGNORECASE)
    text = re.split(r"[(:;]", text, maxsplit=1)[0].strip()
    return text or "no reason given"


def _fracture(truth: np.ndarray, predicted: np.ndarray, graded: np.ndarray, threshold: int) -> FractureDetection:
    """Counts at ``grade >= threshold``; a not-graded vertebra (graded False) is always a miss."""
    pos = truth >= threshold
    hit_pos = graded & (predicted >= threshold)
    hit_neg = graded & (predicted < threshold)
    tp, tn = int((pos & hit_pos).sum()), int((~pos & hit_neg).sum())
    return FractureDetection(threshold, tp=tp, fn=int(pos.sum()) - tp, tn=tn, fp=int((~pos).sum()) - tn)


def _graded_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> GradedMetrics:
    from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

    labels = list(GRADES)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = tuple(sorted({int(g) for g in y_true}))
    idx = [labels.index(g) for g in present]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined kappa (one grade only) warns and returns nan
        try:
            kappa = float(cohen_kappa_score(y_true, y_pred, labels=labels, weights="linear"))
        except (ValueError, ZeroDivisionError):
            kappa = float("nan")
    ones = np.ones(len(y_true), dtype=bool)
    return GradedMetrics(
        precision={g: float(p[i]) for i, g in enumerate(labels)},
        recall={g: float(r[i]) for i, g in enumerate(labels)},
        f1={g: float(f[i]) for i, g in enumerate(labels)},
        support={g: int(s[i]) for i, g in enumerate(labels)},
        predicted={g: int((y_pred == g).sum()) for g in labels},
        macro={"precision": float(p.mean()), "recall": float(r.mean()), "f1": float(f.mean())},
        grades_in_truth=present,
        macro_in_truth={"precision": float(p[idx].mean()), "recall": float(r[idx].mean()),
                        "f1": float(f[idx].mean())},
        exact=Proportion(int((y_true == y_pred).sum()), len(y_true)),
        kappa_linear=kappa if math.isfinite(kappa) else None,
        confusion=confusion_matrix(y_true, y_pred, labels=labels).astype(int).tolist(),
        fracture={t: _fracture(y_true, y_pred, ones, t) for t in THRESHOLDS},
    )


def _ids(ids, n: int = 3) -> str:
    ids = sorted(set(ids))
    return ", ".join(ids[:n]) + (f" ... ({len(ids)})" if len(ids) > n else "")


def evaluate(results: pd.DataFrame, truth: pd.DataFrame, *, results_source: str = "results",
             truth_source: str = "truth") -> EvaluationReport:
    """Score ``results`` (:func:`load_results`) against ``truth`` (:func:`load_truth`).

    Raises:
        InputError: missing columns, duplicate (study, label) rows, or no study in common.
    """
    for df, cols, what in ((results, RESULT_COLUMNS, results_source), (truth, TRUTH_COLUMNS, truth_source)):
        lacking = [c for c in cols if c not in df.columns]
        if lacking:
            raise InputError(f"{what}: lacks columns {', '.join(lacking)}")
    _check_unique(results, results_source)
    _check_unique(truth, truth_source)
    mapping, notes = match_study_ids(list(results["study_id"]), list(truth["study_id"]))
    if not mapping:
        raise InputError(f"no study of {results_source} has truth grades in {truth_source}: results have "
                         f"{_ids(results['study_id'])}; truth has {_ids(truth['study_id'])}")
    studies = sorted(set(mapping.values()))
    unmatched = sorted(set(results["study_id"]) - set(mapping))

    res = results[results["study_id"].isin(list(mapping))].copy()
    res["study_id"] = res["study_id"].map(mapping)
    failed = {s: st for s, st in res.loc[res["label"].isna(), ["study_id", "status"]].values}
    res = res[res["label"].notna()].astype({"label": int})
    tru = truth[truth["study_id"].isin(studies)]
    merged = tru.merge(res[["study_id", "label", "genant_grade", "status"]], on=["study_id", "label"],
                       how="left", indicator=True)
    absent = merged["_merge"] == "left_only"
    merged.loc[absent, "status"] = [f"not graded: {failed[s]}" if s in failed else MISSING
                                    for s in merged.loc[absent, "study_id"]]
    graded = merged["genant_grade"].notna().to_numpy()
    y_true = merged["truth_grade"].to_numpy(dtype=int)
    y_pred = merged["genant_grade"].fillna(-1).to_numpy(dtype=int)

    extra = res.merge(tru[["study_id", "label"]], on=["study_id", "label"], how="left", indicator=True)
    extra = extra[extra["_merge"] == "left_only"]
    reasons = Counter(reason_group(s) for s in merged.loc[~graded, "status"])
    if unmatched:
        notes.append(f"{len(unmatched)} result stud{'y' if len(unmatched) == 1 else 'ies'} without truth, "
                     f"not scored: {_ids(unmatched, 5)}")
    if len(extra):
        notes.append(f"{len(extra)} result vertebra(e) of evaluated studies have no truth row, not scored: "
                     f"{_ids(extra['study_id'] + ' ' + extra['name'], 5)}")
    matched_ids = {r: t for r, t in mapping.items() if r != t}
    if matched_ids:
        notes.append("result ids matched to truth ids by suffix: "
                     + ", ".join(f"{r} -> {t}" for r, t in sorted(matched_ids.items())))

    per_vertebra = pd.concat([
        pd.DataFrame({"study_id": merged["study_id"], "label": merged["label"],
                      "name": [VERSE_NAMES[int(lab)] for lab in merged["label"]],
                      "truth_grade": merged["truth_grade"].astype("Int64"),
                      "predicted_grade": merged["genant_grade"].astype("Int64"), "status": merged["status"]}),
        pd.DataFrame({"study_id": extra["study_id"], "label": extra["label"], "name": extra["name"],
                      "truth_grade": pd.array([pd.NA] * len(extra), dtype="Int64"),
                      "predicted_grade": extra["genant_grade"].astype("Int64"), "status": extra["status"]}),
    ], ignore_index=True)
    order = per_vertebra["label"].map(lambda lab: SPINE_ORDER.get(int(lab), 100 + int(lab)))
    per_vertebra = (per_vertebra.assign(_order=order).sort_values(["study_id", "_order"], kind="stable")
                    .drop(columns="_order").reset_index(drop=True))

    return EvaluationReport(
        results_source=results_source, truth_source=truth_source, studies=studies,
        studies_without_truth=unmatched, id_matches=matched_ids,
        n_truth=len(merged), n_graded=int(graded.sum()),
        not_graded_reasons=dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        not_graded_by_truth={g: int(((y_true == g) & ~graded).sum()) for g in GRADES},
        n_result_without_truth=len(extra),
        graded=_graded_metrics(y_true[graded], y_pred[graded]) if graded.any() else None,
        itd_exact=Proportion(int((graded & (y_true == y_pred)).sum()), len(merged)),
        itd_fracture={t: _fracture(y_true, y_pred, graded, t) for t in THRESHOLDS},
        per_vertebra=per_vertebra, notes=notes,
    )


def evaluate_files(results: str | Path, grades: str | Path | None = None, split: str | None = None
                   ) -> EvaluationReport:
    """:func:`load_results`, :func:`load_truth` and :func:`evaluate` in one call."""
    grades = Path(grades) if grades is not None else DEFAULT_GRADES
    truth_source = str(grades) + (f" (split {split})" if split else "")
    return evaluate(load_results(results), load_truth(grades, split), results_source=str(results),
                    truth_source=truth_source)


# ---------------------------------------------------------------- output


def _table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def format_report(report: EvaluationReport) -> str:
    """The report as text: counts, reasons, per-grade table, confusion matrix, fracture detection."""
    out = [f"results: {report.results_source}",
           f"truth:   {report.truth_source}",
           f"studies evaluated: {len(report.studies)} ({_ids(report.studies, 6)})",
           f"truth vertebrae: {report.n_truth}; graded {report.n_graded}, not graded {report.n_not_graded}"]
    if report.not_graded_reasons:
        out += ["", _table([[r, n] for r, n in report.not_graded_reasons.items()], ["not graded because", "n"])]
    g = report.graded
    if g is None:
        out += ["", "no vertebra with a truth grade was graded: no agreement metrics"]
    else:
        out += ["", f"graded vertebrae against the truth ({report.n_graded}):",
                _table([[f"{k} {GRADE_NAMES[k]}", _f(g.precision[k]), _f(g.recall[k]), _f(g.f1[k]), g.support[k],
                         g.predicted[k]] for k in GRADES],
                       ["grade", "precision", "recall", "F1", "truth n", "predicted n"]),
                "",
                _table([["grades 0-3 (all four)", *(_f(g.macro[k]) for k in ("precision", "recall", "f1"))],
                        [f"grades in the truth ({', '.join(map(str, g.grades_in_truth))})",
                         *(_f(g.macro_in_truth[k]) for k in ("precision", "recall", "f1"))]],
                       ["macro average over", "precision", "recall", "F1"]),
                "",
                f"exact agreement: {g.exact.text()}",
                f"linear-weighted kappa: {_f(g.kappa_linear)}"
                + ("" if g.kappa_linear is not None else " (undefined: one grade only)"),
                "", "confusion matrix (rows: truth, columns: predicted)",
                _table([[f"truth {k}", *g.confusion[k], report.not_graded_by_truth[k]] for k in GRADES],
                       ["", "pred 0", "pred 1", "pred 2", "pred 3", "not graded"])]
    rows = []
    for t in THRESHOLDS:
        itd = report.itd_fracture[t]
        gm = None if g is None else g.fracture[t]
        rows.append([f"grade >= {t}", "-" if gm is None else gm.sensitivity.text(),
                     "-" if gm is None else gm.specificity.text(), itd.sensitivity.text(), itd.specificity.text()])
    out += ["", "fracture detection, value (k/n; 95 % Wilson CI):",
            _table(rows, ["fracture", "sensitivity (graded)", "specificity (graded)",
                          "sensitivity (ITD)", "specificity (ITD)"]),
            f"exact agreement (ITD): {report.itd_exact.text()}",
            *textwrap.wrap(f"ITD, intention-to-diagnose: {ITD_CONVENTION}.", 100, break_on_hyphens=False)]
    if report.notes:
        out += [""] + [f"note: {n}" for n in report.notes]
    return "\n".join(out)


def default_out_dir(results: str | Path) -> Path:
    """Where the files go without ``--out``: the results folder, or the folder holding the CSV."""
    results = Path(results)
    return results if results.is_dir() else results.parent


def write_report(report: EvaluationReport, out_dir: str | Path) -> list[Path]:
    """Write ``metrics.json``, ``per_vertebra.csv`` and ``confusion.csv`` (each atomically).

    ``confusion.csv`` has a row per truth grade: counts per predicted grade, and the number not
    graded. ``per_vertebra.csv`` lists every truth vertebra of the evaluated studies and, with an
    empty truth_grade, their result vertebrae that have no truth row (not scored).
    """
    out_dir = Path(out_dir)
    confusion = report.graded.confusion if report.graded else [[0] * len(GRADES) for _ in GRADES]
    rows = [{"truth_grade": k, **{f"predicted_{p}": confusion[k][p] for p in GRADES},
             "not_graded": report.not_graded_by_truth[k]} for k in GRADES]
    per_vertebra = report.per_vertebra.astype(object).where(report.per_vertebra.notna(), None)
    return [
        atomic_write_text(out_dir / "metrics.json", json.dumps(report.to_dict(), indent=1) + "\n"),
        atomic_write_text(out_dir / "per_vertebra.csv",
                          csv_text(PER_VERTEBRA_COLUMNS, per_vertebra.to_dict("records"))),
        atomic_write_text(out_dir / "confusion.csv",
                          csv_text(["truth_grade", *(f"predicted_{p}" for p in GRADES), "not_graded"], rows)),
    ]
