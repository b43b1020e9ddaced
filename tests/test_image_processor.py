"""TiTokImageProcessor: any PIL mode to RGB, shorter-side bicubic resize + center crop, and back to uint8."""

import numpy as np
import PIL.Image
import pytest
import torch

from hf_titok import TiTokImageProcessor
from hf_titok.models.titok.image_processing_titok import to_uint8


@pytest.fixture
def processor():
    return TiTokImageProcessor.for_image_size(32)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "RGB", "I;16", "1"])
def test_every_mode_becomes_rgb_of_the_model_size(processor, mode):
    image = PIL.Image.fromarray((np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)).convert(mode)
    pixel_values = processor(image, return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (1, 3, 32, 32) and pixel_values.dtype == torch.float32
    assert 0.0 <= pixel_values.min() and pixel_values.max() <= 1.0


def test_transparent_pixels_become_white(processor):
    image = PIL.Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    assert torch.allclose(processor(image, return_tensors="pt")["pixel_values"], torch.ones(1, 3, 32, 32))


def test_grey_image_has_equal_channels(processor):
    image = PIL.Image.fromarray(np.arange(32 * 32, dtype=np.uint8).reshape(32, 32))
    pixel_values = processor(image, return_tensors="pt")["pixel_values"][0]
    assert torch.equal(pixel_values[0], pixel_values[1]) and torch.equal(pixel_values[1], pixel_values[2])


def test_resize_shorter_side_bicubic_then_center_crop(processor):
    rng = np.random.default_rng(1)
    array = (rng.random((48, 80, 3)) * 255).astype(np.uint8)
    pixel_values = processor(PIL.Image.fromarray(array), return_tensors="pt")["pixel_values"][0]
    # Reference: Pillow bicubic resize of the shorter side to 32 (80 -> 53), then the central 32 columns.
    resized = np.asarray(PIL.Image.fromarray(array).resize((53, 32), PIL.Image.BICUBIC), dtype=np.float32) / 255
    left = (53 - 32) // 2
    expected = torch.from_numpy(resized[:, left : left + 32]).permute(2, 0, 1)
    torch.testing.assert_close(pixel_values, expected, atol=1.5 / 255, rtol=0)


def test_exact_size_rgb_is_only_rescaled(processor):
    array = (np.random.default_rng(2).random((32, 32, 3)) * 255).astype(np.uint8)
    pixel_values = processor([array, PIL.Image.fromarray(array)], return_tensors="pt")["pixel_values"]
    expected = torch.from_numpy(array).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(pixel_values[0], expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(pixel_values[1], expected, atol=1e-6, rtol=0)


def test_postprocess_clamps_and_truncates_like_the_official_sampler():
    x = torch.tensor([-0.5, 0.0, 0.999, 1.0, 1.7, 0.5]).view(1, 1, 2, 3).expand(1, 3, 2, 3)
    truncated = to_uint8(x)
    assert truncated.dtype == torch.uint8 and truncated[0, 0].flatten().tolist() == [0, 0, 254, 255, 255, 127]
    assert to_uint8(x, "round")[0, 0].flatten().tolist() == [0, 0, 255, 255, 255, 128]
    images = TiTokImageProcessor.postprocess(x, output_type="pil")
    assert images[0].mode == "RGB" and images[0].size == (3, 2)
    assert np.array_equal(np.asarray(images[0]), truncated[0].permute(1, 2, 0).numpy())
    assert np.asarray(TiTokImageProcessor.postprocess(x, output_type="pil", rounding="round")[0])[0, 2, 0] == 255
    # "np" and "pt" mean what they mean in diffusers: float images in [0, 1].
    array = TiTokImageProcessor.postprocess(x, output_type="np")
    assert array.dtype == np.float32 and array.shape == (1, 2, 3, 3)
    assert array[0, :, :, 0].flatten().tolist() == pytest.approx([0, 0, 0.999, 1, 1, 0.5])
    tensor = TiTokImageProcessor.postprocess(x, output_type="pt")
    assert tensor.dtype == torch.float32 and tensor.shape == (1, 3, 2, 3) and float(tensor.max()) == 1.0


def test_round_trip_of_uint8_images_is_exact(processor):
    array = (np.random.default_rng(3).random((2, 32, 32, 3)) * 255).astype(np.uint8)
    pixel_values = processor(list(array), return_tensors="pt")["pixel_values"]
    assert np.array_equal(to_uint8(pixel_values, "round").permute(0, 2, 3, 1).numpy(), array)


def test_postprocess_errors():
    with pytest.raises(ValueError, match="output_type must be"):
        TiTokImageProcessor.postprocess(torch.zeros(1, 3, 2, 2), output_type="jpeg")
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        TiTokImageProcessor.postprocess(torch.zeros(3, 2, 2))


@pytest.mark.parametrize("pad", [False, True])
def test_processor_equals_the_training_augmentation_without_randomness(pad):
    """A recipe saves `augmentation.image_processor()` with the model: for any image, it gives what the augmentation
    gives with its center crop and no flip."""
    import random

    from hf_titok.data.images import Augmentation

    augmentation = Augmentation(32, random_crop=False, random_flip=False, pad_small_images=pad)
    processor = augmentation.image_processor()
    assert processor.do_pad is pad
    rng = np.random.default_rng(4)
    for size in [(20, 20), (28, 28), (32, 32), (28, 40), (64, 48), (33, 100), (300, 31)]:
        for mode in ("RGB", "L", "RGBA"):
            image = PIL.Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8)).convert(mode)
            expected = augmentation(image, random.Random(0))
            torch.testing.assert_close(processor(image, return_tensors="pt").pixel_values[0], expected, atol=0, rtol=0)


def test_float_arrays_are_taken_as_they_are(processor):
    array = np.random.default_rng(5).random((32, 32, 3)).astype(np.float32)
    for image in (array, torch.from_numpy(array), torch.from_numpy(array).permute(2, 0, 1)):
        torch.testing.assert_close(
            processor(image, return_tensors="pt").pixel_values[0], torch.from_numpy(array).permute(2, 0, 1)
        )
    uint8 = (array * 255).astype(np.uint8)
    torch.testing.assert_close(
        processor(uint8, return_tensors="pt").pixel_values[0], torch.from_numpy(uint8).permute(2, 0, 1).float() / 255
    )
    small = processor(np.full((16, 16), 0.25, np.float32), return_tensors="pt").pixel_values
    assert small.shape == (1, 3, 32, 32) and torch.allclose(small, torch.full_like(small, 0.25), atol=1e-6)
