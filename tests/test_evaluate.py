"""`healthivert evaluate`: results against expert Genant grades.

Hand-made examples with numbers worked out by hand (fast), the one-line contract for bad input,
the session's phantom results against the phantom truth, and one real VerSe subject (slow,
skipped without ../shared/data).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from healthivert.cli import main
from healthivert.evaluation import (
    MISSING,
    evaluate,
    evaluate_files,
    format_report,
    load_results,
    load_truth,
    match_study_ids,
    reason_group,
    wilson_interval,
)
from healthivert.labels import VERSE_NAMES
from tests.helpers import PROJECT_ROOT, assert_one_line_error, shared_path
from tests.review.results_fixture import CT_STUDY, MASK_STUDY, shared_results  # noqa: F401

TRUTH_HEADER = "subject,vertebra_label,vertebra,genant_grade,split"
CUT = "not graded: cut by the field of view (touches the anterior edge)"

# ten vertebrae T1-T10 of one study; rows: truth 0-3, columns: predicted 0-3
#   truth 0: 4 x 0, 1 x 1;  truth 1: 1 x 0, 1 x 1;  truth 2: 1 x 2, 1 x 3;  truth 3: 1 x 3
TEN_TRUTH = [0, 0, 0, 0, 0, 1, 1, 2, 2, 3]
TEN_PRED = [0, 0, 0, 0, 1, 1, 0, 2, 3, 3]


def write_truth(path: Path, rows: list[tuple[str, int, int, str]]) -> Path:
    """Truth CSV in the verse2019.csv layout from (subject, label, grade, split)."""
    lines = [TRUTH_HEADER] + [f"{s},{lab},{VERSE_NAMES[lab]},{g},{sp}" for s, lab, g, sp in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_result(folder: Path, study_id: str, vertebrae: list[tuple[int, int | None, str]]) -> Path:
    """A minimal result folder: result.json with (label, grade, status) per vertebra."""
    folder.mkdir(parents=True, exist_ok=True)
    result = {"study_id": study_id, "inputs": {}, "software_version": "test",
              "vertebrae": [{"label": lab, "name": VERSE_NAMES[lab], "genant_grade": g, "status": st}
                            for lab, g, st in vertebrae]}
    (folder / "result.json").write_text(json.dumps(result))
    return folder


def write_results_csv(path: Path, rows: list[tuple[str, int, int | None, str]]) -> Path:
    """Per-vertebra CSV (the vertebrae.csv columns that matter) from (study_id, label, grade, status)."""
    lines = ["study_id,label,name,genant_grade,status"]
    lines += [f"{s},{lab},{VERSE_NAMES[lab]},{'' if g is None else g},{st}" for s, lab, g, st in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def ten(tmp_path: Path) -> tuple[Path, Path]:
    labels = range(8, 18)  # T1-T10
    truth = write_truth(tmp_path / "truth.csv", [("sub-a", lab, g, "test") for lab, g in zip(labels, TEN_TRUTH)])
    results = write_results_csv(tmp_path / "results.csv",
                                [("sub-a", lab, g, "graded") for lab, g in zip(labels, TEN_PRED)])
    return results, truth


def squeezed(text: str) -> str:
    """Text with every run of spaces made one (table columns vary in width)."""
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------- statistics by hand


def test_wilson_interval_reference_values():
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # the textbook 8/10
    assert wilson_interval(7, 10) == pytest.approx((0.3968, 0.8922), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_ten_hand_made_vertebrae(tmp_path):
    results, truth = ten(tmp_path)
    report = evaluate_files(results, truth)
    g = report.graded
    assert (report.n_truth, report.n_graded, report.n_not_graded) == (10, 10, 0)
    assert g.confusion == [[4, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1]]
    # grade 0: 4 of 5 predicted 0 are right, 4 of 5 truth 0 found; grade 1: 1/2, 1/2;
    # grade 2: 1/1, 1/2; grade 3: 1/2, 1/1
    assert [g.precision[k] for k in range(4)] == pytest.approx([0.8, 0.5, 1.0, 0.5])
    assert [g.recall[k] for k in range(4)] == pytest.approx([0.8, 0.5, 0.5, 1.0])
    assert [g.f1[k] for k in range(4)] == pytest.approx([0.8, 0.5, 2 / 3, 2 / 3])
    assert g.support == {0: 5, 1: 2, 2: 2, 3: 1}
    assert g.predicted == {0: 5, 1: 2, 2: 1, 3: 2}
    assert g.macro == pytest.approx({"precision": 0.7, "recall": 0.7, "f1": (0.8 + 0.5 + 4 / 3) / 4})
    assert g.grades_in_truth == (0, 1, 2, 3) and g.macro_in_truth == pytest.approx(g.macro)
    assert (g.exact.successes, g.exact.total) == (7, 10)
    assert g.exact.ci95 == pytest.approx((0.3968, 0.8922), abs=1e-4)
    # linear weights |i-j|/3: observed weighted disagreement 3 x 1/3 / 10 = 0.1; expected from
    # the marginals (truth 5,2,2,1; predicted 5,2,1,2) 118/300; kappa = 1 - 0.1 / (118/300)
    assert g.kappa_linear == pytest.approx(1 - 30 / 118)
    ge1, ge2 = g.fracture[1], g.fracture[2]
    assert (ge1.tp, ge1.fn, ge1.tn, ge1.fp) == (4, 1, 4, 1)
    assert ge1.sensitivity.ci95 == pytest.approx((0.3755, 0.9638), abs=1e-4)
    assert (ge2.tp, ge2.fn, ge2.tn, ge2.fp) == (3, 0, 7, 0)
    assert ge2.sensitivity.ci95 == pytest.approx((0.4385, 1.0), abs=1e-4)
    assert ge2.specificity.ci95 == pytest.approx((0.6457, 1.0), abs=1e-4)
    # nothing left out: intention-to-diagnose equals graded-only
    assert report.itd_fracture == g.fracture and report.itd_exact == g.exact


def test_macro_over_grades_in_the_truth_is_labelled_apart(tmp_path):
    truth = write_truth(tmp_path / "t.csv", [("s", 20, 0, "test"), ("s", 21, 0, "test"), ("s", 22, 2, "test")])
    results = write_results_csv(tmp_path / "r.csv", [("s", 20, 0, "graded"), ("s", 21, 1, "graded"),
                                                     ("s", 22, 2, "graded")])
    g = evaluate_files(results, truth).graded
    assert g.grades_in_truth == (0, 2)
    # grade 0: P 1, R 1/2, F1 2/3; grade 1: 0 (none in truth); grade 2: 1, 1, 1; grade 3: 0
    assert g.macro == pytest.approx({"precision": 0.5, "recall": 1.5 / 4, "f1": (2 / 3 + 1) / 4})
    assert g.macro_in_truth == pytest.approx({"precision": 1.0, "recall": 0.75, "f1": (2 / 3 + 1) / 2})
    assert g.kappa_linear is not None


def test_cli_prints_the_report_and_writes_three_files(tmp_path, capsys):
    results, truth = ten(tmp_path)
    rc, out, err = run(capsys, "evaluate", str(results), "--grades", str(truth), "--out", str(tmp_path / "ev"))
    assert rc == 0, err
    assert "grades 0-3 (all four) 0.700 0.700 0.658" in squeezed(out)
    assert "exact agreement: 0.700 (7/10; 0.397-0.892)" in out
    assert "0.800 (4/5; 0.376-0.964)" in out  # sensitivity at grade >= 1
    assert "intention-to-diagnose" in out and "false negative" in out
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["graded"]["macro_grades_0_3"]["f1"] == pytest.approx(0.6583, abs=1e-4)
    assert metrics["graded"]["exact_agreement"]["ci95"] == [0.3968, 0.8922]
    assert metrics["counts"] == {"truth_vertebrae": 10, "graded": 10, "not_graded": 0, "not_graded_reasons": {},
                                 "not_graded_by_truth_grade": {"0": 0, "1": 0, "2": 0, "3": 0},
                                 "result_vertebrae_without_truth": 0}
    with (tmp_path / "ev" / "confusion.csv").open() as fh:
        confusion = list(csv.reader(fh))
    assert confusion == [["truth_grade", "predicted_0", "predicted_1", "predicted_2", "predicted_3", "not_graded"],
                         ["0", "4", "1", "0", "0", "0"], ["1", "1", "1", "0", "0", "0"],
                         ["2", "0", "0", "1", "1", "0"], ["3", "0", "0", "0", "1", "0"]]
    with (tmp_path / "ev" / "per_vertebra.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["study_id", "label", "name", "truth_grade", "predicted_grade", "status"]
    assert [(r["name"], r["truth_grade"], r["predicted_grade"]) for r in rows[:2]] == [("T1", "0", "0"),
                                                                                       ("T2", "0", "0")]
    assert len(rows) == 10


def test_json_output_is_pure_json_and_default_out_is_beside_the_csv(tmp_path, capsys):
    results, truth = ten(tmp_path)
    rc, out, err = run(capsys, "evaluate", str(results), "--grades", str(truth), "--json")
    assert rc == 0
    assert json.loads(out)["graded"]["exact_agreement"]["successes"] == 7
    assert "wrote metrics.json" in err
    assert {"metrics.json", "per_vertebra.csv", "confusion.csv"} <= {p.name for p in tmp_path.iterdir()}


# ---------------------------------------------------------------- what counts as not graded


def test_missing_and_refused_vertebrae_count_as_not_graded(tmp_path, capsys):
    truth = write_truth(tmp_path / "truth.csv", [
        ("sub-a", 20, 0, "test"), ("sub-a", 21, 2, "test"), ("sub-a", 22, 0, "test"), ("sub-a", 23, 3, "test"),
        ("sub-other", 20, 1, "test"),  # a study not in the results: not evaluated
    ])
    root = tmp_path / "results"
    write_result(root / "a", "sub-a", [
        (19, 0, "graded"),  # T12: no truth row, counted, not scored
        (20, 0, "graded"), (21, 2, "graded"),
        (22, None, CUT),  # refused: the reason is its status
        # L4 (truth 3) is missing from the results
    ])
    report = evaluate_files(root, truth)
    assert report.studies == ["sub-a"]
    assert (report.n_truth, report.n_graded, report.n_not_graded) == (4, 2, 2)
    assert report.not_graded_reasons == {"cut by the field of view": 1, "missing from the results": 1}
    assert report.not_graded_by_truth == {0: 1, 1: 0, 2: 0, 3: 1}
    assert report.n_result_without_truth == 1
    assert report.graded.exact.successes == report.graded.exact.total == 2
    # intention-to-diagnose: the missing L4 (a fracture) is a false negative, the refused L3
    # (normal) a false positive
    itd = report.itd_fracture[1]
    assert (itd.tp, itd.fn, itd.tn, itd.fp) == (1, 1, 1, 1)
    assert (report.itd_exact.successes, report.itd_exact.total) == (2, 4)
    rows = report.per_vertebra
    assert list(rows["name"]) == ["T12", "L1", "L2", "L3", "L4"]
    l4 = rows[rows["name"] == "L4"].iloc[0]
    assert l4["status"] == MISSING and l4["truth_grade"] == 3 and pd.isna(l4["predicted_grade"])
    assert rows[rows["name"] == "T12"]["truth_grade"].isna().all()

    rc, out, err = run(capsys, "evaluate", str(root), "--grades", str(truth))
    assert rc == 0, err
    assert "cut by the field of view 1" in squeezed(out) and "missing from the results 1" in squeezed(out)
    assert "1 result vertebra(e) of evaluated studies have no truth row" in out
    assert "sub-other" not in out


def test_batch_folder_and_its_failed_studies(tmp_path):
    truth = write_truth(tmp_path / "truth.csv", [("sub-a", 20, 0, "val"), ("sub-a", 21, 1, "val"),
                                                 ("sub-b", 20, 0, "val"), ("sub-b", 21, 0, "val")])
    batch = tmp_path / "batch"
    write_result(batch / "studies" / "sub-a", "sub-a", [(20, 0, "graded"), (21, 1, "graded")])
    (batch / "cohort.csv").write_text("study_id,label,name,genant_grade,status\n")
    (batch / "failed.csv").write_text("study_id,reason,mask,ct,centroids\nsub-b,mask is empty,m.nii.gz,,\n")
    report = evaluate_files(batch, truth)
    assert report.studies == ["sub-a", "sub-b"]
    assert (report.n_truth, report.n_graded) == (4, 2)
    assert report.not_graded_reasons == {"study failed": 2}
    failed = report.per_vertebra[report.per_vertebra["study_id"] == "sub-b"]
    assert set(failed["status"]) == {"not graded: study failed: mask is empty"}


def test_reason_groups_are_short():
    assert reason_group(CUT) == "cut by the field of view"
    assert reason_group("not graded: no vertebral body found in the mask") == "no vertebral body found in the mask"
    assert reason_group(MISSING) == "missing from the results"
    assert reason_group("not graded: study failed: boom (x)") == "study failed"
    assert reason_group("") == "no reason given"


# ---------------------------------------------------------------- matching study ids


def test_study_ids_match_exactly_or_by_an_unambiguous_suffix():
    mapping, notes = match_study_ids(["sub-1_ct", "sub-2", "sub-3_x_ct", "other"],
                                     ["sub-1", "sub-2", "sub-3", "sub-3_x", "sub-10"])
    assert mapping == {"sub-1_ct": "sub-1", "sub-2": "sub-2"}
    assert notes == ["result study sub-3_x_ct left unmatched: it could be any of sub-3, sub-3_x"]
    # "sub-10" does not match "sub-1": the suffix must start with _, - or .
    assert match_study_ids(["sub-10"], ["sub-1"])[0] == {}


def test_suffixed_result_ids_match_and_are_noted(tmp_path, capsys):
    truth = write_truth(tmp_path / "t.csv", [("sub-verse008", 20, 0, "train")])
    results = write_results_csv(tmp_path / "r.csv", [("sub-verse008_ct", 20, 0, "graded")])
    rc, out, err = run(capsys, "evaluate", str(results), "--grades", str(truth))
    assert rc == 0, err
    assert "sub-verse008_ct -> sub-verse008" in out
    assert "exact agreement: 1.000 (1/1;" in out


def test_two_results_matching_one_truth_study_are_refused(tmp_path, capsys):
    truth = write_truth(tmp_path / "t.csv", [("sub-1", 20, 0, "train")])
    results = write_results_csv(tmp_path / "r.csv", [("sub-1", 20, 0, "graded"), ("sub-1_ct", 20, 0, "graded")])
    assert_one_line_error(*run_pair(capsys, "evaluate", str(results), "--grades", str(truth)),
                          "sub-1 and sub-1_ct both match truth study sub-1")


# ---------------------------------------------------------------- splits


def test_split_selects_truth_rows(tmp_path, capsys):
    truth = write_truth(tmp_path / "t.csv", [("sub-a", 20, 0, "test"), ("sub-b", 20, 2, "train")])
    results = write_results_csv(tmp_path / "r.csv", [("sub-a", 20, 0, "graded"), ("sub-b", 20, 0, "graded")])
    assert load_truth(truth, "test")["study_id"].tolist() == ["sub-a"]
    report = evaluate(load_results(results), load_truth(truth, "test"))
    assert report.studies == ["sub-a"] and report.studies_without_truth == ["sub-b"]
    assert report.graded.exact.successes == 1
    assert_one_line_error(*run_pair(capsys, "evaluate", str(results), "--grades", str(truth), "--split", "val"),
                          "no rows in split 'val'")
    no_split = tmp_path / "nosplit.csv"
    no_split.write_text("study_id,name,grade\nsub-a,L1,0\n")
    assert_one_line_error(*run_pair(capsys, "evaluate", str(results), "--grades", str(no_split), "--split", "test"),
                          "no split column")
    rc, out, _ = run(capsys, "evaluate", str(results), "--grades", str(no_split))  # other column spellings
    assert rc == 0 and "studies evaluated: 1 (sub-a)" in out


# ---------------------------------------------------------------- bad input: exit 2, one line


def run_pair(capsys, *argv: str) -> tuple[int, tuple[str, str]]:
    rc = main(list(argv))
    return rc, capsys.readouterr()


def test_no_overlap_names_ids_of_both_sides(tmp_path, capsys):
    truth = write_truth(tmp_path / "t.csv", [("sub-x", 20, 0, "test"), ("sub-y", 20, 0, "test")])
    results = write_results_csv(tmp_path / "r.csv", [("sub-a", 20, 0, "graded")])
    assert_one_line_error(*run_pair(capsys, "evaluate", str(results), "--grades", str(truth)),
                          "no study of", "results have sub-a", "truth has sub-x, sub-y")


@pytest.mark.parametrize("side", ["truth", "results"])
def test_duplicate_rows_are_refused(tmp_path, capsys, side):
    results, truth = ten(tmp_path)
    path = truth if side == "truth" else results
    path.write_text(path.read_text() + path.read_text().splitlines()[1] + "\n")  # T1 again
    assert_one_line_error(*run_pair(capsys, "evaluate", str(results), "--grades", str(truth)),
                          str(path), "more than once", "sub-a T1")


def test_duplicate_study_folders_are_refused(tmp_path, capsys):
    truth = write_truth(tmp_path / "t.csv", [("sub-a", 20, 0, "test")])
    write_result(tmp_path / "res" / "one", "sub-a", [(20, 0, "graded")])
    write_result(tmp_path / "res" / "two", "sub-a", [(21, 0, "graded")])
    assert_one_line_error(*run_pair(capsys, "evaluate", str(tmp_path / "res"), "--grades", str(truth)),
                          "sub-a appear in more than one result folder")


@pytest.mark.parametrize("text, fragment", [
    ("subject,vertebra_label,grade\nsub-a,20,4\n", "line 2: grade '4' is not 0-3"),
    ("subject,vertebra_label,grade\nsub-a,20,\n", "line 2: no grade"),
    ("subject,vertebra_label,grade\nsub-a,99,0\n", "'99' is not a VerSe vertebra label"),
    ("subject,vertebra,grade\nsub-a,X9,0\n", "'X9' is not a vertebra"),
    ("subject,vertebra_label,vertebra,grade\nsub-a,20,L2,0\n", "label 20 (L1) disagrees with vertebra 'L2'"),
    ("patient,level,score\nsub-a,20,0\n", "no column for study id (study_id or subject); vertebra"),
    ("", "not a readable CSV"),
])
def test_bad_truth_files(tmp_path, capsys, text, fragment):
    results, _ = ten(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    assert_one_line_error(*run_pair(capsys, "evaluate", str(results), "--grades", str(bad)), fragment)


def test_bad_results(tmp_path, capsys):
    _, truth = ten(tmp_path)
    bad_grade = write_results_csv(tmp_path / "r.csv", [("sub-a", 8, 5, "graded")])
    write_results_csv(tmp_path / "ok.csv", [("sub-a", 8, 0, "graded")])
    assert_one_line_error(*run_pair(capsys, "evaluate", str(bad_grade), "--grades", str(truth)),
                          "grade '5' is not 0-3")
    folder = write_result(tmp_path / "res", "sub-a", [(8, 2.5, "graded")])
    assert_one_line_error(*run_pair(capsys, "evaluate", str(folder), "--grades", str(truth)),
                          "vertebra 1 (T1): grade 2.5 is not 0-3")
    (folder / "result.json").write_text("{not json")
    assert_one_line_error(*run_pair(capsys, "evaluate", str(folder), "--grades", str(truth)), "unreadable")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(*run_pair(capsys, "evaluate", str(tmp_path / "empty"), "--grades", str(truth)),
                          "no result.json")
    assert_one_line_error(*run_pair(capsys, "evaluate", str(tmp_path / "nope"), "--grades", str(truth)),
                          "no such file or folder")
    assert_one_line_error(*run_pair(capsys, "evaluate", str(bad_grade.with_name("ok.csv")), "--grades",
                                    str(tmp_path / "nope.csv")), "no such truth CSV")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage\x00\n\x93")
    assert_one_line_error(*run_pair(capsys, "evaluate", str(binary), "--grades", str(truth)), str(binary))


# ---------------------------------------------------------------- the shipped manifest


def test_the_shipped_manifest_loads_with_every_split():
    truth = load_truth()  # data_manifests/verse2019.csv
    assert len(truth) == len((PROJECT_ROOT / "data_manifests" / "verse2019.csv").read_text().splitlines()) - 1
    test = load_truth(None, "test")
    assert 0 < len(test) < len(truth) and set(test["truth_grade"]) <= {0, 1, 2, 3}


# ---------------------------------------------------------------- phantoms with known grades


def test_phantom_results_against_the_phantom_truth(shared_results, fractured_phantom, tmp_path):  # noqa: F811
    """The session's phantom results (FRACTURED_CFG, seed 5, rule grader; a CT + mask study and a
    mask-only study) scored against the phantom's own truth.json grades."""
    truth_rows = [(s, v["label"], v["genant_grade"], "test") for s in (CT_STUDY, MASK_STUDY)
                  for v in fractured_phantom.truth["vertebrae"]]
    assert sorted(g for _, _, g, _ in truth_rows[:3]) == [1, 2, 3]  # T12 2, L1 3, L2 1
    truth = write_truth(tmp_path / "phantom_truth.csv", truth_rows)
    report = evaluate_files(shared_results, truth)
    assert report.studies == sorted([CT_STUDY, MASK_STUDY])
    assert report.n_truth == 6 and report.n_result_without_truth == 0
    expected = {(s, lab): g for s, lab, g, _ in truth_rows}
    agree = graded = 0
    for study in (CT_STUDY, MASK_STUDY):
        result = json.loads((shared_results / study / "result.json").read_text())
        for v in result["vertebrae"]:
            if v["genant_grade"] is not None:
                graded += 1
                agree += v["genant_grade"] == expected[(study, v["label"])]
    assert report.n_graded == graded > 0
    assert (report.graded.exact.successes, report.graded.exact.total) == (agree, graded)
    assert sum(map(sum, report.graded.confusion)) == graded
    # every truth vertebra is a fracture: specificity has nothing to count
    assert report.itd_fracture[1].specificity.total == 0
    assert report.itd_fracture[1].sensitivity.total == 6
    assert "specificity" in format_report(report)


# ---------------------------------------------------------------- real VerSe subject


@pytest.mark.realdata
@pytest.mark.slow
def test_real_verse014_mask_against_the_manifest(tmp_path, capsys):
    mask = shared_path("real/verse2019_subset/derivatives/sub-verse014/sub-verse014_seg-vert_msk.nii.gz")
    out = tmp_path / "sub-verse014"
    assert main(["run", "--mask", str(mask), "--out", str(out)]) == 0
    capsys.readouterr()
    manifest = PROJECT_ROOT / "data_manifests" / "verse2019.csv"
    rc, text, err = run(capsys, "evaluate", str(out), "--grades", str(manifest))
    assert rc == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["studies"]["evaluated"] == ["sub-verse014"]
    counts = metrics["counts"]
    assert counts["truth_vertebrae"] == 5  # L1-L5, all grade 0 in the manifest
    result = json.loads((out / "result.json").read_text())
    graded = {v["name"]: v["genant_grade"] for v in result["vertebrae"]
              if v["genant_grade"] is not None and v["name"] in {"L1", "L2", "L3", "L4", "L5"}}
    assert counts["graded"] == len(graded)
    assert counts["graded"] + counts["not_graded"] == 5
    if graded:
        exact = metrics["graded"]["exact_agreement"]
        assert exact["successes"] == sum(g == 0 for g in graded.values())
        assert metrics["graded"]["macro_grades_in_truth"]["grades"] == [0]
    assert "studies evaluated: 1 (sub-verse014)" in text
    # the --split filter: sub-verse014 is a train subject
    assert_one_line_error(*run_pair(capsys, "evaluate", str(out), "--split", "test"), "no study of")
