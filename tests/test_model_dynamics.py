"""Dynamics + MaskGIT sampler: action off-by-one, masking, schedule, guidance, conditioning slot, quantizers."""

import dataclasses

import pytest
import torch

from bridge.model.config import DynamicsConfig
from bridge.model.dynamics import Dynamics, frame_actions
from bridge.model.quantizer import FSQ, VectorQuantizer, reset_dead_codes
from bridge.model.sampler import _probs, mask_schedule, sample_categorical, sample_frame, uniform

torch.set_num_threads(1)
V, A, N = 32, 4, 9


def _dyn(**kw):
    torch.manual_seed(0)
    cfg = DynamicsConfig(dim=32, depth=2, heads=2, window=8, clip_len=6, **kw)
    d = Dynamics(cfg, vocab=V, num_actions=A, tokens=N).eval()
    for p in d.parameters():  # larger weights so every path has a visible effect
        p.data.normal_(0, 0.3)
    return d


@pytest.mark.parametrize("mode", ["additive", "token"])
def test_action_t_changes_frame_t_plus_1_and_not_frame_t(mode):
    d = _dyn(action_mode=mode)
    tokens = torch.randint(0, V, (1, 6, N))
    acts = torch.randint(0, A, (1, 5))
    acts2 = acts.clone()
    t = 2
    acts2[0, t] = (acts[0, t] + 1) % A  # the action between frame 2 and frame 3
    with torch.no_grad():
        a = d(tokens, frame_actions(acts, d.null_action))
        b = d(tokens, frame_actions(acts2, d.null_action))
    assert torch.equal(a[:, : t + 1], b[:, : t + 1])  # frames 0..2 untouched
    assert (a[:, t + 1] - b[:, t + 1]).abs().max() > 1e-3  # frame 3 changes


def test_frame_actions_pads_null_first():
    assert frame_actions(torch.tensor([[1, 2]]), 9).tolist() == [[9, 1, 2]]


def test_training_loss_masks_later_frames_only_and_is_finite():
    d = _dyn()
    d.train()
    tokens = torch.randint(0, V, (3, 6, N))
    out = d.training_loss(tokens, torch.randint(0, A, (3, 5)), generator=torch.Generator().manual_seed(0))
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"]) and 0 <= out["acc"] <= 1
    out["loss"].backward()
    assert d.tok_embed.weight.grad is not None
    with pytest.raises(ValueError, match="at least 2 frames"):
        d.training_loss(tokens[:, :1], torch.zeros(3, 0, dtype=torch.long))


def test_first_frame_is_never_masked_in_training(monkeypatch):
    d = _dyn(corrupt_max=0.0, action_dropout=0.0)
    seen = {}
    real = Dynamics.forward

    def spy(self, tokens, actions, cond=None, cache=None, append=True):
        seen["tokens"], seen["actions"] = tokens.clone(), actions.clone()
        return real(self, tokens, actions, cond, cache, append)

    monkeypatch.setattr(Dynamics, "forward", spy)
    clean = torch.randint(0, V, (4, 6, N))
    acts = torch.randint(0, A, (4, 5))
    d.training_loss(clean, acts)
    inp = seen["tokens"]
    assert torch.equal(inp[:, 0], clean[:, 0])
    masked = inp[:, 1:] == d.mask_id
    assert masked.float().mean() >= 0.4  # rate ~ U(0.5, 1) per sample
    assert torch.equal(inp[:, 1:][~masked], clean[:, 1:][~masked])  # no corruption when corrupt_max=0
    assert torch.equal(seen["actions"], frame_actions(acts, d.null_action))  # no dropout when p=0


@pytest.mark.parametrize("steps,tokens", [(1, 9), (4, 64), (8, 64), (25, 256), (9, 9)])
def test_maskgit_schedule_reveals_everything_in_exactly_steps(steps, tokens):
    s = mask_schedule(steps, tokens)
    assert len(s) == steps and s[-1] == 0
    assert all(a > b for a, b in zip([tokens] + s, s))  # strictly fewer masked after every step
    assert all(x > 0 for x in s[:-1])


def test_schedule_rejects_bad_steps():
    with pytest.raises(ValueError, match="between 1 and"):
        mask_schedule(10, 9)


@pytest.mark.parametrize("unmask,cfg", [("random", 1.0), ("confidence", 1.0), ("random", 3.0)])
def test_sample_frame_fills_every_token_and_commits(unmask, cfg, monkeypatch):
    d = _dyn()
    cache = d.new_cache()
    with torch.no_grad():
        d(torch.randint(0, V, (2, 1, N)), torch.full((2, 1), d.null_action), None, cache, append=True)
    calls = []
    real = Dynamics.forward
    monkeypatch.setattr(Dynamics, "forward", lambda self, *a, **k: calls.append(a[0].shape) or real(self, *a, **k))
    out = sample_frame(d, cache, torch.tensor([0, 3]), steps=3, unmask=unmask, cfg=cfg,
                       generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, N) and (out < V).all() and (out >= 0).all()
    assert cache.pos == 2
    assert len(calls) == 4  # 3 MaskGIT steps + 1 commit
    assert calls[0][0] == (4 if cfg != 1.0 else 2)  # guidance batches cond + uncond together


def test_sampling_is_deterministic_given_a_seed_and_greedy_ignores_it():
    d = _dyn()

    def run(seed, temperature=1.0):
        c = d.new_cache()
        d(torch.zeros(1, 1, N, dtype=torch.long), torch.full((1, 1), d.null_action), None, c)
        g = torch.Generator().manual_seed(seed)
        return torch.stack([sample_frame(d, c, torch.tensor([1]), 3, temperature, generator=g) for _ in range(3)])

    with torch.no_grad():
        assert torch.equal(run(0), run(0))
        assert not torch.equal(run(0), run(1))
        assert torch.equal(run(0, 0.0), run(1, 0.0))


def test_sample_categorical_matches_probabilities():
    p = torch.tensor([[0.1, 0.0, 0.6, 0.3]]).expand(20000, 4)
    draws = sample_categorical(p, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4).float() / len(draws)
    assert torch.allclose(freq, p[0], atol=0.02) and freq[1] == 0


def test_sample_categorical_never_draws_a_zero_probability_token_at_u_zero(monkeypatch):
    """torch.rand returns exactly 0 once in 2**24 draws: the first token with mass must win, not a leading p = 0 one;
    and a uniform that rounds up to the total mass must still land on the last token with mass."""
    import bridge.model.sampler as sampler

    for u, want in ((0.0, 2), (1.0, 3)):
        monkeypatch.setattr(sampler, "uniform", lambda b, shape, device, generator=None: torch.full((b, *shape), u))
        assert sample_categorical(torch.tensor([[0.0, 0.0, 0.6, 0.4, 0.0]])).tolist() == [want]


def test_conditioning_slot_is_a_no_op_until_trained():
    d = _dyn(cond_dim=8, cond_prefix=True)
    d.cond_proj.weight.data.zero_()
    tokens, acts = torch.randint(0, V, (1, 3, N)), torch.randint(0, A + 1, (1, 3))
    with torch.no_grad():
        base = d(tokens, acts)
        cond = torch.randn(1, 3, 8)
        assert torch.allclose(d(tokens, acts, cond), base, atol=1e-6)
        d.cond_proj.weight.data.normal_(0, 0.3)
        assert not torch.allclose(d(tokens, acts, cond), base, atol=1e-3)


def test_vq_straight_through_dead_code_reset_and_fsq():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 4, reset_after=3)
    vq.train()
    z = torch.randn(64, 4, requires_grad=True)
    q, idx, stats = vq(z)
    (q.sum() + stats["loss"]).backward()
    assert z.grad is not None and idx.shape == (64,) and torch.isfinite(stats["entropy"])
    # feed one direction only: every other code goes unused and is reset after `reset_after` steps
    resets = 0
    for _ in range(4):
        vq(torch.ones(32, 4) + 0.01 * torch.randn(32, 4))
        resets += vq.reset_dead()["resets"]
    assert resets >= 10
    assert torch.allclose(vq.codes().norm(dim=-1), torch.ones(16), atol=1e-5)
    fsq = FSQ((8, 5, 5, 5))
    q, idx, _ = fsq(torch.randn(100, 4) * 3)
    assert fsq.num_codes == 1000 and idx.max() < 1000 and idx.min() >= 0
    assert torch.allclose(fsq.lookup(idx), q)
    vq(torch.randn(8, 4))
    assert set(reset_dead_codes(torch.nn.Sequential(vq))) == {"0"}
    assert reset_dead_codes(torch.nn.Sequential(vq)) == {}  # no forward since: nothing to report (frozen parts)
    assert dataclasses.is_dataclass(DynamicsConfig)


def test_fsq_with_two_levels_uses_every_code_and_passes_gradients():
    """Levels of 2 (the LAM's FSQ default) once had an infinite tanh shift: one code for every input, zero gradient."""
    torch.manual_seed(0)
    fsq = FSQ((2, 2, 2))
    z = torch.randn(1000, 3, requires_grad=True)
    q, idx, _ = fsq(z)
    q.sum().backward()
    assert len(idx.unique()) == 8
    assert torch.allclose(fsq.lookup(idx), q)
    assert z.grad.abs().mean() > 0


def test_vq_starts_its_codes_on_encoder_outputs():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 4).train()
    z = torch.nn.functional.normalize(torch.randn(100, 4), dim=-1)
    vq(z)
    best = (vq.codes() @ z.t()).max(dim=1).values  # every code sits (almost) on one of the outputs
    assert (best > 0.99).all() and bool(vq.initialized)


def test_top_p_draws_only_from_the_likeliest_tokens():
    logits = torch.log(torch.tensor([[0.05, 0.6, 0.02, 0.3, 0.03]]))
    assert torch.allclose(_probs(logits, 1.0, 1.0), logits.exp(), atol=1e-6)  # off: the plain distribution
    p = _probs(logits, 1.0, 0.8)  # 0.6 + 0.3 reach 0.8: the tail is cut, the head renormalised
    assert torch.allclose(p, torch.tensor([[0.0, 0.6 / 0.9, 0.0, 0.3 / 0.9, 0.0]]), atol=1e-6)
    assert torch.equal(_probs(logits, 1.0, 0.1) > 0, torch.tensor([[False, True, False, False, False]]))  # never empty
    hot = _probs(logits, 3.0, 0.8)  # temperature flattens first, so more tokens make the cut
    assert int((hot > 0).sum()) > 2 and abs(float(hot.sum()) - 1) < 1e-6


class _StubDyn:
    """TEST-ONLY dynamics: fixed logits per branch (action / null action / zeroed conditioning), records the commit."""

    tokens, mask_id, null_action = 1, 99, 7

    def __init__(self, act, null, zero=None):
        self.act, self.null, self.zero = (torch.tensor(x, dtype=torch.float) for x in (act, null, zero or act))
        self.committed = None

    def __call__(self, x, acts, cond, cache, append=False, kv_only=False):
        if kv_only:
            self.committed = (x.clone(), acts.clone(), None if cond is None else cond.clone())
            return None
        rows = []
        for b in range(x.shape[0]):
            if int(acts[b, 0]) == self.null_action:
                rows.append(self.null)
            elif cond is not None and not cond[b].any():
                rows.append(self.zero)
            else:
                rows.append(self.act)
        return torch.stack(rows)[:, None, None, :]  # (B', 1, N=1, V)


class _Cache:
    def repeat(self, n):
        return self


def test_action_guidance_extrapolates_from_the_null_action():
    # guided = null + cfg * (act - null): with cfg 0.5 it is the midpoint [0.5, 0, 1.5] -> token 2
    d = _StubDyn(act=[1.0, 0.0, 0.0], null=[0.0, 0.0, 3.0])
    out = sample_frame(d, _Cache(), torch.tensor([0]), steps=1, temperature=0.0, cfg=0.5)
    assert out.tolist() == [[2]]
    out = sample_frame(d, _Cache(), torch.tensor([0]), steps=1, temperature=0.0, cfg=1.0)
    assert out.tolist() == [[0]]  # cfg 1 = off: the conditional logits alone


def test_event_guidance_extrapolates_from_the_zero_conditioning_and_is_committed():
    # guided = act + (cond_cfg - 1) * (act - zero): cond_cfg 0.5 -> [0.5, 0, 0.6] -> token 2
    d = _StubDyn(act=[1.0, 0.0, 0.0], null=[0.0, 0.0, 0.0], zero=[0.0, 0.0, 1.2])
    cond = torch.ones(1, 1, 4)
    out = sample_frame(d, _Cache(), torch.tensor([0]), steps=1, temperature=0.0, cond=cond, cond_cfg=0.5)
    assert out.tolist() == [[2]]
    out = sample_frame(d, _Cache(), torch.tensor([0]), steps=1, temperature=0.0, cond=cond, cond_cfg=1.0)
    assert out.tolist() == [[0]]
    _, acts, committed_cond = d.committed  # the frame joins the cache under the event it was drawn with
    assert acts.tolist() == [[0]] and committed_cond is not None and torch.equal(committed_cond, cond)


def test_a_batch_row_draws_the_same_numbers_as_alone():
    gens = [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]
    batch = uniform(2, (5,), torch.device("cpu"), gens)
    alone = [uniform(1, (5,), torch.device("cpu"), [torch.Generator().manual_seed(s)])[0] for s in (1, 2)]
    assert torch.equal(batch[0], alone[0]) and torch.equal(batch[1], alone[1])
