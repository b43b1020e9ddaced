"""PSNR, SSIM and codebook statistics."""

import math

import torch

from hf_titok.evaluation.metrics import codebook_statistics, psnr, ssim


def test_psnr_of_a_known_error():
    target = torch.zeros(2, 3, 8, 8)
    noisy = target + 0.1  # MSE 0.01 -> 20 dB
    torch.testing.assert_close(psnr(noisy, target), torch.tensor([20.0, 20.0]))


def test_ssim_properties():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=generator)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-6)
    slightly = (x + 0.02 * torch.randn(x.shape, generator=generator)).clamp(0, 1)
    very = (x + 0.3 * torch.randn(x.shape, generator=generator)).clamp(0, 1)
    assert (ssim(slightly, x) > ssim(very, x)).all() and (ssim(very, x) < 0.9).all()
    torch.testing.assert_close(ssim(very, x), ssim(x, very))
    # A constant offset keeps the structure: SSIM stays high although PSNR drops.
    assert ssim((x * 0.8 + 0.1), x).mean() > 0.9


def test_ssim_matches_a_direct_computation_on_one_window():
    generator = torch.Generator().manual_seed(1)
    x, y = torch.rand(1, 1, 11, 11, generator=generator), torch.rand(1, 1, 11, 11, generator=generator)
    coords = torch.arange(11.0) - 5
    w = torch.exp(-(coords**2) / (2 * 1.5**2))
    w = torch.outer(w, w) / torch.outer(w, w).sum()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy, cxy = (w * x * x).sum() - mx**2, (w * y * y).sum() - my**2, (w * x * y).sum() - mx * my
    c1, c2 = 0.01**2, 0.03**2
    expected = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    torch.testing.assert_close(ssim(x, y)[0], expected, atol=1e-5, rtol=1e-5)


def test_codebook_statistics():
    stats = codebook_statistics(torch.tensor([[0, 1], [2, 3]]), codebook_size=8)
    assert stats["codebook_usage"] == 0.5 and math.isclose(stats["codebook_entropy_bits"], 2.0)
    assert math.isclose(stats["codebook_perplexity"], 4.0) and stats["max_entropy_bits"] == 3.0
