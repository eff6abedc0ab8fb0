"""The SVM grader (healthivert/grading/svm.py): subject-grouped training, skops persistence."""

from __future__ import annotations

import json
import zipfile
from functools import cache

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import GroupKFold, KFold, cross_val_score

from healthivert.errors import InputError
from healthivert.grading import FEATURES, get_grader, grade_from_proba
from healthivert.grading import svm as svm_module
from healthivert.grading.svm import (
    DEFAULT_MODEL,
    SVMGrader,
    candidate_order,
    complexity,
    grade_drops,
    load_model,
    save_model,
    train_svm,
)

#: one configuration: no hyper-parameter search to get lucky with
ONE_SVC = {"svc__kernel": ["rbf"], "svc__C": [10.0], "svc__gamma": [1.0]}
SMALL_GRID = {"svc__kernel": ["linear", "rbf"], "svc__C": [1.0, 10.0]}
GRADE_LOSS = {0: 0.05, 1: 0.225, 2: 0.32, 3: 0.5}


def _row(loss: float) -> dict[str, float]:
    """A wedge-like vertebra: anterior loss ``loss``, middle half of it, posterior intact."""
    return {"rhlv_anterior": loss, "rhlv_middle": loss / 2, "rhlv_posterior": 0.0, "rhlv_whole": loss / 2,
            "ratio_anterior_posterior": 1 - loss, "ratio_middle_posterior": 1 - loss / 2,
            "ratio_anterior_posterior_z": -loss / 0.05}


@cache
def _table(n_subjects: int = 8, per_subject: int = 8, seed: int = 0):
    """Vertebrae of ``n_subjects`` subjects, grades 0-3 with losses in their Genant bands."""
    rng = np.random.default_rng(seed)
    rows, grades, groups = [], [], []
    for s in range(n_subjects):
        for k in range(per_subject):
            grade = (s + k) % 4
            rows.append(_row(GRADE_LOSS[grade] + rng.normal(0.0, 0.01)))
            grades.append(grade)
            groups.append(f"sub-{s:02d}")
    return pd.DataFrame(rows), np.array(grades), np.array(groups)


@cache
def _trained():
    features, grades, groups = _table()
    return train_svm(features, grades, groups, folds=4, param_grid=SMALL_GRID)


def test_train_svm_learns_the_grades_and_reports_its_cv():
    model, report = _trained()
    features, grades, _ = _table()
    assert report.folds == 4 and report.n_subjects == 8 and report.n_vertebrae == 64
    assert report.class_counts == {0: 16, 1: 16, 2: 16, 3: 16}
    assert report.features == list(FEATURES)
    assert set(report.best_params) == set(SMALL_GRID)
    assert report.cv_macro_f1 > 0.9
    assert (model.predict(features[list(FEATURES)].to_numpy()) == grades).mean() > 0.95


def test_a_grade_with_one_vertebra_is_refused_in_words():
    """A small real table (one grade-2 vertebra) cannot be calibrated: an InputError, not a
    scikit-learn traceback."""
    features, grades, groups = _table()
    keep = (grades == 0) | (grades == 1) | (np.arange(len(grades)) == int(np.flatnonzero(grades == 2)[0]))
    with pytest.raises(InputError, match="grade.s. 2 have 1"):
        train_svm(features[keep].reset_index(drop=True), grades[keep], groups[keep], folds=4, param_grid=ONE_SVC)


NARROW_RBF = {"svc__kernel": ["rbf"], "svc__C": [10.0], "svc__gamma": [30.0]}


def test_a_grader_that_lowers_a_grade_as_the_loss_rises_is_refused():
    """A narrow RBF kernel fits the clustered table perfectly but grades losses beyond the
    clusters as normal; training takes the best setting whose grades never fall as every
    section's loss rises, and says when no setting passes."""
    features, grades, groups = _table()
    x = features[list(FEATURES)].to_numpy()
    narrow, report = train_svm(features, grades, groups, folds=4, param_grid=NARROW_RBF)
    assert not report.monotone and report.settings_refused == 1
    assert grade_drops(narrow, x) > 0.2
    severe = pd.DataFrame([_row(0.85)])[list(FEATURES)].to_numpy()  # far past grade 3's cluster
    assert narrow.predict(severe)[0] < 3
    model, report = train_svm(features, grades, groups, folds=4,
                              param_grid=[NARROW_RBF, {"svc__kernel": ["linear"], "svc__C": [10.0]}])
    assert report.monotone and report.best_params["svc__kernel"] == "linear"
    assert grade_drops(model, x) == 0.0 and model.predict(severe)[0] == 3
    assert _trained()[1].monotone and grade_drops(_trained()[0], x) == 0.0


def test_complexity_orders_settings_simplest_first():
    settings = [{"svc__kernel": "rbf", "svc__C": 10.0, "svc__gamma": 1.0},
                {"svc__kernel": "rbf", "svc__C": 1.0, "svc__gamma": 1.0},
                {"svc__kernel": "rbf", "svc__C": 100.0, "svc__gamma": "scale"},
                {"svc__kernel": "linear", "svc__C": 100.0, "svc__gamma": 1.0},
                {"svc__kernel": "rbf", "svc__C": 0.1, "svc__gamma": 0.1}]
    order = sorted(range(len(settings)), key=lambda i: complexity(settings[i]))
    assert order == [3, 4, 2, 1, 0]  # linear; gamma 0.1; gamma "scale" = 1/6; gamma 1 by C


def _results(scores: list[float], std: float, params: list[dict]) -> dict:
    return {"mean_test_score": np.array(scores), "std_test_score": np.full(len(scores), std), "params": params}


def test_one_standard_error_rule_takes_the_simplest_setting_inside_the_noise():
    """Best score 0.90 with fold std 0.05 over 4 folds: SE 0.025, so 0.88 is inside, 0.86 not."""
    params = [{"svc__kernel": "rbf", "svc__C": 10.0, "svc__gamma": 1.0},
              {"svc__kernel": "rbf", "svc__C": 1.0, "svc__gamma": 0.1},
              {"svc__kernel": "linear", "svc__C": 1.0}]
    results = _results([0.90, 0.88, 0.86], 0.05, params)
    assert list(candidate_order(results, 4, "best")) == [0, 1, 2]
    assert list(candidate_order(results, 4, "one_se")) == [1, 0, 2]  # the linear one is outside
    results = _results([0.90, 0.88, 0.89], 0.05, params)
    assert list(candidate_order(results, 4, "one_se")) == [2, 1, 0]
    with pytest.raises(InputError, match="best or one_se|'best' or 'one_se'"):
        candidate_order(results, 4, "simplest")


def test_train_svm_with_the_one_standard_error_rule():
    """On the cleanly separated table every setting is within the noise of the best: the rule
    keeps the linear kernel with the smallest C, and it still grades the table."""
    features, grades, groups = _table()
    model, report = train_svm(features, grades, groups, folds=4, param_grid=SMALL_GRID, selection="one_se")
    assert report.best_params["svc__kernel"] == "linear" and report.best_params["svc__C"] == 1.0
    assert report.monotone
    assert (model.predict(features[list(FEATURES)].to_numpy()) == grades).mean() > 0.95


def test_cv_folds_never_split_a_subject(monkeypatch):
    """Every CV split is by subject: no subject on both sides, each validated exactly once."""
    splits = []

    class RecordingGroupKFold(GroupKFold):
        def split(self, X, y=None, groups=None):
            for train, test in super().split(X, y, groups):
                splits.append((set(groups[train]), set(groups[test])))
                yield train, test

    monkeypatch.setattr(svm_module, "GroupKFold", RecordingGroupKFold)
    features, grades, groups = _table()
    train_svm(features, grades, groups, folds=4, param_grid=ONE_SVC)
    folds = {frozenset(test) for _, test in splits}
    assert len(folds) == 4
    assert sorted(s for fold in folds for s in fold) == sorted(set(groups))
    for train, test in splits:
        assert not train & test


def test_subject_leak_would_show_in_the_cv_score():
    """Each subject has one grade and its own feature signature unrelated to the grade. A
    vertebra-wise split lets the SVM recognise subjects (CV ~ 1.0); the grouped CV cannot (chance)."""
    rng = np.random.default_rng(0)
    n_subjects, per_subject = 12, 6
    signature = np.repeat(rng.normal(0.0, 1.0, (n_subjects, len(FEATURES))), per_subject, axis=0)
    x = signature + rng.normal(0.0, 0.01, signature.shape)
    y = np.repeat(np.arange(n_subjects) % 2, per_subject)
    groups = np.repeat([f"sub-{i:02d}" for i in range(n_subjects)], per_subject)
    _, report = train_svm(pd.DataFrame(x, columns=list(FEATURES)), y, groups, folds=4, param_grid=ONE_SVC)
    leaky = cross_val_score(svm_module._base_pipeline(0).set_params(**{k: v[0] for k, v in ONE_SVC.items()}), x, y,
                            cv=KFold(4, shuffle=True, random_state=0), scoring="f1_macro").mean()
    assert leaky > 0.95  # the scenario does leak when subjects are split
    assert report.cv_macro_f1 < 0.6


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f, g, s: (f.assign(rhlv_whole=np.nan), g, s), "NaN"),
        (lambda f, g, s: (f, g, np.full(len(s), "sub-00")), "at least 2 subjects"),
        (lambda f, g, s: (f, np.zeros_like(g), s), "2 grades"),
    ],
    ids=["nan", "one subject", "one grade"],
)
def test_train_svm_refuses_untrainable_tables(mutate, message):
    features, grades, groups = mutate(*_table())
    with pytest.raises(InputError, match=message):
        train_svm(features, grades, groups, folds=4, param_grid=ONE_SVC)


def test_save_and_load_round_trip(tmp_path):
    model, _ = _trained()
    path = save_model(model, tmp_path / "models" / "grader.skops")
    assert path.is_file() and not list(path.parent.glob(".*part*"))
    loaded = load_model(path)
    features = pd.DataFrame([_row(x) for x in np.linspace(-0.1, 0.7, 25)])
    x = features[list(FEATURES)].to_numpy()
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    grader = SVMGrader(path)
    proba = grader.predict_proba(features)
    assert proba.shape == (25, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert get_grader("svm", model_path=path).predict_proba(features).tolist() == proba.tolist()


class Gadget:
    """Not scikit-learn: a file holding one must not load."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def test_load_model_refuses_types_outside_scikit_learn(tmp_path):
    path = tmp_path / "gadget.skops"
    sio.dump({"model": Gadget()}, path)
    with pytest.raises(InputError, match="refusing to load.*Gadget"):
        load_model(path)


def test_load_model_refuses_a_file_that_would_call_builtins(tmp_path):
    """skops rebuilds some objects by calling the type named in the file with arguments from the
    file; a file naming ``builtins.exec`` must be refused before anything runs."""
    marker = tmp_path / "ran"
    call = {"__class__": "exec", "__module__": "builtins", "__loader__": "ConstructorFromReduceNode",
            "content": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                        "content": [{"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
                                     "content": json.dumps(f"open({str(marker)!r}, 'w').close()"),
                                     "is_json": True}]}}
    genuine = tmp_path / "genuine.skops"
    sio.dump([1], genuine)
    with zipfile.ZipFile(genuine) as z:
        schema = json.loads(z.read("schema.json"))  # a real header: protocol and skops version
    schema["content"] = [call]
    path = tmp_path / "crafted.skops"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("schema.json", json.dumps(schema))
    assert "builtins.exec" in sio.get_untrusted_types(file=path)
    with pytest.raises(InputError, match="refusing to load"):
        load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04 truncated"])
def test_load_model_refuses_a_file_that_is_not_skops(tmp_path, content):
    path = tmp_path / "model.skops"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not a skops model file"):
        load_model(path)


def test_missing_weights_say_how_to_get_them(tmp_path):
    with pytest.raises(InputError, match="no such grader model"):
        load_model(tmp_path / "absent.skops")
    with pytest.raises(InputError, match="train grader.*--grader rule"):
        SVMGrader(tmp_path / "absent.skops")


def test_shipped_model_grades_clear_cases():
    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"no shipped grader weights at {DEFAULT_MODEL}")
    grader = get_grader("svm")
    square = {"ratio_anterior_posterior": 1.0, "ratio_middle_posterior": 1.0, "ratio_anterior_posterior_z": 0.0}
    severe = dict.fromkeys(FEATURES, 0.5) | square
    intact = dict.fromkeys(FEATURES, 0.0) | square
    proba = grader.predict_proba(pd.DataFrame([severe, intact]))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert grade_from_proba(proba).tolist() == [3, 0]


def test_a_model_trained_before_the_z_score_reads_its_own_six_columns(tmp_path):
    """A grader file fitted on the first six features (before the ratio's z-score was added)
    still grades: it is given those columns, not all of ``FEATURES``."""
    features, grades, groups = _table()
    old = list(FEATURES)[:6]
    model, _ = train_svm(features.assign(ratio_anterior_posterior_z=0.0), grades, groups, folds=4,
                         param_grid=ONE_SVC)
    six = svm_module._base_pipeline(0).set_params(svc__kernel="rbf", svc__C=10.0, svc__gamma=1.0)
    legacy = CalibratedClassifierCV(six, method="sigmoid", cv=3).fit(features[old].to_numpy(float), grades)
    grader = SVMGrader(save_model(legacy, tmp_path / "six.skops"))
    assert grader.features == old
    np.testing.assert_allclose(grader.predict_proba(features), legacy.predict_proba(features[old].to_numpy(float)))
    assert SVMGrader(save_model(model, tmp_path / "seven.skops")).features == list(FEATURES)


def test_a_body_taller_than_its_pseudo_healthy_one_grades_no_higher_than_one_that_matches(tmp_path):
    """A model that learnt nonsense below zero loss (its grade-3 vertebrae are 40 % taller than
    their pseudo-healthy bodies; an RBF kernel far from its training set is as arbitrary) grades
    such a body 3; the grader keeps the grade of the same body with no loss (0), while rows
    with a loss are graded as the model grades them."""
    rng = np.random.default_rng(0)
    loss = {0: 0.05, 1: 0.225, 2: 0.32, 3: -0.4}
    flat = {"ratio_anterior_posterior": 1.0, "ratio_middle_posterior": 1.0, "ratio_anterior_posterior_z": 0.0}
    sections = ("rhlv_anterior", "rhlv_middle", "rhlv_posterior", "rhlv_whole")
    rows, grades, groups = [], [], []
    for s in range(8):
        for k in range(8):
            grade = (s + k) % 4
            rows.append({**dict.fromkeys(sections, loss[grade] + rng.normal(0.0, 0.01)), **flat})
            grades.append(grade)
            groups.append(s)
    model, _ = train_svm(pd.DataFrame(rows), np.array(grades), np.array(groups), folds=4, param_grid=ONE_SVC)
    grader = SVMGrader(save_model(model, tmp_path / "m.skops"))
    probe = pd.DataFrame([{**dict.fromkeys(sections, v), **flat} for v in (-0.4, 0.0, 0.3)])[list(FEATURES)]
    assert list(model.predict(probe.to_numpy())) == [3, 0, 2]
    assert list(grader.predict(probe)) == [0, 0, 2]
    assert np.allclose(grader.predict_proba(probe)[0], grader.predict_proba(probe)[1])
    assert np.allclose(grader.predict_proba(probe)[1:], model.predict_proba(probe.to_numpy()[1:]))
    assert np.allclose(svm_module.no_gain(probe.to_numpy(), list(FEATURES))[0, :4], 0.0)


def test_the_svm_grades_at_most_one_above_the_largest_loss(tmp_path):
    """A model that learnt nonsense (its grade-3 vertebrae lost 24 % of their posterior height
    alone, a shape phantoms never have; sub-verse007's T11 on 5 mm slices read so and was graded
    3) grades such a body 3; the grader gives it 2, one above the Genant grade of a 24 % loss,
    with the probability of 3 moved to 2. Rows within the ceiling keep the model's grades."""
    rng = np.random.default_rng(0)
    flat = {"ratio_anterior_posterior": 1.0, "ratio_middle_posterior": 1.0, "ratio_anterior_posterior_z": 0.0}
    sections = ("rhlv_anterior", "rhlv_middle", "rhlv_posterior", "rhlv_whole")
    shape = {0: (0.05,) * 4, 1: (0.225,) * 4, 2: (0.32,) * 4, 3: (0.0, 0.0, 0.24, 0.08)}
    rows, grades, groups = [], [], []
    for s in range(8):
        for k in range(8):
            grade = (s + k) % 4
            rows.append({**{c: v + rng.normal(0.0, 0.01) for c, v in zip(sections, shape[grade])}, **flat})
            grades.append(grade)
            groups.append(s)
    model, _ = train_svm(pd.DataFrame(rows), np.array(grades), np.array(groups), folds=4, param_grid=ONE_SVC)
    grader = SVMGrader(save_model(model, tmp_path / "m.skops"))
    probe = pd.DataFrame([{**dict(zip(sections, v)), **flat} for v in (shape[3], shape[0], shape[2])])[list(FEATURES)]
    raw = model.predict_proba(probe.to_numpy())
    assert list(model.predict(probe.to_numpy())) == [3, 0, 2]
    assert list(grader.predict(probe)) == [2, 0, 2]
    capped = grader.predict_proba(probe)
    assert capped[0, 3] == 0.0 and capped[0, 2] == pytest.approx(raw[0, 2] + raw[0, 3])
    np.testing.assert_allclose(capped[0, :2], raw[0, :2])
    np.testing.assert_allclose(capped[1:], raw[1:])
    assert list(svm_module.loss_ceiling(probe)) == [2, 1, 3]
