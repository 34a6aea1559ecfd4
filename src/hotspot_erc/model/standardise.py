"""Input standardisation with statistics of the training split, stored with the weights.

Audio and video descriptors come in physical units (decibels, semitones, hertz, MFCCs in the
hundreds, probabilities); fed raw, the few large columns dominate the first projection. For a
modality listed in ``ModelConfig.standardise`` the model maps its inputs as

    x_hat = (x - mu) / sigma,     sigma_d = max(std_d, eps)  (eps = 1e-4; a constant column -> 1)

with ``mu``, ``sigma`` the per-column mean and standard deviation over the training split,
separately for the global vectors (over present utterances) and the local sequences (over valid
positions only: padding and faceless video frames never enter the statistics). The statistics
are buffers, so they travel in the checkpoint and predictions on new media are standardised
exactly as in training. Until :meth:`InputStandardiser.fit` is called the map is the identity.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

EPSILON = 1e-4


class InputStandardiser(nn.Module):
    """Per-column standardisation of one modality's global vectors and local sequences.

    Args:
        global_dim: width of the global vector.
        local_dim: width of a local position.
    """

    def __init__(self, global_dim: int, local_dim: int) -> None:
        super().__init__()
        self.register_buffer("global_mean", torch.zeros(global_dim))
        self.register_buffer("global_scale", torch.ones(global_dim))
        self.register_buffer("local_mean", torch.zeros(local_dim))
        self.register_buffer("local_scale", torch.ones(local_dim))

    @staticmethod
    def _moments(rows: np.ndarray, dim: int) -> tuple[Tensor, Tensor]:
        if rows.shape[0] == 0:
            return torch.zeros(dim), torch.ones(dim)
        rows = rows.astype(np.float64)
        mean = rows.mean(axis=0)
        std = rows.std(axis=0)
        scale = np.where(std < EPSILON, 1.0, std)
        return torch.tensor(mean, dtype=torch.float), torch.tensor(scale, dtype=torch.float)

    def fit(self, global_rows: np.ndarray, local_rows: np.ndarray) -> None:
        """Set the statistics from ``(n, global_dim)`` vectors and ``(p, local_dim)`` positions."""
        self.global_mean, self.global_scale = self._moments(global_rows, self.global_mean.numel())
        self.local_mean, self.local_scale = self._moments(local_rows, self.local_mean.numel())

    def forward_global(self, x: Tensor) -> Tensor:
        """``(..., global_dim)`` -> standardised, same shape."""
        return (x - self.global_mean) / self.global_scale

    def forward_local(self, x: Tensor) -> Tensor:
        """``(..., local_dim)`` -> standardised, same shape (mask afterwards as before)."""
        return (x - self.local_mean) / self.local_scale
