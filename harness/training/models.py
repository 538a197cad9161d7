"""Teacher ResNet and student GRU-MLP. Both take calibrated int16 counts as float tensors [B, T, 3].

Input normalisation is part of each model (:class:`InputNorm`): per-axis mean (in counts) and a
per-axis gain, fitted on the training windows. On the device it is an integer subtraction of the
mean counts; the gain is folded into the first layer's weights at quantization time.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GruStudent", "InputNorm", "ResNetTeacher", "count_params"]


class InputNorm(nn.Module):
    """y = (x - mean) * gain, per axis; x in counts."""

    mean: torch.Tensor
    gain: torch.Tensor

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("gain", torch.ones(channels))

    def fit(self, x_counts: torch.Tensor) -> None:
        flat = x_counts.reshape(-1, x_counts.shape[-1]).double()
        self.mean.copy_(flat.mean(0).round().float())
        self.gain.copy_((1.0 / flat.std(0).clamp_min(1.0)).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.gain


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, k in enumerate((8, 5, 3)):
            layers += [nn.Conv1d(cin if i == 0 else cout, cout, k, padding="same", bias=False), nn.BatchNorm1d(cout)]
            if i < 2:
                layers.append(nn.ReLU())
        self.body = nn.Sequential(*layers)
        self.shortcut: nn.Module = (
            nn.Sequential(nn.Conv1d(cin, cout, 1), nn.BatchNorm1d(cout)) if cin != cout else nn.BatchNorm1d(cout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNetTeacher(nn.Module):
    """ResNet for multivariate time series (Wang et al. 2017): 3 blocks of conv 8/5/3, 64-128-128."""

    kind = "resnet"
    norm: InputNorm

    def __init__(self, window: int, n_classes: int, channels: int = 3,
                 filters: tuple[int, int, int] = (64, 128, 128)) -> None:
        super().__init__()
        self.window = window
        self.n_classes = n_classes
        self.filters = filters
        self.norm = InputNorm(channels)
        blocks = []
        cin = channels
        for f in filters:
            blocks.append(_ResBlock(cin, f))
            cin = f
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled features the classifier layer sees [B, filters[-1]]."""
        return self.blocks(self.norm(x).transpose(1, 2)).mean(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))

    def macs(self) -> int:
        total, cin = 0, self.norm.mean.numel()
        for f in self.filters:
            total += self.window * (cin * f * 8 + f * f * 5 + f * f * 3)
            if cin != f:
                total += self.window * cin * f
            cin = f
        return total + cin * self.n_classes


class GruStudent(nn.Module):
    """Per-sample input layer (C -> H, ReLU), single-layer GRU (H), MLP head H -> H -> classes."""

    kind = "gru"
    norm: InputNorm

    def __init__(self, window: int, hidden: int, n_classes: int, channels: int = 3) -> None:
        super().__init__()
        self.window = window
        self.hidden = hidden
        self.n_classes = n_classes
        self.norm = InputNorm(channels)
        self.inp = nn.Linear(channels, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.head1 = nn.Linear(hidden, hidden)
        self.head2 = nn.Linear(hidden, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The GRU's last hidden state [B, H]."""
        _, h = self.gru(torch.relu(self.inp(self.norm(x))))
        return h[-1]

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.head2(torch.relu(self.head1(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def macs(self) -> int:
        h, c = self.hidden, self.norm.mean.numel()
        per_step = c * h + 6 * h * h + 3 * h  # input layer, 6 HxH gate matmuls, gate products
        return self.window * per_step + h * h + h * self.n_classes


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
