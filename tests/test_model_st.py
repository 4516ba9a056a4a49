"""ST transformer: temporal causality, sliding window, KV-cached rollout == full recomputation."""

import pytest
import torch

import torch.nn.functional as F

from bridge.model.st_transformer import KVCache, STTransformer, attend_one, band_mask, patchify, rope, unpatchify

torch.set_num_threads(1)


def _model(window=16, depth=2):
    torch.manual_seed(0)
    return STTransformer(dim=32, depth=depth, heads=4, tokens=6, window=window).eval()


def test_changing_future_frames_never_changes_past_outputs():
    m = _model()
    x = torch.randn(2, 8, 6, 32)
    y = x.clone()
    y[:, 5:] = torch.randn_like(y[:, 5:])  # edit frames 5..7
    with torch.no_grad():
        a, b = m(x), m(y)
    assert torch.equal(a[:, :5], b[:, :5])
    assert (a[:, 5:] - b[:, 5:]).abs().amax(dim=(0, 2, 3)).min() > 1e-3


def test_sliding_window_forgets_frames_older_than_window():
    m = _model(window=3)
    x = torch.randn(1, 8, 6, 32)
    y = x.clone()
    y[:, 0] = torch.randn_like(y[:, 0])
    with torch.no_grad():
        a, b = m(x), m(y)
    # with depth 2 and window 3, frame 0 can reach frames up to 0 + 2*(3-1) = 4; never beyond
    assert (a[:, 4] - b[:, 4]).abs().max() > 0
    assert torch.equal(a[:, 5:], b[:, 5:])


@pytest.mark.parametrize("window", [4, 16])
def test_kv_cached_rollout_equals_full_recomputation(window):
    m = _model(window=window)
    x = torch.randn(2, 10, 6, 32)
    with torch.no_grad():
        full = m(x)
        cache = m.new_cache()
        step = [m(x[:, t:t + 1], cache, append=True) for t in range(10)]
    assert torch.allclose(torch.cat(step, 1), full, atol=1e-5)
    assert cache.pos == 10 and cache.filled == min(window - 1, 10)


@pytest.mark.parametrize("keys", [4, 16])
@pytest.mark.parametrize("masked", [False, True])
def test_one_query_attention_matches_sdpa_in_bf16_under_autocast(keys, masked):
    torch.manual_seed(1)
    q, k, v = (torch.randn(128, 6, n, 32).to(torch.bfloat16) for n in (1, keys, keys))
    mask = (torch.arange(keys) % 3 != 1)[None] if masked else None
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attend_one(q, k, v, mask)
    assert out.dtype == torch.bfloat16 and out.shape == (128, 6, 1, 32)
    assert (out.double() - ref).abs().max() <= ref.abs().max() * 2**-7  # within bf16 rounding of the exact result


def test_cache_without_append_is_a_pure_query_and_chunks_match():
    m = _model(window=4)
    x = torch.randn(1, 9, 6, 32)
    with torch.no_grad():
        full = m(x)
        cache = m.new_cache()
        m(x[:, :5], cache, append=True)  # a multi-frame prefill
        probe = m(torch.randn(1, 1, 6, 32), cache, append=False)  # must leave the cache untouched
        assert cache.pos == 5 and probe.shape == (1, 1, 6, 32)
        rest = m(x[:, 5:], cache, append=True)
    assert torch.allclose(rest, full[:, 5:], atol=1e-5)


def test_kv_only_commit_fills_the_cache_exactly_as_a_full_pass_does():
    m = _model(window=16, depth=3)
    x = torch.randn(2, 6, 6, 32)
    with torch.no_grad():
        full, quick = m.new_cache(), m.new_cache()
        for t in range(5):
            m(x[:, t:t + 1], full, append=True)
            assert m(x[:, t:t + 1], quick, kv_only=True) is None
        assert quick.pos == full.pos == 5 and quick.filled == full.filled
        ring = slice(0, quick.ring)  # the last slot is scratch, written by each new frame before it is read
        assert all(torch.equal(a[:, :, ring], b[:, :, ring]) for a, b in zip(quick.k + quick.v, full.k + full.v))
        assert torch.equal(m(x[:, 5:], quick, append=False), m(x[:, 5:], full, append=False))
        with pytest.raises(ValueError, match="kv_only adds frames to a cache"):
            m(x[:, :1], None, kv_only=True)


def test_cache_clone_and_repeat_are_independent_copies():
    m = _model(window=4)
    with torch.no_grad():
        c = m.new_cache()
        m(torch.randn(1, 3, 6, 32), c)
        c2, c3 = c.clone(), c.repeat(2)
        m(torch.randn(1, 1, 6, 32), c)
    assert c2.pos == 3 and c.pos == 4 and c3.k[0].shape[0] == 2 * c2.k[0].shape[0]
    assert torch.equal(c3.k[1][:6], c3.k[1][6:])


def test_rope_scores_depend_only_on_distance():
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    s = lambda a, b: (rope(q, a) * rope(k, b)).sum()  # noqa: E731
    assert torch.allclose(s(3, 1), s(1003, 1001), atol=1e-4)
    assert not torch.allclose(s(3, 1), s(3, 2))


def test_band_mask_and_patchify_roundtrip():
    m = band_mask(torch.arange(4), torch.arange(4), 2)
    assert m.tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    x = torch.randn(2, 3, 16, 24, 3)
    p = patchify(x, 4)
    assert p.shape == (2, 3, 24, 48)
    assert torch.equal(unpatchify(p, 4, 16, 24), x)
    assert isinstance(KVCache(2, 4), KVCache)


def test_a_pass_under_inference_mode_leaves_training_passes_able_to_backpropagate():
    m = _model(window=4)
    x = torch.randn(1, 3, 6, 32)
    with torch.inference_mode():
        m(x)  # a preview or validation pass asks for the same rotary tables first
    m.train()
    y = m(x.clone().requires_grad_())
    y.sum().backward()
    assert m.blocks[0].t_qkv.weight.grad is not None
