import pytest
import torch

from hotspot_erc.model.pooling import AttentionPool, masked_mean


def _lengths_to_mask(lengths: list[int], max_len: int) -> torch.Tensor:
    return torch.arange(max_len)[None, :] < torch.tensor(lengths)[:, None]


def test_masked_mean_matches_mean_of_valid_prefix():
    torch.manual_seed(0)
    x = torch.randn(3, 6, 4)
    lengths = [6, 2, 1]
    mask = _lengths_to_mask(lengths, 6)
    pooled = masked_mean(x, mask, dim=1)
    assert pooled.shape == (3, 4)
    for row, length in enumerate(lengths):
        assert torch.allclose(pooled[row], x[row, :length].mean(dim=0), atol=1e-6)


def test_masked_mean_over_first_dimension_and_negative_dim():
    x = torch.tensor([[1.0, 10.0], [3.0, 20.0], [100.0, 30.0]])  # (positions, features)
    mask = torch.tensor([True, True, False])
    assert torch.allclose(masked_mean(x, mask, dim=0), torch.tensor([2.0, 15.0]))
    x3 = torch.randn(2, 5, 3)
    mask3 = _lengths_to_mask([5, 3], 5)
    assert torch.allclose(masked_mean(x3, mask3, dim=-2), masked_mean(x3, mask3, dim=1))


def test_masked_mean_all_invalid_row_is_zero_not_nan():
    x = torch.randn(2, 4, 3)
    mask = torch.tensor([[True, False, False, False], [False] * 4])
    pooled = masked_mean(x, mask, dim=1)
    assert torch.equal(pooled[1], torch.zeros(3))
    assert torch.allclose(pooled[0], x[0, 0])


def test_masked_mean_rejects_bad_mask_and_feature_dim():
    x = torch.randn(2, 4, 3)
    with pytest.raises(ValueError, match="mask shape"):
        masked_mean(x, torch.ones(2, 5, dtype=torch.bool), dim=1)
    with pytest.raises(ValueError, match="feature dimension"):
        masked_mean(x, torch.ones(2, 4, dtype=torch.bool), dim=2)


def test_attention_pool_weights_sum_to_one_over_valid_positions():
    torch.manual_seed(0)
    pool = AttentionPool(8)
    x = torch.randn(4, 7, 8)
    mask = _lengths_to_mask([7, 3, 1, 5], 7)
    weights = pool.attention(x, mask)
    assert torch.allclose(weights.sum(dim=-1), torch.ones(4), atol=1e-6)
    assert torch.all(weights[~mask] == 0)
    assert pool(x, mask).shape == (4, 8)


def test_attention_pool_ignores_padding_values():
    torch.manual_seed(0)
    pool = AttentionPool(8)
    x = torch.randn(3, 6, 8)
    mask = _lengths_to_mask([6, 4, 2], 6)
    perturbed = x.clone()
    perturbed[~mask] = 1e4 * torch.randn(int((~mask).sum()), 8)
    assert torch.allclose(pool(x, mask), pool(perturbed, mask), atol=1e-6)


def test_attention_pool_single_valid_position_returns_it():
    pool = AttentionPool(5)
    x = torch.randn(2, 4, 5)
    mask = torch.zeros(2, 4, dtype=torch.bool)
    mask[0, 2] = True
    mask[1, 0] = True
    pooled = pool(x, mask)
    assert torch.allclose(pooled[0], x[0, 2], atol=1e-6)
    assert torch.allclose(pooled[1], x[1, 0], atol=1e-6)


def test_attention_pool_empty_row_is_zero_and_gradients_finite():
    torch.manual_seed(0)
    pool = AttentionPool(4)
    x = torch.randn(2, 3, 4, requires_grad=True)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    pooled = pool(x, mask)
    assert torch.equal(pooled[1], torch.zeros(4))
    pooled.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.isfinite(pool.score.weight.grad).all()
    assert pool.score.weight.grad.abs().sum() > 0


def test_attention_pool_extra_leading_dimensions_match_flat():
    torch.manual_seed(0)
    pool = AttentionPool(6)
    x = torch.randn(2, 3, 5, 6)  # (dialogues, utterances, positions, hidden)
    mask = torch.rand(2, 3, 5) > 0.3
    nested = pool(x, mask)
    flat = pool(x.reshape(6, 5, 6), mask.reshape(6, 5)).reshape(2, 3, 6)
    assert torch.allclose(nested, flat, atol=1e-6)


def test_attention_pool_rejects_mismatched_mask():
    with pytest.raises(ValueError, match="mask shape"):
        AttentionPool(4)(torch.randn(2, 3, 4), torch.ones(2, 4, dtype=torch.bool))
