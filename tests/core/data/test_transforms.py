"""core.data.transforms, one image at a time, against hand-computed values and Pillow."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.data.transforms import Compose, CropROI, PercentileNormalize, Resize, box_inside


def test_percentile_normalize_hand_computed():
    image = np.arange(101, dtype=np.float32).reshape(1, 101)  # percentiles equal the values
    out = PercentileNormalize(10, 90)(image)
    assert out.dtype == np.float32
    assert out[0, 10] == 0 and out[0, 90] == 1
    assert out[0, 50] == pytest.approx(0.5)
    assert out[0, 0] == 0 and out[0, 100] == 1  # clipped


def test_percentile_normalize_ignores_a_hot_pixel():
    image = np.tile(np.linspace(0, 100, 100, dtype=np.float32), (100, 1))
    hot = image.copy()
    hot[0, 0] = 1e6
    # One pixel in 10,000 barely moves the percentiles (min-max scaling would crush all to ~0).
    np.testing.assert_allclose(
        PercentileNormalize()(hot)[1:], PercentileNormalize()(image)[1:], atol=0.02
    )
    assert PercentileNormalize()(hot)[1:].mean() == pytest.approx(0.5, abs=0.02)


def test_percentile_normalize_flat_image_is_zero():
    assert not PercentileNormalize()(np.full((4, 4), 7.0)).any()


def test_percentile_normalize_rejects_bad_percentiles():
    with pytest.raises(ValueError, match=r"0 <= low < high <= 100, got 90, 10"):
        PercentileNormalize(90, 10)


def test_crop_roi_squares_the_box_around_its_centre():
    image = np.arange(60 * 50, dtype=np.float32).reshape(60, 50)  # rows 60, cols 50
    crop = CropROI((10, 20, 30, 30), margin=0)  # 20 wide, 10 high -> 20x20 centred at (20, 25)
    assert crop.window() == (10, 15, 30, 35)
    np.testing.assert_array_equal(crop(image), image[15:35, 10:30])


def test_crop_roi_margin_grows_each_side():
    image = np.arange(100 * 100, dtype=np.float32).reshape(100, 100)
    crop = CropROI((40, 40, 60, 60), margin=0.1)  # side 20 * 1.2 = 24, centred at 50
    assert crop.window() == (38, 38, 62, 62)
    np.testing.assert_array_equal(crop(image), image[38:62, 38:62])


def test_crop_roi_pads_outside_the_image():
    image = np.ones((20, 20), dtype=np.float32)
    out = CropROI((0, 0, 10, 10), margin=0.5, fill=-1)(image)  # side 20 from -5 to 15
    assert out.shape == (20, 20)
    assert (out[:5] == -1).all() and (out[:, :5] == -1).all()
    assert (out[5:, 5:] == 1).all()


@pytest.mark.parametrize(
    "box, margin, match",
    [
        ((5, 5, 5, 10), 0.1, r"box 5,5,5,10 is empty"),
        ((1, 2, 3), 0.1, r"box must be x0, y0, x1, y1"),
        ((0, 0, 5, 5), -0.1, r"margin must lie in 0..2.*-0.1"),
    ],
    ids=["empty", "three-numbers", "negative-margin"],
)
def test_crop_roi_rejects(box, margin, match):
    with pytest.raises(ValueError, match=match):
        CropROI(box, margin)


@pytest.mark.parametrize(
    "box, inside",
    [
        ((0, 0, 64, 32), True),
        ((0, 0, 65, 32), False),
        ((-1, 0, 10, 10), False),
        ((0, 0, 10, 33), False),
    ],
    ids=["exact-fit", "too-wide", "negative", "too-tall"],
)
def test_box_inside_a_64_wide_32_high_image(box, inside):
    assert box_inside(box, rows=32, cols=64) is inside


def test_resize_matches_pillow_bilinear():
    rng = np.random.default_rng(0)
    from scipy.ndimage import gaussian_filter

    image = gaussian_filter(rng.random((60, 60)), 2).astype(np.float32)
    for size in (100, 30):  # up and down (Pillow also low-passes when shrinking)
        ours = Resize(size)(image)
        pil = np.asarray(Image.fromarray(image, mode="F").resize((size, size), Image.BILINEAR))
        assert ours.shape == (size, size)
        np.testing.assert_allclose(ours, pil, atol=2e-3)


@pytest.mark.parametrize("shape", [(37, 53), (250, 180), (12, 12), (400, 400), (99, 101)])
def test_resize_equals_torch_antialiased_bilinear_within_an_ulp(shape):
    import torch
    import torch.nn.functional as F

    image = np.random.default_rng(sum(shape)).random(shape, dtype=np.float32)
    expected = F.interpolate(
        torch.from_numpy(image)[None, None],
        size=(100, 100),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )[0, 0].numpy()
    np.testing.assert_allclose(Resize(100)(image), expected, rtol=0, atol=4e-7)


def test_resize_keeps_a_constant_and_skips_same_size():
    np.testing.assert_allclose(Resize(50)(np.full((13, 21), 0.25, np.float32)), 0.25, atol=1e-6)
    image = np.random.default_rng(1).random((16, 16)).astype(np.float32)
    np.testing.assert_array_equal(Resize(16)(image), image)


def test_compose_applies_in_order():
    image = np.arange(100, dtype=np.float32).reshape(10, 10)
    pipeline = Compose([CropROI((2, 2, 6, 6), margin=0), lambda a: a * 2, Resize(8)])
    direct = Resize(8)(image[2:6, 2:6] * 2)
    np.testing.assert_array_equal(pipeline(image), direct)
