"""Hotspot-Gated Fusion (HGF): find the short spans of an utterance that carry the emotion.

For one modality of N utterances, each with a local sequence ``X`` (L positions, valid where the
mask ``m`` is True), a global vector ``g`` and optionally a rule-based prior ``pi`` in [0, 1]:

1. Global content::

       X~ = X - mean_valid(X)          (option ``local_contrast``, default on)
       C  = Enc(Proj(X~) + P) + W_g g                                       (N, L, H)

   Subtracting the utterance's own mean makes the local input a contrast against the
   utterance's baseline (the same idea as a prosodic burst measured against the speaker's
   running level); the baseline is not lost, it enters C through ``g``. Without the contrast
   the encoder can memorise per-utterance offsets instead of finding the hotspot
   (docs/results.md, "Design choices measured").

   ``P`` is a fixed sinusoidal positional encoding (transformer only; a BiGRU already knows the
   order). ``Enc`` sees valid positions only: a pre-norm transformer encoder with a key padding
   mask and a final layer norm, or ``LayerNorm(Z + BiGRU(Z))`` with H/2 per direction run on the
   packed valid positions, so invalid positions are skipped rather than read. The BiGRU gets the
   same residual as the transformer so that ``C_l`` keeps position l's own content: without it a
   recurrent state smears a hotspot over everything after it. ``W_g g`` is broadcast. The
   transformer drops its attention output and feed-forward activations in training, not its
   attention weights, which would force PyTorch's slow attention path (see
   :func:`multi_head_attention`).

2. Hotspot scores and weights::

       r_l = w_s^T C_l + b_s + beta * logit(clamp(pi_l, eps, 1 - eps))      (prior term only for
                                                                             rows with a prior)
       s_l = sum_j k_j m_{l+j} r_{l+j} / sum_j k_j m_{l+j},   k = softmax(kappa)

   (``b_s`` only in sigmoid mode: a shared offset cancels in the top-k softmax.)
   The smoothing kernel ``k`` (``smoothing_kernel`` taps, learned, initialised as a box) is
   positive and renormalised over the valid neighbours, so a padded position never enters a valid
   score and a hotspot becomes a short span rather than a single spike. ``eps = 0.01`` keeps a
   prior of exactly 0 or 1 from saturating the sigmoid, so the learned score can still overrule it.
   Weights, zero on invalid positions:

   * ``"sigmoid"``: ``w_l = sigmoid(s_l)`` (any number of hotspots, each in [0, 1]);
   * ``"topk_softmax"``: the ``top_k`` best window centres ``T`` get ``p = softmax(s_T)``, and
     each window spreads its share over its span: ``w_l = sum_{t in T, |l - t| <= K//2} p_t``.
     Shares sum to 1 over windows, so ``w_l`` is the probability that position l lies in the
     chosen hotspot window, in [0, 1].

3. Hotspot sequence: ``H = w * C`` (no extra convolution, so ``w_l`` stays exactly "how much of
   position l enters H" and can be read as the explanation).

4. Token-wise gate and fusion, per position and channel::

       alpha = sigmoid(W_a [C ; H] + b_a),    F = alpha * H + (1 - alpha) * C.

Caveat (tests/model/test_hgf.py): when the encoder is trained too, its attention can copy a
hotspot's evidence to every position, and nothing in the classification loss then prefers peaked
weights. End-to-end weights are an explanation only as far as evidence stays local; priors, or a
penalty on the weights in the training loss, are the levers to pin them down.

With L == 1 (utterance-level features only) there is nothing to localise: the module warns once
per instance and still returns a valid output.

Speed. The encoder runs PyTorch's ``nn.TransformerEncoder`` parameters through
:func:`multi_head_attention` (batch-first views into the fused attention kernel) and
:class:`ThresholdDropout` (dropout drawn from uniform noise); MoA uses both too. Each is tested
against the PyTorch module it replaces.

Shapes: ``local`` (N, L, input_dim), ``local_mask`` (N, L) bool with at least one True per row,
``global_vector`` (N, global_dim), ``prior`` (N, L), ``has_prior`` (N,) bool -> :class:`HGFOutput`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from hotspot_erc.model.attention import ThresholdDropout, multi_head_attention
from hotspot_erc.model.pooling import masked_mean

ENCODERS = ("transformer", "gru")
WEIGHTINGS = ("sigmoid", "topk_softmax")
PRIOR_EPS = 0.01


@dataclass
class HGFOutput:
    fused: Tensor  # (N, L, H): F = alpha * H + (1 - alpha) * C, zero at invalid positions
    content: Tensor  # (N, L, H): global content sequence C, zero at invalid positions
    hotspot_weights: Tensor  # (N, L) in [0, 1], zero at invalid positions
    # (N, L) smoothed pre-activation scores s; -inf at invalid positions, so select valid
    # positions before feeding them to a loss (BCE on -inf with target 0 gives NaN).
    hotspot_scores: Tensor
    gate: Tensor  # (N, L, H) alpha, zero at invalid positions


def sinusoidal_positions(num_positions: int, dim: int) -> Tensor:
    """Fixed sinusoidal positional encoding ``(num_positions, dim)`` (Vaswani et al., 2017)."""
    position = torch.arange(num_positions, dtype=torch.float)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float) * (-math.log(10000.0) / dim))
    encoding = torch.zeros(num_positions, dim)
    encoding[:, 0::2] = torch.sin(position * frequency)
    encoding[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return encoding


def _window_sum(values: Tensor, taps: Tensor) -> Tensor:
    """``out_l = sum_j taps_j values_{l + j - K // 2}`` (zero beyond the ends) for ``values``
    ``(N, L)`` and an odd number ``K`` of ``taps``.

    A handful of shifted multiply-adds over (N, L): for one channel and a few taps this was about
    five times faster than ``conv1d`` on CPU, forward and backward.
    """
    half = taps.shape[0] // 2
    length = values.shape[1]
    padded = F.pad(values, (half, half))  # (N, L + K - 1)
    total = taps[0] * padded[:, :length]
    for tap in range(1, taps.shape[0]):
        total = total + taps[tap] * padded[:, tap:tap + length]
    return total


class HotspotGatedFusion(nn.Module):
    """Hotspot-Gated Fusion for one modality (see the module docstring for the equations).

    Args:
        input_dim (int): size of a local position's features.
        global_dim (int): size of the utterance-level global vector.
        hidden (int): model size H.
        encoder (str): ``"transformer"`` (H divisible by ``heads``) or ``"gru"`` (H even).
            Default ``"transformer"``.
        heads (int): attention heads of the transformer encoder. Default 4.
        layers (int): encoder layers. Default 1.
        smoothing_kernel (int): odd number of taps of the score smoothing; 1 disables it.
            Default 3.
        use_prior (bool): add ``beta * logit(prior)`` to the scores; when False there is no
            ``beta`` and priors passed to ``forward`` are ignored. Default True.
        weighting (str): ``"sigmoid"`` or ``"topk_softmax"``. Default ``"sigmoid"``.
        top_k (int): windows kept by ``"topk_softmax"``. Default 3.
        dropout (float): dropout in the input projection and the encoder. Default 0.1.
        max_positions (int): longest sequence the transformer's positional encoding covers.
            Default 512.
    """

    def __init__(self, input_dim: int, global_dim: int, hidden: int, *,
                 encoder: str = "transformer", heads: int = 4, layers: int = 1,
                 smoothing_kernel: int = 3, use_prior: bool = True, weighting: str = "sigmoid",
                 top_k: int = 3, dropout: float = 0.1, max_positions: int = 512,
                 local_contrast: bool = True) -> None:
        super().__init__()
        if min(input_dim, global_dim, hidden, heads, layers, top_k, max_positions) < 1:
            raise ValueError("HotspotGatedFusion: input_dim, global_dim, hidden, heads, layers, "
                             "top_k and max_positions must all be >= 1")
        if encoder not in ENCODERS:
            raise ValueError(f"HotspotGatedFusion: encoder={encoder!r}, expected one of {ENCODERS}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"HotspotGatedFusion: weighting={weighting!r}, "
                             f"expected one of {WEIGHTINGS}")
        if encoder == "transformer" and hidden % heads:
            raise ValueError(f"HotspotGatedFusion: hidden={hidden} must be divisible by "
                             f"heads={heads} for the transformer encoder")
        if encoder == "gru" and hidden % 2:
            raise ValueError(f"HotspotGatedFusion: hidden={hidden} must be even for the BiGRU "
                             "encoder (hidden/2 per direction)")
        if smoothing_kernel < 1 or smoothing_kernel % 2 == 0:
            raise ValueError(f"HotspotGatedFusion: smoothing_kernel={smoothing_kernel} must be "
                             "a positive odd number (centred windows)")
        self.input_dim, self.global_dim, self.hidden = input_dim, global_dim, hidden
        self.encoder_kind, self.weighting, self.top_k = encoder, weighting, top_k
        self.use_prior, self.max_positions = use_prior, max_positions
        self.local_contrast = local_contrast

        self.project = nn.Sequential(nn.Linear(input_dim, hidden), ThresholdDropout(dropout))
        if encoder == "transformer":
            self.register_buffer("positions", sinusoidal_positions(max_positions, hidden),
                                 persistent=False)
            layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=2 * hidden,
                                               dropout=dropout, activation="gelu",
                                               batch_first=True, norm_first=True)
            # Dropout on the (N, heads, L, L) attention weights forces PyTorch's plain attention,
            # which builds those maps in memory; without it the fused (flash) kernel runs, several
            # times faster on CPU. The layer still drops its attention output and feed-forward.
            layer.self_attn.dropout = 0.0
            layer.dropout, layer.dropout1, layer.dropout2 = (
                ThresholdDropout(dropout) for _ in range(3))
            self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(hidden),
                                                 enable_nested_tensor=False)
        else:
            self.encoder = nn.GRU(hidden, hidden // 2, num_layers=layers, batch_first=True,
                                  bidirectional=True, dropout=dropout if layers > 1 else 0.0)
            self.recurrent_norm = nn.LayerNorm(hidden)
        self.global_projection = nn.Linear(global_dim, hidden)
        # A shared bias cancels in the top-k softmax, where it would be a parameter with no effect.
        self.score = nn.Linear(hidden, 1, bias=weighting == "sigmoid")
        if use_prior:
            self.prior_scale = nn.Parameter(torch.tensor(1.0))  # beta
        # Zero logits: the smoothing starts as a box filter and learns its shape.
        self.smoothing_logits = nn.Parameter(torch.zeros(smoothing_kernel))
        self.gate = nn.Linear(2 * hidden, hidden)
        self._warned_single_position = False

    def forward(self, local: Tensor, local_mask: Tensor, global_vector: Tensor,
                prior: Tensor | None = None, has_prior: Tensor | None = None) -> HGFOutput:
        """Fuse hotspots and global content; ``has_prior=None`` with a prior means every row."""
        self._check_inputs(local, local_mask, global_vector, prior, has_prior)
        num_positions = local.shape[1]
        if num_positions == 1 and not self._warned_single_position:
            warnings.warn("HotspotGatedFusion got sequences of length 1 (utterance-level features "
                          "only): there is nothing to localise, so the hotspot weights carry no "
                          "within-utterance information", stacklevel=2)
            self._warned_single_position = True
        invalid = ~local_mask[..., None]  # (N, L, 1)
        # Zeroing padding first makes the output independent of whatever padding holds (even NaN).
        local = local.masked_fill(invalid, 0.0)
        if self.local_contrast:
            # A hotspot is a deviation from the utterance's own baseline; the baseline itself
            # reaches C through the global vector.
            baseline = masked_mean(local, local_mask, dim=1)  # (N, D)
            local = (local - baseline[:, None, :]).masked_fill(invalid, 0.0)

        content = self._encode(self.project(local), local_mask)  # (N, L, H)
        content = content + self.global_projection(global_vector)[:, None, :]
        content = content.masked_fill(invalid, 0.0)

        raw_scores = self.score(content).squeeze(-1)  # (N, L)
        if self.use_prior and prior is not None:
            if has_prior is None:
                has_prior = torch.ones_like(local_mask[:, 0])
            uses_prior = has_prior[:, None] & local_mask  # (N, L)
            # A neutral 0.5 (logit 0) where there is no prior keeps padding out of beta's gradient.
            prior = prior.masked_fill(~uses_prior, 0.5).clamp(PRIOR_EPS, 1.0 - PRIOR_EPS)
            raw_scores = raw_scores + self.prior_scale * torch.logit(prior)
        scores = self._smooth(raw_scores, local_mask)  # (N, L), -inf at invalid
        weights = self._weights(scores, local_mask)  # (N, L)

        # With H = w * C (w one number per position), W_a [C ; H] = W_c C + w * (W_h C): one
        # product of C with [W_c ; W_h] instead of building [C ; H] (N, L, 2H) first.
        hidden = self.hidden
        content_weight, hotspot_weight = self.gate.weight[:, :hidden], self.gate.weight[:, hidden:]
        from_content, from_hotspots = F.linear(
            content, torch.cat([content_weight, hotspot_weight]),
            torch.cat([self.gate.bias, torch.zeros_like(self.gate.bias)])).split(hidden, dim=-1)
        gate = torch.sigmoid(torch.addcmul(from_content, weights[..., None], from_hotspots))
        gate = gate.masked_fill(invalid, 0.0)  # (N, L, H)
        # alpha * H + (1 - alpha) * C = C + (alpha * C) * (w - 1), in two passes instead of five.
        fused = torch.addcmul(content, gate * content, weights[..., None] - 1.0)
        return HGFOutput(fused=fused, content=content, hotspot_weights=weights,
                         hotspot_scores=scores, gate=gate)

    def _encode(self, projected: Tensor, local_mask: Tensor) -> Tensor:
        """Contextualise the valid positions of ``projected`` (N, L, H) among themselves."""
        num_positions = projected.shape[1]
        if self.encoder_kind == "transformer":
            return self._encode_transformer(projected + self.positions[:num_positions],
                                            ~local_mask)
        # Move valid positions to the front (stable, so their order is kept), pack them, and put
        # the outputs back where they came from: masks with holes work as well as prefix masks.
        order = torch.argsort((~local_mask).to(torch.uint8), dim=1, stable=True)  # (N, L)
        index = order[..., None].expand_as(projected)
        compact = projected.gather(1, index)
        lengths = local_mask.sum(dim=1).cpu()
        packed = pack_padded_sequence(compact, lengths, batch_first=True, enforce_sorted=False)
        encoded, _ = self.encoder(packed)
        encoded, _ = pad_packed_sequence(encoded, batch_first=True, total_length=num_positions)
        recurrent = torch.zeros_like(encoded).scatter(1, index, encoded)
        return self.recurrent_norm(projected + recurrent)

    def _encode_transformer(self, x: Tensor, padding: Tensor) -> Tensor:
        """``self.encoder(x, src_key_padding_mask=padding)`` for its pre-norm GELU layers,
        with :func:`multi_head_attention` in place of PyTorch's attention path (same parameters
        and equations; tests/model/test_hgf.py checks them against each other)."""
        for layer in self.encoder.layers:
            normed = layer.norm1(x)
            x = x + layer.dropout1(multi_head_attention(layer.self_attn, normed, normed, padding))
            expanded = layer.dropout(F.gelu(layer.linear1(layer.norm2(x))))  # (N, L, 2H)
            x = x + layer.dropout2(layer.linear2(expanded))
        return self.encoder.norm(x)

    def _smooth(self, raw_scores: Tensor, local_mask: Tensor) -> Tensor:
        """Masked, renormalised 1-D smoothing of the scores; -inf at invalid positions."""
        kernel = torch.softmax(self.smoothing_logits, dim=0)  # (K,)
        numerator = _window_sum(raw_scores.masked_fill(~local_mask, 0.0), kernel)
        # Positive taps and a valid centre keep the denominator > 0 at every valid position.
        denominator = _window_sum(local_mask.to(raw_scores.dtype), kernel)
        smoothed = numerator / denominator.clamp(min=torch.finfo(raw_scores.dtype).tiny)
        return smoothed.masked_fill(~local_mask, float("-inf"))

    def _weights(self, scores: Tensor, local_mask: Tensor) -> Tensor:
        """Hotspot weights in [0, 1] from smoothed scores (N, L); zero at invalid positions."""
        if self.weighting == "sigmoid":
            return torch.sigmoid(scores).masked_fill(~local_mask, 0.0)
        kept = min(self.top_k, scores.shape[1])
        top_scores, top_centres = scores.topk(kept, dim=1)  # (N, k)
        # Rows with fewer valid positions than k pick -inf slots; softmax gives those 0.
        shares = torch.softmax(top_scores, dim=1)
        centre_shares = torch.zeros_like(scores).scatter(1, top_centres, shares)  # (N, L)
        spread = _window_sum(centre_shares, torch.ones_like(self.smoothing_logits))
        return spread.clamp(max=1.0).masked_fill(~local_mask, 0.0)

    def _check_inputs(self, local: Tensor, local_mask: Tensor, global_vector: Tensor,
                      prior: Tensor | None, has_prior: Tensor | None) -> None:
        if local.ndim != 3 or local.shape[-1] != self.input_dim:
            raise ValueError(f"HotspotGatedFusion: local has shape {tuple(local.shape)}, "
                             f"expected (N, L, {self.input_dim})")
        rows, num_positions = local.shape[:2]
        if local_mask.shape != (rows, num_positions) or local_mask.dtype != torch.bool:
            raise ValueError(f"HotspotGatedFusion: local_mask has shape "
                             f"{tuple(local_mask.shape)} and dtype {local_mask.dtype}, expected "
                             f"bool ({rows}, {num_positions})")
        if global_vector.shape != (rows, self.global_dim):
            raise ValueError(f"HotspotGatedFusion: global_vector has shape "
                             f"{tuple(global_vector.shape)}, expected ({rows}, {self.global_dim})")
        if prior is not None and prior.shape != (rows, num_positions):
            raise ValueError(f"HotspotGatedFusion: prior has shape {tuple(prior.shape)}, "
                             f"expected ({rows}, {num_positions})")
        if has_prior is not None and (has_prior.shape != (rows,) or has_prior.dtype != torch.bool):
            raise ValueError(f"HotspotGatedFusion: has_prior has shape {tuple(has_prior.shape)} "
                             f"and dtype {has_prior.dtype}, expected bool ({rows},)")
        if self.encoder_kind == "transformer" and num_positions > self.max_positions:
            raise ValueError(f"HotspotGatedFusion: {num_positions} positions exceed "
                             f"max_positions={self.max_positions}; raise max_positions or cap "
                             "the positions when batching")
        if rows and not bool(local_mask.any(dim=1).all()):
            raise ValueError("HotspotGatedFusion: every row of local_mask needs at least one "
                             "valid position (pass only utterances where the modality is present)")
