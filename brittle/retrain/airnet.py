"""`arch=airnet`: the network of airbench (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds on a
single GPU"), re-implemented here: a frozen 2x2 patch-whitening first convolution initialised from
the training images' patch covariance, then a small VGG-like net (widths 64/256/256, GELU,
BatchNorm with frozen scale), global max pooling and a scaled linear head. `trainer=fast`
(fast_trainer.py) trains it."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class _Norm(nn.BatchNorm2d):
    """BatchNorm with a frozen unit scale (only the bias trains)."""

    def __init__(self, channels: int, momentum: float):
        super().__init__(channels, eps=1e-12, momentum=momentum)
        self.weight.requires_grad_(False)


def _conv(cin: int, cout: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 3, padding="same", bias=False)
    with torch.no_grad():   # identity on the first channels: an implicit residual at init
        nn.init.dirac_(conv.weight[:min(cin, cout)])
    return conv


class _Pool(nn.Module):
    """2x2 max pooling; images already down to one pixel (small inputs like digits) pass."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, 2) if min(x.shape[2:]) >= 2 else x


class _Block(nn.Sequential):
    def __init__(self, cin: int, cout: int, momentum: float):
        super().__init__(_conv(cin, cout), _Pool(), _Norm(cout, momentum), nn.GELU(),
                         _conv(cout, cout), _Norm(cout, momentum), nn.GELU())


class AirNet(nn.Module):
    """Whitening conv, three conv blocks, global max pool, linear head scaled by 1/9.
    Maps [B, C, H, W] to logits [B, num_classes]."""

    def __init__(self, in_shape: Sequence[int], num_classes: int, width: int = 64,
                 whiten_kernel: int = 2, bn_momentum: float = 0.4, scale: float = 1 / 9):
        super().__init__()
        c = int(in_shape[0])
        self.whiten = nn.Conv2d(c, 2 * c * whiten_kernel ** 2, whiten_kernel, bias=True)
        self.whiten.weight.requires_grad_(False)
        widths = (width, 4 * width, 4 * width)
        self.blocks = nn.Sequential(_Block(self.whiten.out_channels, widths[0], bn_momentum),
                                    _Block(widths[0], widths[1], bn_momentum),
                                    _Block(widths[1], widths[2], bn_momentum))
        self.head = nn.Linear(widths[2], num_classes, bias=False)
        self.scale = scale

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the first conv to +-(eigenvectors / sqrt(eigenvalues)) of the patch covariance of
        images [M, C, H, W] (normalised training images)."""
        k = self.whiten.kernel_size[0]
        patches = images.float().unfold(2, k, 1).unfold(3, k, 1)          # [M, C, h, w, k, k]
        flat = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, images.shape[1] * k * k)
        cov = flat.T @ flat / flat.shape[0]
        eigval, eigvec = torch.linalg.eigh(cov)
        filters = (eigvec.T / torch.sqrt(eigval + eps)[:, None]).flip(0)
        filters = filters.reshape(-1, images.shape[1], k, k)
        self.whiten.weight.copy_(torch.cat([filters, -filters]).to(self.whiten.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.gelu(self.whiten(x)))
        return self.head(torch.amax(x, dim=(2, 3))) * self.scale
