"""Property-based tests (hypothesis): random shapes, dtypes and values given to the image processor, encode,
decode, the pipeline's arguments and the scheduler give either a valid result or one of our own errors (a
TypeError/ValueError raised by hf_titok with a message), never an error from inside torch, NumPy or PIL."""

import math
import traceback
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hf_titok
from hf_titok import TiTokImageProcessor, TiTokMaskGITScheduler, TiTokTokenizer

from conftest import tiny_pipeline, tiny_titok_config

PACKAGE = str(Path(hf_titok.__file__).parent)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def valid_or_our_error(function, *args, **kwargs):
    """Call `function`; an exception must be a TypeError/ValueError raised in hf_titok's own code. Returns the
    result, or None when the call was refused."""
    try:
        return function(*args, **kwargs)
    except (TypeError, ValueError) as error:
        origin = traceback.extract_tb(error.__traceback__)[-1].filename
        assert origin.startswith(PACKAGE), f"{type(error).__name__} from {origin}, not hf_titok: {error}"
        assert str(error), "an error without a message"
        return None


DTYPES = [np.uint8, np.int16, np.int64, np.float16, np.float32, np.float64, np.bool_, np.complex64]
SPECIAL = [0.0, 1.0, 0.5, -0.1, 1.5, 255.0, 300.0, math.nan, math.inf, -math.inf]


@st.composite
def arrays(draw):
    ndim = draw(st.sampled_from([0, 1, 2, 3, 4]))
    shape = []
    for axis in range(ndim):
        shape.append(
            draw(st.sampled_from([0, 1, 2, 3, 4, 5, 7, 16, 33])) if axis in (0, ndim - 1) else draw(st.integers(1, 40))
        )
    dtype = draw(st.sampled_from(DTYPES))
    values = draw(st.sampled_from(["uniform", "bytes", "special"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if values == "uniform":
        array = rng.random(shape)
    elif values == "bytes":
        array = rng.integers(0, 256, shape)
    else:
        array = np.full(shape, draw(st.sampled_from(SPECIAL)))
    with np.errstate(invalid="ignore", over="ignore"):
        return array.astype(dtype)


@SETTINGS
@given(array=arrays(), as_tensor=st.booleans(), pad=st.booleans())
def test_image_processor_on_random_arrays(array, as_tensor, pad):
    processor = TiTokImageProcessor.for_image_size(16, do_pad=pad)
    image = array
    if as_tensor and array.dtype not in (np.uint16,):
        try:
            image = torch.from_numpy(array)
        except TypeError:
            image = array
    out = valid_or_our_error(processor, image, return_tensors="pt")
    if out is not None:
        pixels = out["pixel_values"]
        assert pixels.shape[1:] == (3, 16, 16) and pixels.dtype == torch.float32
        assert torch.isfinite(pixels).all() and 0 <= pixels.min() and pixels.max() <= 1


@SETTINGS
@given(
    mode=st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I", "I;16", "F"]),
    width=st.integers(1, 50),
    height=st.integers(1, 50),
    pad=st.booleans(),
)
def test_image_processor_on_random_pil_images(mode, width, height, pad):
    image = PIL.Image.new(mode, (width, height))
    out = valid_or_our_error(TiTokImageProcessor.for_image_size(16, do_pad=pad), image, return_tensors="pt")
    assert out is not None and out["pixel_values"].shape == (1, 3, 16, 16)


@pytest.fixture(scope="module")
def tokenizers():
    torch.manual_seed(0)
    return {kind: TiTokTokenizer(tiny_titok_config(kind)).eval() for kind in ("single_vq", "vae")}


@st.composite
def tensors(draw):
    ndim = draw(st.sampled_from([0, 1, 2, 3, 4, 5]))
    shape = [draw(st.sampled_from([0, 1, 2, 3, 8, 16, 32])) for _ in range(ndim)]
    dtype = draw(
        st.sampled_from(
            [torch.float32, torch.float16, torch.float64, torch.int64, torch.int32, torch.uint8, torch.bool]
        )
    )
    fill = draw(st.sampled_from(["rand", "randint", "special"]))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    if fill == "rand":
        tensor = torch.rand(shape, generator=generator)
    elif fill == "randint":
        tensor = torch.randint(-5, 100, shape, generator=generator).float()
    else:
        tensor = torch.full(shape, draw(st.sampled_from(SPECIAL)))
    return tensor.to(dtype) if dtype != torch.bool else tensor > 0.5


@st.composite
def model_inputs(draw):
    """Tensors of the shapes the tokenizers take (pixels [B, 3, 32, 32], ids [B, 8], latents [B, 8, 8]) with random
    dtypes and values, and now and then one size off."""
    shape = list(draw(st.sampled_from([(3, 32, 32), (8,), (8, 8)])))
    if draw(st.integers(0, 4)) == 0:
        axis = draw(st.integers(0, len(shape) - 1))
        shape[axis] += draw(st.sampled_from([-1, 1]))
    batch = draw(st.integers(0, 3))
    dtype = draw(
        st.sampled_from(
            [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32, torch.uint8]
        )
    )
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    fill = draw(st.sampled_from(["rand", "ids", "special"]))
    if fill == "rand":
        tensor = torch.rand([batch, *shape], generator=generator)
    elif fill == "ids":
        tensor = torch.randint(0, draw(st.sampled_from([64, 65, 300])), [batch, *shape], generator=generator).float()
    else:
        tensor = torch.full([batch, *shape], draw(st.sampled_from(SPECIAL)))
    return tensor.to(dtype)


@SETTINGS
@given(tensor=st.one_of(tensors(), model_inputs()), kind=st.sampled_from(["single_vq", "vae"]))
def test_encode_and_decode_on_random_tensors(tokenizers, tensor, kind):
    model = tokenizers[kind]
    with torch.no_grad():
        encoded = valid_or_our_error(model.encode, tensor)
        if encoded is not None:
            assert tensor.shape[1:] == (3, 32, 32) and torch.isfinite(encoded.latents).all()
        decoded = valid_or_our_error(model.decode, tensor)
        if decoded is not None:
            assert decoded.shape == (tensor.shape[0], 3, 32, 32) and torch.isfinite(decoded).all()


ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.just([1, 2]),
    st.just(np.int64(3)),
    st.just(np.float32(0.5)),
)


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


@SETTINGS
@given(
    steps=st.one_of(st.integers(1, 8), ANY_VALUE),
    guidance=st.one_of(st.floats(0, 10), ANY_VALUE),
    temperature=st.one_of(st.floats(0, 5), ANY_VALUE),
    schedule=st.one_of(st.none(), st.sampled_from(["constant", "linear", "power-cosine", "cosine", ""])),
    labels=st.one_of(
        st.integers(-3, 12),
        st.text(max_size=4),
        st.lists(st.integers(0, 9), max_size=3),
        st.none(),
        st.floats(allow_nan=True),
    ),
    per_label=st.one_of(st.integers(-1, 3), ANY_VALUE),
)
def test_pipeline_arguments(pipe, steps, guidance, temperature, schedule, labels, per_label):
    ids = valid_or_our_error(
        pipe,
        labels,
        num_images_per_label=per_label,
        num_inference_steps=steps,
        guidance_scale=guidance,
        temperature=temperature,
        guidance_schedule=schedule,
        output_type="latent",
        generator=torch.Generator().manual_seed(0),
    )
    if ids is not None:
        ids = ids.images
        assert ids.dtype == torch.int64 and ids.shape[1] == 8 and int(ids.min()) >= 0 and int(ids.max()) < 64


@st.composite
def step_inputs(draw):
    """Logits [B, N, K] and ids [B, N] that mostly fit together, with random values (masks included)."""
    batch, tokens, codes = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(2, 9))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    logits = torch.randn(batch, tokens, codes, generator=generator)
    sample = torch.randint(0, codes + 1, (batch, tokens + draw(st.sampled_from([0, 0, 0, 1]))), generator=generator)
    return logits, sample


@SETTINGS
@given(
    steps=st.one_of(st.integers(1, 6), ANY_VALUE),
    guidance=st.one_of(st.floats(0, 10), ANY_VALUE),
    power=ANY_VALUE,
    inputs=st.one_of(step_inputs(), st.tuples(tensors(), tensors())),
    timestep=st.one_of(st.integers(-1, 6), ANY_VALUE),
)
def test_scheduler_on_random_arguments(steps, guidance, power, inputs, timestep):
    logits, sample = inputs
    scheduler = valid_or_our_error(
        TiTokMaskGITScheduler,
        num_inference_steps=steps if steps is not None else 4,
        guidance_scale=guidance if guidance is not None else 1.0,
        guidance_scale_pow=power if power is not None else 3.0,
    )
    if scheduler is None:
        return
    scheduler.set_timesteps()
    out = valid_or_our_error(scheduler.step, logits, timestep, sample)
    if out is not None:
        codes = logits.shape[-1]
        assert out.prev_sample.shape == sample.shape and int(out.prev_sample.max()) <= codes
