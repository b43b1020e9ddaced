"""torch.compile (fullgraph, zero graph breaks) and torch.export (dynamic batch) of the generator forward, the
tokenizer encode/decode and the scheduler step; compiled and exported outputs equal eager; the sampling loop
never reads a tensor back to the host."""

import contextlib

import pytest
import torch
from torch.export import Dim, export

from hf_titok import MaskGITVQGAN, MaskGITVQGANConfig, TiTokMaskGIT, TiTokMaskGITScheduler, TiTokTokenizer

from conftest import tiny_maskgit_config, tiny_pipeline, tiny_titok_config

BATCH = Dim("batch", min=1, max=256)


def tokenizer(kind: str) -> TiTokTokenizer:
    torch.manual_seed(0)
    return TiTokTokenizer(tiny_titok_config(kind)).eval()


def vqgan() -> MaskGITVQGAN:
    torch.manual_seed(0)
    return MaskGITVQGAN(
        MaskGITVQGANConfig(
            image_size=32,
            hidden_channels=32,
            channel_mult=[1, 1, 2, 2],
            num_res_blocks=1,
            z_channels=16,
            codebook_size=128,
        )
    ).eval()


class Call(torch.nn.Module):
    """Wraps one entry point of a model as `forward`, which is what torch.export traces."""

    def __init__(self, model, method: str, output: str | None = None):
        super().__init__()
        self.model, self.method, self.output = model, method, output

    def forward(self, first, second=None):
        args = (first,) if second is None else (first, second)
        result = getattr(self.model, self.method)(*args)
        return getattr(result, self.output) if self.output else result


def entry_points():
    """(name, module wrapping the entry point, example inputs) for every graph we compile and export."""
    pixels, ids = torch.rand(2, 3, 32, 32), torch.randint(0, 64, (2, 8))
    for kind in ("two_stage", "single_vq"):
        model = tokenizer(kind)
        yield f"{kind}.encode", Call(model, "encode", "token_ids"), (pixels,)
        yield f"{kind}.decode", Call(model, "decode"), (ids,)
    vae = tokenizer("vae")
    yield "vae.encode", Call(vae, "encode", "latents"), (pixels,)
    yield "vae.decode", Call(vae, "decode"), (torch.randn(2, 8, 8),)
    teacher = vqgan()
    yield "vqgan.encode", Call(teacher, "encode", "codes"), (pixels,)
    yield "vqgan.decode", Call(teacher, "decode"), (torch.randint(0, 128, (2, 16)),)
    for architecture in ("bert", "uvit"):
        torch.manual_seed(0)
        generator = TiTokMaskGIT(tiny_maskgit_config(architecture)).eval()
        yield (
            f"{architecture}.forward",
            Call(generator, "forward", "logits"),
            (torch.randint(0, 65, (2, 8)), torch.tensor([1, 10])),
        )


ENTRY_POINTS = list(entry_points())
NAMES = [name for name, _, _ in ENTRY_POINTS]


@pytest.mark.parametrize("index", range(len(ENTRY_POINTS)), ids=NAMES)
@torch.no_grad()
def test_zero_graph_breaks(index):
    name, module, inputs = ENTRY_POINTS[index]
    explanation = torch._dynamo.explain(module)(*inputs)
    assert explanation.graph_break_count == 0, f"{name}: {explanation.break_reasons}"
    assert explanation.graph_count == 1


@pytest.mark.parametrize("index", range(len(ENTRY_POINTS)), ids=NAMES)
@torch.no_grad()
def test_export_with_a_dynamic_batch_equals_eager(index):
    name, module, inputs = ENTRY_POINTS[index]
    program = export(module, inputs, dynamic_shapes=tuple({0: BATCH} for _ in inputs))
    exported = program.module()
    for batch in (1, 3):  # other batch sizes than the traced one
        resized = tuple(x[:1].repeat(batch, *[1] * (x.ndim - 1)) for x in inputs)
        torch.testing.assert_close(exported(*resized), module(*resized), atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("name", ["single_vq.encode", "two_stage.decode", "bert.forward"])
@torch.no_grad()
def test_compiled_equals_eager(name):
    """Inductor on CPU compiles a tiny graph in ~5-20 s, so three representative graphs are compiled here; the
    zero-graph-break test above covers all of them."""
    _, module, inputs = ENTRY_POINTS[NAMES.index(name)]
    compiled = torch.compile(module, fullgraph=True)
    torch.testing.assert_close(compiled(*inputs), module(*inputs), atol=1e-5, rtol=0)


def test_scheduler_step_compiles_and_exports():
    import torch._inductor.config as inductor_config

    scheduler = TiTokMaskGITScheduler(
        num_inference_steps=3,
        guidance_scale=2.0,
        guidance_schedule="linear",
        temperature=2.0,
        softmax_temperature_annealing=True,
    )
    scheduler.set_timesteps()
    logits = torch.randn(3, 8, 64, generator=torch.Generator().manual_seed(0))
    sample = torch.full((3, 8), 64)

    def step(logits, sample, timestep: int):
        return scheduler.step(logits, timestep, sample).prev_sample

    explanation = torch._dynamo.explain(step)(logits, sample, 0)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    # Inductor generates its own random numbers unless told to call torch's (then they equal eager's).
    with unittest_patch(inductor_config, "fallback_random", True):
        compiled = torch.compile(step, fullgraph=True)
        for timestep in range(3):
            torch.manual_seed(timestep)
            expected = step(logits, sample, timestep)
            torch.manual_seed(timestep)
            assert torch.equal(compiled(logits, sample, timestep), expected)

    class Step(torch.nn.Module):
        def forward(self, logits, sample):
            return scheduler.step(logits, 1, sample).prev_sample

    program = export(Step(), (logits, sample), dynamic_shapes=({0: BATCH}, {0: BATCH}))
    torch.manual_seed(0)
    exported = program.module()(logits[:2], sample[:2])
    torch.manual_seed(0)
    assert torch.equal(exported, Step()(logits[:2], sample[:2]))


@contextlib.contextmanager
def unittest_patch(target, name, value):
    old = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, old)


# ---------------------------------------------------------------------------------------------------------
# No host reads inside the sampling loop
# ---------------------------------------------------------------------------------------------------------

HOST_READS = ("item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__")


@contextlib.contextmanager
def record_host_reads(reads: list):
    """Record every Python-level read of a tensor's values (what forces a device-to-host sync on a GPU) while
    `reads` is armed (its first element True)."""
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def wrap(name, original):
        def recorded(self, *args, **kwargs):
            if reads and reads[0]:
                import traceback

                reads.append((name, traceback.format_stack(limit=4)[0].strip()))
            return original(self, *args, **kwargs)

        return recorded

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


@pytest.mark.parametrize("schedule", ["linear", "power-cosine"])
def test_the_sampling_loop_never_reads_tensors_back(schedule):
    pipe = tiny_pipeline()
    reads = [False]
    step, forward = pipe.scheduler.step, pipe.transformer.forward

    def armed(function):
        def call(*args, **kwargs):
            reads[0] = True
            try:
                return function(*args, **kwargs)
            finally:
                reads[0] = False

        return call

    pipe.scheduler.step = armed(step)
    pipe.transformer.forward = armed(forward)
    with record_host_reads(reads):
        ids = pipe(
            [1, 2],
            num_inference_steps=5,
            guidance_schedule=schedule,
            guidance_scale=3.0,
            generator=torch.Generator().manual_seed(0),
            output_type="latent",
        ).images
    assert ids.shape == (2, 8) and reads[1:] == []
    # The guard works: a forward with value checks on does read.
    reads[:] = [True]
    with record_host_reads(reads):
        forward(ids, torch.tensor([1, 2]))
    assert any(name == "item" for name, _ in reads[1:])
