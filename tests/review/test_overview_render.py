"""Study list (status, filter, sort) and the images' orientation and measurements."""

from __future__ import annotations

import numpy as np
import pytest

from healthivert.io.volume import Volume
from healthivert.review import ResultsFolder, ReviewRequest, ReviewStore, filter_studies, list_studies, sort_studies
from healthivert.review.render import Crop, StudyImages, height_profile, labels_on_slice, render_slice
from healthivert.review.studies import review_status
from tests.review.results_fixture import CT_STUDY, MASK_STUDY, algorithm_grades


@pytest.mark.parametrize(("n", "done", "status"), [(3, 0, "unreviewed"), (3, 1, "partly"), (3, 3, "reviewed"),
                                                   (0, 0, "unreviewed")])
def test_review_status(n: int, done: int, status: str) -> None:
    assert review_status(n, done) == status


def test_list_filter_sort(results) -> None:
    folders, store = ResultsFolder.open(results.root), ReviewStore(results.db_url)
    rows = {r["study_id"]: r for r in list_studies(folders, store)}
    g = algorithm_grades(results.root, CT_STUDY)
    worst = max(g.values())
    assert rows[CT_STUDY]["review_status"] == "unreviewed" and rows[CT_STUDY]["worst_grade"] == worst >= 1
    for label, name in ((19, "T12"), (20, "L1"), (21, "L2")):
        store.save(ReviewRequest(CT_STUDY, label, name, g[name], "accept", "Dr A"))
    m = algorithm_grades(results.root, MASK_STUDY)
    store.save(ReviewRequest(MASK_STUDY, 20, "L1", m["L1"], "override", "Dr A", "not fractured", 0 if m["L1"] else 1))
    rows = list_studies(folders, store)
    by = {r["study_id"]: r for r in rows}
    assert by[CT_STUDY]["review_status"] == "reviewed" and by[MASK_STUDY]["review_status"] == "partly"
    assert [r["study_id"] for r in filter_studies(rows, "mask")] == [MASK_STUDY]
    assert [r["study_id"] for r in filter_studies(rows, statuses=["reviewed"])] == [CT_STUDY]
    assert filter_studies(rows, "SMALL", min_grade=worst) == [by[CT_STUDY]]
    assert filter_studies(rows, "SMALL", min_grade=worst + 1) == []
    assert [r["study_id"] for r in sort_studies(rows, "study id")] == [MASK_STUDY, CT_STUDY]
    assert [r["study_id"] for r in sort_studies(rows, "worst grade (highest first)")][0] == CT_STUDY
    with pytest.raises(ValueError, match="sort by one of"):
        sort_studies(rows, "colour")
    store.dispose()


def _volume(shape=(10, 8, 6)) -> Volume:
    return Volume(np.zeros(shape, dtype=np.float32), np.diag([1.0, 1.0, 2.0, 1.0]))


def test_radiological_display() -> None:
    """Patient right (high RAS x index) is drawn on the screen's left; superior up."""
    import io

    from PIL import Image

    ct = _volume()
    mask = ct.with_array(np.zeros(ct.shape, dtype=np.uint8))
    mask.array[8, 4, 4] = 20  # on the patient's right, superior
    drawn = render_slice(StudyImages(ct, mask), "coronal", 4, width_px=200)
    pv = drawn.view
    w, h = pv.size_px
    px, py = pv.to_px(8.2, 8.7)  # in the vertebra's voxel (x 8 mm, z 4 * 2 mm), off its leader line
    assert px < w / 2 and py < h / 2  # right on the left, superior on top
    pixels = np.asarray(Image.open(io.BytesIO(drawn.png)).convert("RGB")).astype(int)
    r, g, b = pixels[int(py), int(px)]
    assert max(r, g, b) - min(r, g, b) > 20  # the coloured mask over the grey CT
    assert drawn.labels == ("L1",)


def test_labels_resampled_between_grids() -> None:
    ct = Volume(np.zeros((20, 16, 12), dtype=np.float32), np.diag([0.5, 0.5, 1.0, 1.0]))
    mask = Volume(np.zeros((10, 8, 6), dtype=np.uint8), np.diag([1.0, 1.0, 2.0, 1.0]))
    mask.array[2:4, 2:4, 2] = 21
    sl = labels_on_slice(StudyImages(ct, mask), "axial", 4)  # world z 4 mm = mask slice 2
    assert sl.shape == (20, 16) and set(np.unique(sl)) == {0, 21} and (sl == 21).sum() == 16


def test_height_profile_of_a_wedge() -> None:
    body = np.zeros((9, 10, 40), dtype=np.uint8)
    healthy = body.copy()
    for ap in range(10):
        body[2:7, ap, : 10 + 2 * ap] = 1  # taller anteriorly (AP index grows anteriorly)
        healthy[2:7, ap, :30] = 1
    prof = height_profile(Crop(body, (1.0, 1.0, 0.5)), Crop(healthy, (1.0, 1.0, 0.5)))
    np.testing.assert_allclose(prof["original"], 0.5 * (10 + 2 * np.arange(10)))
    np.testing.assert_allclose(prof["pseudo_healthy"], 15.0)
    np.testing.assert_allclose(prof["ap_mm"], np.arange(10.0))


def test_height_profile_spans_a_concave_wall() -> None:
    """A column past the body's waist crosses only the endplates' rims: its height is the
    distance between them, as the measurement takes it."""
    body = np.zeros((5, 6, 30), dtype=np.uint8)
    body[1:4, :, 5:25] = 1
    body[1:4, 5, 9:21] = 0  # the anterior wall's waist
    prof = height_profile(Crop(body, (1.0, 1.0, 0.5)), None)
    np.testing.assert_allclose(prof["original"], 10.0)
    assert np.isnan(prof["pseudo_healthy"]).all()
