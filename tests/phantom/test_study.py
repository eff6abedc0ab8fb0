"""Phantom studies: reproducible from a seed, CT in HU, files in the configured geometry."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from healthivert.io import load_ct, load_mask
from healthivert.phantom import FractureSpec, PhantomConfig, make_phantom, write_phantom

TINY_CFG = PhantomConfig(top="L1", bottom="L2", slice_mm=2.0)


def _files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_the_same_bytes(tmp_path):
    write_phantom(make_phantom(TINY_CFG, seed=3), tmp_path / "a")
    write_phantom(make_phantom(TINY_CFG, seed=3), tmp_path / "b")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(a) == 5  # ct, mask, body mask, centroids, truth
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], name


def test_different_seeds_differ(tmp_path):
    s3 = make_phantom(TINY_CFG, seed=3)
    s4 = make_phantom(TINY_CFG, seed=4)
    assert s3.subject != s4.subject
    assert s3.ct.shape != s4.ct.shape or not np.array_equal(s3.ct.array, s4.ct.array)
    write_phantom(s3, tmp_path / "x")
    write_phantom(s4, tmp_path / "y")
    a, b = _files(tmp_path / "x"), _files(tmp_path / "y")
    assert len(a) == len(b) == 5
    for (name_a, data_a), (name_b, data_b) in zip(sorted(a.items()), sorted(b.items())):
        assert name_a.replace("0003", "0004") == name_b
        assert data_a != data_b, name_a


@pytest.mark.parametrize(
    "axcodes, in_plane_mm, slice_mm",
    [
        ("IPL", 0.8, 1.25),  # the session phantom's geometry
        ("LPS", 0.7, 2.5),
        ("RAS", 1.0, 1.0),
        ("PIR", 0.6, 3.0),
    ],
)
def test_written_orientation_and_spacing_follow_the_config(tmp_path, fractured_phantom, axcodes, in_plane_mm,
                                                           slice_mm):
    if (axcodes, in_plane_mm, slice_mm) == ("IPL", 0.8, 1.25):
        paths = fractured_phantom.paths
    else:
        cfg = PhantomConfig(top="L1", bottom="L1", orientation=axcodes, in_plane_mm=in_plane_mm, slice_mm=slice_mm)
        paths = write_phantom(make_phantom(cfg, seed=1), tmp_path)
    ras_spacing = {"R": in_plane_mm, "L": in_plane_mm, "A": in_plane_mm, "P": in_plane_mm,
                   "S": slice_mm, "I": slice_mm}
    for part in ("ct", "mask", "body_mask"):
        img = nib.load(str(paths[part]))
        assert nib.aff2axcodes(img.affine) == tuple(axcodes), part
        np.testing.assert_allclose(img.header.get_zooms()[:3], [ras_spacing[c] for c in axcodes], atol=1e-5)
    # inside, every image is RAS with the same anisotropic voxel
    np.testing.assert_allclose(load_ct(paths["ct"]).spacing_mm, [in_plane_mm, in_plane_mm, slice_mm], atol=1e-5)


def _mean_hu(ct, world_mm) -> float:
    """Mean of the 3 x 3 x 3 voxels around a world point (averages out the 20 HU noise)."""
    i, j, k = np.round(ct.world_to_voxel(np.asarray(world_mm, float))).astype(int)
    return float(ct.array[i - 1:i + 2, j - 1:j + 2, k - 1:k + 2].mean())


@pytest.fixture(scope="module")
def phantom_images(any_phantom):
    return (load_ct(any_phantom.paths["ct"]), load_mask(any_phantom.paths["body_mask"]),
            load_mask(any_phantom.paths["mask"]), any_phantom.truth)


def test_ct_is_in_hounsfield_units(phantom_images):
    ct, body, mask, truth = phantom_images
    assert ct.array.min() >= -1024
    for v in truth["vertebrae"]:
        in_body = body.array == v["label"]
        trabecular = ndimage.binary_erosion(in_body, iterations=3)
        shell = in_body & ~ndimage.binary_erosion(in_body)
        assert 50 <= _mean_hu(ct, v["body_centre_mm"]) <= 350, v["name"]
        assert 50 <= np.median(ct.array[trabecular]) <= 350, v["name"]
        assert np.percentile(ct.array[shell], 90) > 500, v["name"]  # cortical shell
        posterior = (mask.array == v["label"]) & ~in_body
        assert np.median(ct.array[posterior]) > 300, v["name"]  # posterior elements are bone too
    # the field of view's posterior corners are outside the body: air
    assert -1024 <= ct.array[:3, :3, :].mean() <= -950
    # 6 cm in front of the lowest body: soft tissue
    assert -150 <= _mean_hu(ct, np.add(truth["vertebrae"][-1]["body_centre_mm"], [0.0, 60.0, 0.0])) <= 150


def test_discs_are_soft_tissue(phantom_images):
    ct, body, _, truth = phantom_images
    vertebrae = truth["vertebrae"]
    for upper, lower in zip(vertebrae, vertebrae[1:]):
        a, b = np.array(upper["body_centre_mm"]), np.array(lower["body_centre_mm"])
        points = a + np.linspace(0, 1, 400)[:, None] * (b - a)
        labels = body.array[tuple(np.round(body.world_to_voxel(points)).astype(int).T)]
        gap = np.flatnonzero(labels == 0)  # between the two bodies, along the line joining their centres
        assert len(gap) > 0 and np.all(np.diff(gap) == 1)
        disc_centre = points[(gap[0] + gap[-1]) // 2]
        assert -150 <= _mean_hu(ct, disc_centre) <= 150, (upper["name"], lower["name"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"orientation": "XYZ"}, "orientation must be three axis codes"),
        ({"orientation": "RAA"}, "orientation must be three axis codes"),
        ({"orientation": "LPSI"}, "orientation must be three axis codes"),
        ({"slice_mm": 0.0}, "slice_mm must be a positive voxel size in mm; got 0.0"),
        ({"in_plane_mm": -0.5}, "in_plane_mm must be a positive voxel size in mm; got -0.5"),
    ],
)
def test_config_checks_its_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PhantomConfig(**kwargs)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: PhantomConfig(top="L2", bottom="T12").labels(), "vertebra range must run cranial to caudal"),
        (lambda: PhantomConfig(top="C3").labels(), "within T1..L5; got C3-L5"),
        (lambda: FractureSpec("L1", 4, "wedge"), "fracture grade must be 1-3; got 4"),
        (lambda: FractureSpec("L1", 2, "burst"), "morphology must be one of"),
        (lambda: FractureSpec("L9", 2, "wedge"), "unknown vertebra name 'L9'"),
        (lambda: make_phantom(PhantomConfig(top="L1", bottom="L2", fractures=(FractureSpec("T8", 1, "crush"),)), 0),
         "fracture at T8 is outside the range L1-L2"),
    ],
)
def test_bad_phantom_requests_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_pelvis_adds_sacral_bone_and_unlabelled_iliac_wings():
    """``pelvis``: the sacrum gains alae and lower segments (more label 26) and the iliac wings
    appear as bone without a label; the vertebrae and their truth are untouched."""
    cfg = dict(top="L3", bottom="L5", in_plane_mm=1.0, slice_mm=1.0, orientation="RAS", margin_below_mm=60.0)
    plain = make_phantom(PhantomConfig(**cfg), 5)
    pelvis = make_phantom(PhantomConfig(**cfg, pelvis=True), 5)
    assert (pelvis.mask.array == 26).sum() > 1.4 * (plain.mask.array == 26).sum()
    unlabelled_bone = (pelvis.ct.array > 400) & (pelvis.mask.array == 0)
    assert unlabelled_bone.sum() > 5 * ((plain.ct.array > 400) & (plain.mask.array == 0)).sum()
    for label in (22, 23, 24):
        assert np.array_equal(pelvis.mask.array == label, plain.mask.array == label)
    assert pelvis.truth["vertebrae"] == plain.truth["vertebrae"]


def test_dim_bone_dims_posterior_elements_and_cortex_only():
    """``dim_bone``: the posterior elements and cortex are drawn dimmer (per study, above the
    trabecular bone); masks, truth and the trabecular bone are those of the same seed without it."""
    cfg = dict(top="L3", bottom="L5", in_plane_mm=1.0, slice_mm=1.0, orientation="RAS")
    plain = make_phantom(PhantomConfig(**cfg), 5)
    dim = make_phantom(PhantomConfig(**cfg, dim_bone=True), 5)
    assert np.array_equal(plain.mask.array, dim.mask.array)
    assert np.array_equal(plain.body_mask.array, dim.body_mask.array)
    assert plain.truth["vertebrae"] == dim.truth["vertebrae"]
    posterior = (plain.mask.array > 0) & (plain.body_mask.array == 0) & (plain.ct.array > 500)
    trabecular_hu = plain.truth["trabecular_hu"]
    assert trabecular_hu + 40 < np.median(dim.ct.array[posterior]) < np.median(plain.ct.array[posterior]) - 100
    core = ndimage.binary_erosion(plain.body_mask.array > 0, iterations=3)
    assert abs(np.median(dim.ct.array[core]) - np.median(plain.ct.array[core])) < 5


def _region_hu(study) -> dict[str, np.ndarray]:
    """CT HU of a study's regions by its own truth mask, as docs/experiments.md measured real
    CT: trabecular core (>= 5 mm inside the mask), cortex rim (within 1.5 mm of its surface),
    disc (within 4 mm of the midpoint of two neighbouring body centres, >= 1 mm from bone)."""
    ct, mask = study.ct.array.astype(np.float32), study.mask.array > 0
    spacing, origin = np.diag(study.ct.affine)[:3], study.ct.affine[:3, 3]  # RAS, axis-aligned
    inside = ndimage.distance_transform_edt(mask, sampling=spacing)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    xyz = np.moveaxis(np.indices(ct.shape), 0, -1) * spacing + origin
    disc = np.zeros(ct.shape, bool)
    centres = [np.array(v["body_centre_mm"]) for v in study.truth["vertebrae"]]
    for a, b in zip(centres[:-1], centres[1:]):
        disc |= np.linalg.norm(xyz - (a + b) / 2, axis=-1) <= 4.0
    return {"core": ct[inside >= 5.0], "rim": ct[mask & (inside <= 1.5)], "disc": ct[disc & (outside >= 1.0)]}


def _median_iqr(values: np.ndarray) -> tuple[float, float]:
    q1, q2, q3 = np.percentile(values, [25, 50, 75])
    return float(q2), float(q3 - q1)


@pytest.mark.parametrize("seed", [5, 8])
def test_real_contrast_draws_the_hu_measured_on_real_ct(seed):
    """``real_contrast``: trabecular cores, cortex rims and discs read as on the real VerSe CTs
    (docs/experiments.md: cores 106-130 HU median with an IQR of ~115 HU, rims 291-373 HU,
    discs 69-88 HU), not as the default phantom (core IQR ~35 HU, rim ~540 HU); the anatomy,
    masks and fractures are those of the same seed without it."""
    cfg = dict(top="L2", bottom="L5", in_plane_mm=1.0, slice_mm=1.0, orientation="RAS")
    plain = make_phantom(PhantomConfig(**cfg), seed)
    real = make_phantom(PhantomConfig(**cfg, real_contrast=True), seed)
    assert np.array_equal(plain.mask.array, real.mask.array)
    assert np.array_equal(plain.body_mask.array, real.body_mask.array)
    drop = ("trabecular_hu",)
    assert ([{k: v for k, v in r.items() if k not in drop} for r in plain.truth["vertebrae"]]
            == [{k: v for k, v in r.items() if k not in drop} for r in real.truth["vertebrae"]])
    assert 100.0 <= real.truth["trabecular_hu"] <= 180.0
    regions = _region_hu(real)
    core, core_iqr = _median_iqr(regions["core"])
    rim, _ = _median_iqr(regions["rim"])
    disc, disc_iqr = _median_iqr(regions["disc"])
    assert 80 <= core <= 200 and 70 <= core_iqr <= 170
    assert 250 <= rim <= 470 and rim > core + 80
    assert 20 <= disc <= 120 and disc_iqr >= 40
    plain_regions = _region_hu(plain)
    assert _median_iqr(plain_regions["core"])[1] < 0.6 * core_iqr  # the default: narrow cores
    assert _median_iqr(plain_regions["rim"])[0] > rim + 60  # and bright rims


def test_real_contrast_is_off_by_default_and_leaves_the_default_phantom_unchanged():
    """The default study does not depend on ``real_contrast`` being off, to the byte (the SHA-256
    of a small study's CT and mask, recorded when healthy wedges took the published spread,
    2026-12-06: a change here moves every phantom, test figure, benchmark and cached feature)."""
    import hashlib

    cfg = dict(top="L3", bottom="L5", in_plane_mm=1.0, slice_mm=2.0, orientation="RAS")
    assert PhantomConfig().real_contrast is False
    study = make_phantom(PhantomConfig(**cfg), 11)
    assert np.array_equal(study.ct.array, make_phantom(PhantomConfig(**cfg, real_contrast=False), 11).ct.array)
    assert hashlib.sha256(study.ct.array.tobytes()).hexdigest() == (
        "1d26a9996183370794c5d2a492c010701a621430115756e88733aba7d68d125c")
    assert hashlib.sha256(study.mask.array.tobytes()).hexdigest() == (
        "3a3ac384762f0d935c669a52a4368b768552810feb46f5f2b0c10ef42c69097d")
    pelvis = make_phantom(PhantomConfig(**cfg, pelvis=True), 11)
    assert hashlib.sha256(pelvis.ct.array.tobytes()).hexdigest() == (
        "43ce22e2b131ed8e1def5b1d85370bfb7e18193c4a241b6c25a35cdfbb212a7b")


def test_margin_below_widens_the_view_below_only():
    cfg = dict(top="L3", bottom="L5", in_plane_mm=1.0, slice_mm=1.0, orientation="RAS")
    base = make_phantom(PhantomConfig(**cfg), 5)
    deeper = make_phantom(PhantomConfig(**cfg, margin_below_mm=40.0), 5)
    top = lambda s: s.ct.affine[2, 3] + s.ct.affine[2, 2] * (s.ct.shape[2] - 1)  # noqa: E731
    assert deeper.ct.shape[2] - base.ct.shape[2] == 28  # 40 - 12 mm at 1 mm
    assert abs(top(deeper) - top(base)) < 1e-6


def test_intact_twin_shares_every_draw_but_the_fracture():
    """``intact``: the same study with its fractured body left at the healthy height; every
    vertebra keeps its shape and the neighbours move up to the taller body."""
    cfg = dict(top="L2", bottom="L4", in_plane_mm=1.0, slice_mm=1.0, orientation="RAS",
               fractures=(FractureSpec("L3", 3, "crush"),), deformity_rate=0.0)
    fractured = make_phantom(PhantomConfig(**cfg), 5)
    twin = make_phantom(PhantomConfig(**cfg, intact=True), 5)
    for f, t in zip(fractured.truth["vertebrae"], twin.truth["vertebrae"]):
        assert f["healthy_heights_mm"] == t["healthy_heights_mm"] == t["fractured_heights_mm"]
        assert t["genant_grade"] == 0 and f["genant_grade"] == (3 if f["name"] == "L3" else 0)
    assert fractured.truth["trabecular_hu"] == twin.truth["trabecular_hu"]
    volume = {name: [int((s.body_mask.array == lab).sum()) for lab in (21, 22, 23)]  # L2, L3, L4
              for name, s in (("fractured", fractured), ("twin", twin))}
    assert volume["twin"][1] > 1.5 * volume["fractured"][1]  # a grade-3 crush loses > 40 %
    assert all(abs(a - b) <= 0.02 * b for a, b in zip(volume["twin"][::2], volume["fractured"][::2]))


def test_biconcave_body_keeps_its_neighbours_where_its_intact_twin_has_them():
    """A biconcave fracture sinks the endplates inside an intact rim: the neighbours rest on the
    rim, so they (and the discs at the rim) are where they are in the intact twin, and the
    body lost bone only inside itself. A crush brings its neighbours closer."""
    cfg = dict(top="L2", bottom="L4", in_plane_mm=1.0, slice_mm=1.0, orientation="RAS", deformity_rate=0.0)
    for morphology, neighbours_stay in (("biconcave", True), ("crush", False)):
        spec = dict(cfg, fractures=(FractureSpec("L3", 3, morphology),))
        fractured, twin = (make_phantom(PhantomConfig(**spec, intact=intact), 5) for intact in (False, True))
        same = fractured.mask.array.shape == twin.mask.array.shape and all(
            np.array_equal(fractured.mask.array == lab, twin.mask.array == lab) for lab in (21, 23))  # L2, L4
        assert same == neighbours_stay, morphology
        if morphology == "biconcave":
            body, intact_body = (s.body_mask.array == 22 for s in (fractured, twin))
            assert not (body & ~intact_body).any() and intact_body.sum() > 1.2 * body.sum()


def test_body_proportions_scale_the_bodies_and_vary_proportions_draws_them_per_study():
    """``body_proportions`` scales every body's (height, depth, width); ``vary_proportions``
    draws a study's factors from ``PROPORTION_RANGES`` on a stream of its own, so the other
    draws (bone density, sizes before the factors) stay those of the fixed study."""
    from healthivert.phantom.study import PROPORTION_RANGES, study_proportions

    cfg = dict(top="L2", bottom="L3", in_plane_mm=1.5, slice_mm=1.5, fractures=(), deformity_rate=0.0)
    size = {}
    for name, extra in (("fixed", {}), ("taller", {"body_proportions": (1.1, 1.0, 1.0)}),
                        ("drawn", {"vary_proportions": True})):
        study = make_phantom(PhantomConfig(**cfg, **extra), 9)
        size[name] = [v["body_size_mm"] for v in study.truth["vertebrae"]]
        size[name + "_hu"] = study.truth["trabecular_hu"]
    k = study_proportions(PhantomConfig(vary_proportions=True), 9)
    assert all(lo <= f <= hi for f, (lo, hi) in zip(k, PROPORTION_RANGES)) and k != (1.0, 1.0, 1.0)
    assert study_proportions(PhantomConfig(vary_proportions=True), 10) != k  # per study
    for fixed, taller, drawn in zip(size["fixed"], size["taller"], size["drawn"]):
        assert taller["height"] == pytest.approx(1.1 * fixed["height"], abs=2e-3)
        assert taller["width"] == fixed["width"]
        for f, key in zip(k, ("height", "depth", "width")):
            assert drawn[key] == pytest.approx(f * fixed[key], abs=2e-3)
    assert size["fixed_hu"] == size["taller_hu"] == size["drawn_hu"]
