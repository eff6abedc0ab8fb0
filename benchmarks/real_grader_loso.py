"""Retraining the SVM grader on real VerSe vertebrae, scored leave-one-subject-out.

    .venv/bin/python benchmarks/real_grader_loso.py [--features build/benchmarks/real_verse]

Reads what ``benchmarks/real_verse.py --out DIR`` wrote: ``prior_svm.csv`` (every real
vertebra's features measured through the prior, in ``vertebrae.csv`` columns) and
``truth.csv`` (expert grades). For each real subject, an SVM is trained on the other
subjects' vertebrae through the same path as ``healthivert train grader`` with a table recipe
(``fit_grader``: subject-grouped CV over the grid, monotone selection, skops model and card
under ``build/benchmarks/real_grader_loso/<subject>/``), and that model grades the held-out
subject, as ``healthivert run --models DIR`` would. ``sub-verse007`` and ``sub-verse007-1mm``
are one person and are held out together. The held-out grades of all subjects are then scored
with ``healthivert.evaluation`` beside the shipped phantom-trained SVM's grades of the same
vertebrae.

Prints a markdown table: fractures found, normals kept, not graded, macro-F1 over the grades
present, exact agreement; then each fold's training set and chosen setting.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from healthivert.errors import InputError
from healthivert.evaluation import evaluate, load_truth
from healthivert.grading import FEATURES, get_grader
from healthivert.training.config import GraderConfig
from healthivert.training.grader import fit_grader, table_features

ROOT = Path(__file__).resolve().parents[1]


def person(study_id: str) -> str:
    """The subject a study belongs to (``sub-verse007-1mm`` is ``sub-verse007``)."""
    return study_id.removesuffix("-1mm")


def loso_grades(features: pd.DataFrame, truth: pd.DataFrame, work: Path) -> tuple[pd.DataFrame, list[str]]:
    """Held-out grades of every graded vertebra, one model per held-out person; fold notes."""
    expert = truth.rename(columns={"truth_grade": "expert_grade"})[["study_id", "label", "expert_grade"]]
    labelled = features.merge(expert, on=["study_id", "label"], how="left")
    out, notes = features.copy(), []
    out["genant_grade"] = pd.NA
    for held in sorted({person(s) for s in features["study_id"]}):
        train = labelled[(labelled["study_id"].map(person) != held) & labelled["expert_grade"].notna()
                         & labelled[list(FEATURES)].notna().all(axis=1)]
        fold = work / held
        fold.mkdir(parents=True, exist_ok=True)
        table = fold / "training.csv"
        train.drop(columns=["genant_grade"]).to_csv(table, index=False)
        cfg = GraderConfig(source="table", table=str(table), grades_column="expert_grade",
                           folds=min(5, train["study_id"].map(person).nunique()), output=str(fold / "grader_svm.skops"))
        test = (features["study_id"].map(person) == held) & features[list(FEATURES)].notna().all(axis=1)
        try:
            model_path, report = fit_grader(cfg, table_features(cfg))
        except InputError as exc:  # too few vertebrae of a grade: the held-out subject goes ungraded
            out.loc[test, "status"] = f"not graded: no model ({exc})"
            notes.append(f"held out {held}: no model trained: {exc}")
            continue
        grader = get_grader("svm", model_path=model_path)
        out.loc[test, "genant_grade"] = grader.predict(features.loc[test, list(FEATURES)])
        notes.append(f"held out {held}: trained on {report.n_vertebrae} vertebrae of {report.n_subjects} studies, "
                     f"grades {report.class_counts}, CV macro-F1 {report.cv_macro_f1:.3f}, {report.best_params}")
    return out, notes


def row(name: str, results: pd.DataFrame, truth: pd.DataFrame) -> str:
    """One table row from ``healthivert.evaluation``'s intention-to-diagnose counts."""
    rep = evaluate(results[["study_id", "label", "name", "genant_grade", "status"]].astype(
        {"label": "Int64", "genant_grade": "Int64"}), truth)
    fx = rep.itd_fracture[1]  # grade >= 1; a vertebra not graded is a miss
    return (f"| {name} | {fx.tp}/{fx.tp + fx.fn} | {fx.tn}/{fx.tn + fx.fp} | "
            f"{rep.n_truth - rep.n_graded}/{rep.n_truth} | {rep.graded.macro_in_truth['f1']:.3f} | "
            f"{rep.itd_exact.successes}/{rep.itd_exact.total} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, default=ROOT / "build" / "benchmarks" / "real_verse",
                        help="benchmarks/real_verse.py's --out folder")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "benchmarks" / "real_grader_loso")
    args = parser.parse_args()
    features = pd.read_csv(args.features / "prior_svm.csv")
    truth = load_truth(args.features / "truth.csv")
    truth = truth[truth["study_id"].isin(features["study_id"])]
    held_out, notes = loso_grades(features, truth, args.work)
    print(f"## SVM retrained on real VerSe vertebrae, leave-one-subject-out ({len(truth)} expert-graded vertebrae)\n")
    print("| grader | fractures found (grade >= 1) | normals kept | not graded | macro-F1 (grades present) | exact |")
    print("|---|---|---|---|---|---|")
    print(row("shipped SVM (phantoms)", features, truth))
    print(row("SVM on the other real subjects (LOSO)", held_out, truth))
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
