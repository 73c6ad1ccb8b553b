"""The kNN monitor of pretraining: held-out training images classified by their nearest
neighbours among the other training images, in the backbone's normalised feature space
(lightly's `knn_predict`, k = 20, temperature 0.1, as lightly's CIFAR-10 benchmark)."""
from __future__ import annotations

import torch
from lightly.utils.benchmarking import knn_predict
from torch import nn

Monitor = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@torch.no_grad()
def knn_accuracy(backbone: nn.Module, monitor: Monitor, device: torch.device, k: int = 20,
                 temperature: float = 0.1) -> float:
    """Accuracy of the queries of `monitor` = (bank images [N, C, H, W], bank labels [N], query
    images [M, C, H, W], query labels [M]) against the bank; the backbone is in evaluation mode
    meanwhile and returned to its mode."""
    bank_x, bank_y, query_x, query_y = monitor
    was_training = backbone.training
    backbone.eval()

    def embed(x: torch.Tensor) -> torch.Tensor:
        # `forward`: eager even when training compiled the network (no recompiling for
        # evaluation mode and the last partial chunk)
        out = [backbone.forward(x[i:i + 512].to(device)).flatten(1) for i in range(0, len(x), 512)]
        return nn.functional.normalize(torch.cat(out), dim=1)

    bank, queries = embed(bank_x), embed(query_x)
    classes = int(bank_y.max()) + 1
    pred = knn_predict(queries, bank.T, bank_y.to(device), classes, min(k, len(bank)), temperature)
    backbone.train(was_training)
    return float((pred[:, 0].cpu() == query_y).float().mean())
