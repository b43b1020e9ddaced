"""Random numbers the diffusers way (`diffusers.utils.torch_utils.randn_tensor`), for uniform draws too.

- `generator=None`: torch's global RNG of the target device.
- one `torch.Generator`: numbers are drawn on the generator's device and moved to the target device, so a
  CPU generator gives the same numbers whatever device the model runs on (a CUDA generator cannot make
  CPU tensors).
- a list of generators, one per batch row: row `i` is drawn from `generator[i]` alone, so a sample depends
  only on its own generator and is the same whatever else is in the batch. A list of one is one generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from diffusers.utils.torch_utils import randn_tensor

GeneratorType = torch.Generator | Sequence[torch.Generator] | None


def check_generator(generator, batch_size: int | None = None, what: str = "generator") -> None:
    """Raise a `TypeError`/`ValueError` unless `generator` is `None`, a `torch.Generator`, or a list of them
    with one per batch row (`batch_size` rows, when given)."""
    if generator is None or isinstance(generator, torch.Generator):
        return
    if not isinstance(generator, (list, tuple)) or not all(isinstance(g, torch.Generator) for g in generator):
        raise TypeError(
            f"{what} must be a torch.Generator, a list of torch.Generators (one per image) or None, got "
            f"{type(generator).__name__}"
        )
    if not generator:
        raise ValueError(f"{what} is an empty list; give one torch.Generator per image, or one for all")
    if batch_size is not None and len(generator) not in (1, batch_size):
        raise ValueError(
            f"{what} is a list of {len(generator)} generators, but the batch has {batch_size} images: give one "
            "generator per image (or a single generator)"
        )


def _draw_device(generator: torch.Generator, device: torch.device) -> torch.device:
    if generator.device.type == device.type:
        return device
    if generator.device.type == "cpu":
        return generator.device
    raise ValueError(f"cannot draw {device} random numbers with a {generator.device.type} generator")


def _drawn(shape, generator: GeneratorType, device, dtype: torch.dtype, draw) -> torch.Tensor:
    """`draw(shape, generator, device, dtype)` as described in the module docstring: on the generator's device
    and moved, one row per generator for a list."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    shape = tuple(shape)
    if isinstance(generator, (list, tuple)) and len(generator) == 1:
        generator = generator[0]
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}: give one per row")
        rows = [draw((1,) + shape[1:], g, _draw_device(g, device), dtype).to(device) for g in generator]
        return torch.cat(rows)
    if generator is None:
        return draw(shape, None, device, dtype)
    return draw(shape, generator, _draw_device(generator, device), dtype).to(device)


def _uniform(shape, generator, device, dtype) -> torch.Tensor:
    if generator is None:  # no generator argument at all: compiled graphs with symbolic shapes need that overload
        return torch.rand(shape, device=device, dtype=dtype)
    return torch.rand(shape, generator=generator, device=device, dtype=dtype)


def rand_tensor(
    shape: Sequence[int],
    generator: GeneratorType = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Uniform [0, 1) numbers of `shape` on `device`, drawn as described in the module docstring."""
    return _drawn(shape, generator, device, dtype, _uniform)


def exponential_tensor(
    shape: Sequence[int],
    generator: GeneratorType = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Exp(1) numbers of `shape` on `device`, drawn as described in the module docstring: what `torch.multinomial`
    draws for one sample per row (it returns `argmax(probabilities / noise)`), so `(p / exponential_tensor(...))
    .argmax(-1)` with a CPU generator equals `torch.multinomial(p, 1, generator=...)` on the CPU - on any device."""
    return _drawn(
        shape,
        generator,
        device,
        dtype,
        lambda shape, g, device, dtype: torch.empty(shape, device=device, dtype=dtype).exponential_(generator=g),
    )


def random_orders(
    batch_size: int, num_positions: int, generator: GeneratorType = None, device: str | torch.device | None = None
) -> torch.LongTensor:
    """One random permutation of `0..num_positions-1` per row, `[batch_size, num_positions]`: the argsort of uniform
    numbers (`rand_tensor`, so one generator per row gives each row its own). Its first m entries are a random
    m-subset of the positions, in random order."""
    return rand_tensor((batch_size, num_positions), generator=generator, device=device).argsort(dim=1)


__all__ = ["GeneratorType", "check_generator", "exponential_tensor", "rand_tensor", "randn_tensor", "random_orders"]
