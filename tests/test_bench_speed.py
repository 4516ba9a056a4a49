"""The fast path of a world model: spawn (shared weights), loading without random init, bf16 weights, batched
sessions (step_batch), reusable sampler buffers, FLOP counts and the speed report; CUDA paths when a GPU is present."""

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from bridge.backend import Prompt, WorldEvent
from bridge.model.genie import WorldModel
from bridge.model.presets import get_preset
from bridge.model.sampler import sample_frame
from bridge.model.speed import (frame_flops, matmul_peak_gflops, measured_frame_flops, model_report, report_frames,
                                stage_timings, steps_sweep)
from bridge.model.world import WorldModelBackend, _compile_mode, load_world
from test_model_data import roll, save_random_world

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    return save_random_world(tmp_path_factory.mktemp("speed") / "world")


# --- spawn ---

def test_spawned_backends_share_weights_but_nothing_else(world_dir):
    base = load_world(world_dir, device="cpu")
    a, b = base.spawn(), base.spawn()
    assert a.model is base.model and b.model is base.model
    ptrs = lambda w: [p.data_ptr() for p in w.model.parameters()]  # noqa: E731
    assert ptrs(a) == ptrs(base) == ptrs(b)  # same storage: no copy of the weights
    assert a.name == base.name and a.kind == "world_model" and a.action_names == base.action_names
    with pytest.raises(RuntimeError, match="reset"):
        a.step(0)  # fresh caches
    assert a._gen is not b._gen and a.prompts is not b.prompts and a.prompts.track is not b.prompts.track
    a.configure(steps=2)
    assert b.settings["steps"] == base.settings["steps"] == 4


def test_stepping_one_spawn_does_not_change_another(world_dir):
    base = load_world(world_dir, device="cpu")
    ref = base.spawn()
    expected = np.concatenate([ref.reset(Prompt(seed=3))[None], roll(ref, [0, 1, 2, 3, 1])])
    a, b = base.spawn(), base.spawn()
    first_b = b.reset(Prompt(seed=3))
    a.reset(Prompt(seed=9))
    got_b = [first_b]
    for act in [0, 1, 2, 3, 1]:
        a.step((act + 1) % 4)  # interleave another session
        a.step(act)
        got_b.append(b.step(act))
    assert np.array_equal(np.stack(got_b), expected)


def test_loading_skips_random_init_and_loads_the_same_weights(world_dir):
    class CountRandomInit(TorchFunctionMode):
        calls = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__module__", None) == "torch.nn.init" or func in (torch.Tensor.normal_,
                                                                                 torch.Tensor.uniform_):
                CountRandomInit.calls += 1
            return func(*args, **(kwargs or {}))

    cfg = get_preset("micro")
    with CountRandomInit():
        WorldModel(cfg)
    assert CountRandomInit.calls > 20  # the counter sees a normal build's init
    CountRandomInit.calls = 0
    with CountRandomInit():
        w = load_world(world_dir, device="cpu", autocast=False)
    assert CountRandomInit.calls == 0
    ref, _, _ = WorldModel.load(world_dir)
    got = w.model.state_dict()
    assert all(torch.equal(v, got[k]) for k, v in ref.state_dict().items())


def test_bf16_weights_give_bit_identical_frames_under_autocast(world_dir):
    fast = load_world(world_dir, device="cpu", autocast=True)
    assert fast.model.dynamics.head.weight.dtype == torch.bfloat16
    assert fast.model.tokenizer.decoder.blocks[0].s_qkv.weight.dtype == torch.float32  # prompt models hash it
    slow = load_world(world_dir, device="cpu", autocast=True)
    slow.model.dynamics.float()  # what plain autocast does: fp32 weights, cast on every call
    a = np.concatenate([fast.reset(Prompt(seed=1))[None], roll(fast, [0, 1, 2, 3, 0, 2])])
    b = np.concatenate([slow.reset(Prompt(seed=1))[None], roll(slow, [0, 1, 2, 3, 0, 2])])
    assert np.array_equal(a, b)
    assert load_world(world_dir, device="cpu", autocast=False).model.dynamics.head.weight.dtype == torch.float32


def test_reset_reports_its_stages_and_detailed_timings_split_the_steps(world_dir):
    w = load_world(world_dir, device="cpu")
    w.reset(Prompt(seed=0, image=np.zeros((20, 20, 3), np.uint8)))
    assert set(w.last_timings) == {"tokenize", "dynamics", "decode"} and all(v > 0 for v in w.last_timings.values())
    w.step(1)
    assert w.last_step_ms == []  # off by default: no per-step bookkeeping
    w.detailed_timings = True
    w.configure(steps=3)
    w.step(2)
    assert len(w.last_step_ms) == 4  # 3 MaskGIT steps + the commit pass
    assert sum(w.last_step_ms) <= w.last_timings["dynamics"] + 1e-6


def test_last_tokens_follow_the_frames_and_branches(world_dir):
    w = load_world(world_dir, device="cpu")
    assert w.last_tokens is None
    w.reset(Prompt(seed=2))
    assert torch.equal(w.last_tokens, w.model.bank[2])
    w.step(1)
    t1, s = w.last_tokens, w.get_state()
    assert t1.shape == (16,) and int(t1.max()) < 64
    w.step(3)
    w.set_state(s)
    assert torch.equal(w.last_tokens, t1)
    w.step(0)
    assert torch.equal(w.last_tokens, w._tokens[0]) and not w.last_tokens.data_ptr() == w._tokens.data_ptr()


# --- batched sessions ---

def test_step_batch_equals_stepping_each_session_alone(world_dir):
    base = load_world(world_dir, device="cpu")
    alone = [base.spawn() for _ in range(3)]
    batched = [base.spawn() for _ in range(3)]
    for i, (x, y) in enumerate(zip(alone, batched)):
        x.reset(Prompt(seed=i))
        y.reset(Prompt(seed=i))
    calls = []
    real = WorldModelBackend._step_group.__func__
    WorldModelBackend._step_group = classmethod(lambda cls, ws, *a: calls.append(len(ws)) or real(cls, ws, *a))
    try:
        for t in range(12):  # past the context window (8): the ring buffer wraps inside the batch too
            acts = [(t + i) % 4 for i in range(3)]
            want = [x.step(a) for x, a in zip(alone, acts)]
            got = WorldModelBackend.step_batch(batched, acts, [None] * 3)
            assert all(np.array_equal(p, q) for p, q in zip(want, got))
    finally:
        WorldModelBackend._step_group = classmethod(real)
    assert calls == [3] * 12
    for x, y in zip(alone, batched):  # and each session goes on alone from the batch exactly as it would have
        assert np.array_equal(x.step(1), y.step(1))


def test_step_batch_groups_by_position_and_settings_and_steps_events_alone(world_dir):
    base = load_world(world_dir, device="cpu")
    ws = [base.spawn() for _ in range(4)]
    refs = [base.spawn() for _ in range(4)]
    for i, (w, r) in enumerate(zip(ws, refs)):
        w.reset(Prompt(seed=i))
        r.reset(Prompt(seed=i))
    ws[1].step(0)
    refs[1].step(0)  # one frame ahead of the others
    ws[2].configure(steps=2)
    refs[2].configure(steps=2)
    got = WorldModelBackend.step_batch(ws, [1, 2, 3, 0], [None, None, None, WorldEvent()])
    want = [r.step(a) for r, a in zip(refs, [1, 2, 3, 0])]
    assert all(np.array_equal(p, q) for p, q in zip(want, got))
    with pytest.raises(ValueError, match=r"action must be an int in \[0, 4\)"):
        WorldModelBackend.step_batch(ws, [0, 9, 0, 0], [None] * 4)
    assert [w._dyn.pos for w in ws] == [r._dyn.pos for r in refs]  # a bad action changes nobody
    with pytest.raises(ValueError, match="unknown event type"):
        WorldModelBackend.step_batch(ws[:2], [0, 0], [WorldEvent(type="flood"), None])


def test_the_host_batches_concurrent_sessions_of_a_world(world_dir, monkeypatch):
    import time

    from bridge.client import WorldClient
    from bridge.host.backends import BackendSpec
    from bridge.host.server import run_host_in_thread

    sizes = []
    real = WorldModelBackend.step_batch.__func__
    monkeypatch.setattr(WorldModelBackend, "step_batch",
                        classmethod(lambda cls, ws, *a: sizes.append(len(ws)) or real(cls, ws, *a)))
    h = run_host_in_thread(BackendSpec("world_model", checkpoint=str(world_dir)))
    try:
        clients = [WorldClient(h.address, timeout=20) for _ in range(3)]
        for i, c in enumerate(clients):
            c.start(mode="realtime", fps=20, seed=i)
        time.sleep(0.8)
        frames = [c.next_frame(timeout=5) for c in clients]
        assert all(f is not None and f.image.shape == (16, 16, 3) for f in frames)
        for c in clients:
            c.close()
    finally:
        h.stop()
    assert sizes and max(sizes) >= 2  # sessions ticking together are stepped in one call
    assert h.host.pool.loads == 1  # one checkpoint read, three spawned sessions


# --- sampler ---

def test_sampler_buffers_are_reused_and_change_nothing(world_dir):
    w = load_world(world_dir, device="cpu", autocast=False)
    w.reset(Prompt(seed=0))
    dyn, state = w.model.dynamics, w.get_state()
    bufs: dict = {}
    with torch.no_grad():
        a = sample_frame(dyn, state["dyn"].clone(), torch.tensor([1]), 4, generator=torch.Generator().manual_seed(0),
                         buffers=bufs, cfg=2.0)
        ptr, first = bufs["tokens"].data_ptr(), a.clone()
        b = sample_frame(dyn, state["dyn"].clone(), torch.tensor([1]), 4, generator=torch.Generator().manual_seed(0),
                         buffers=bufs, cfg=2.0)
        c = sample_frame(dyn, state["dyn"].clone(), torch.tensor([1]), 4, generator=torch.Generator().manual_seed(0),
                         cfg=2.0)
    assert b.data_ptr() == ptr and set(bufs) == {"tokens", "inp"}
    assert torch.equal(first, b) and torch.equal(b, c)


def test_one_generator_per_row_makes_a_batch_equal_its_rows(world_dir):
    w = load_world(world_dir, device="cpu", autocast=False)
    w.reset(Prompt(seed=0))
    dyn = w.model.dynamics
    from bridge.model.world import _stack_caches

    with torch.no_grad():
        rows = [sample_frame(dyn, w._dyn.clone(), torch.tensor([a]), 3, generator=torch.Generator().manual_seed(s))
                for a, s in ((1, 10), (2, 11))]
        both = sample_frame(dyn, _stack_caches([w._dyn.clone(), w._dyn.clone()]), torch.tensor([1, 2]), 3,
                            generator=[torch.Generator().manual_seed(10), torch.Generator().manual_seed(11)])
        with pytest.raises(ValueError, match="one per row"):
            sample_frame(dyn, w._dyn.clone(), torch.tensor([1]), 3, generator=[torch.Generator()] * 2)
    assert torch.equal(both, torch.cat(rows))


# --- FLOPs, peak, report ---

@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_analytic_flops_match_the_flop_counter(world_dir, guidance):
    w = load_world(world_dir, device="cpu")
    w.configure(cfg=guidance, steps=3)
    f = frame_flops(w.cfg, steps=3, branches=2 if guidance != 1.0 else 1)
    assert measured_frame_flops(w) == f["frame_counted_cpu"]  # torch counts exactly what is derived
    assert f["frame"] == f["frame_linear"] + f["dynamics_attention"] + f["decode_attention"]
    assert w._dyn is None  # measured on a spawn: the backend itself is untouched


def test_tiny_preset_flops_are_what_the_docs_say():
    f = frame_flops(get_preset("tiny"), steps=4)
    assert f["frame_linear"] == 1_706_033_152 and 1.75e9 < f["frame"] < 1.85e9


def test_matmul_peak_and_stage_report(world_dir):
    assert matmul_peak_gflops(torch.float32, seconds=0.05, n=256) > 0.1
    w = load_world(world_dir, device="cpu")
    st = stage_timings(w, frames=4, resets=2)
    assert len(st["dynamics_per_step"]) == st["maskgit_steps"] == 4
    assert st["frame"] == pytest.approx(st["dynamics"] + st["decode"], abs=1e-3)
    assert all(st[k] > 0 for k in ("tokenize", "dynamics_step", "commit", "dynamics", "decode"))
    rows = steps_sweep(w, steps=(2, 8, 99), frames=6)
    assert [r["steps"] for r in rows] == [2, 8]  # 99 > 16 tokens per frame: skipped
    assert rows[1]["dynamics_ms"] > rows[0]["dynamics_ms"]  # 9 forwards vs 3
    assert w._dyn is None


def test_model_report_ticks_once_per_frame_it_plays_and_says_how_many_up_front(world_dir):
    """bench's bar sat at 50 % with no ETA through the model report: its frames were not in the bar's total."""
    w = load_world(world_dir, device="cpu")
    ticks = []
    model_report(w, quick=True, tick=lambda: ticks.append(1))
    # stages (3 resets, a warm-up, 12 frames), the FLOP count (a warm-up, 1 frame), 2/4/6/8 steps (a warm-up, 10 each)
    warm = w.cfg.dynamics.window + 3
    assert len(ticks) == report_frames(w, quick=True) == 3 + warm + 12 + warm + 1 + 4 * (warm + 10)
    assert report_frames(w) > report_frames(w, quick=True)


def test_compile_mode_from_argument_or_environment(monkeypatch):
    monkeypatch.delenv("WORLDBRIDGE_COMPILE", raising=False)
    assert _compile_mode(False) is None and _compile_mode(True) == "default"
    assert _compile_mode("reduce-overhead") == "reduce-overhead"
    monkeypatch.setenv("WORLDBRIDGE_COMPILE", "1")
    assert _compile_mode(False) == "default"
    monkeypatch.setenv("WORLDBRIDGE_COMPILE", "0")
    assert _compile_mode(False) is None
    monkeypatch.setenv("WORLDBRIDGE_COMPILE", "fastest")
    with pytest.raises(ValueError, match="WORLDBRIDGE_COMPILE"):
        _compile_mode(False)


def test_reduce_overhead_compiles_the_cached_transformers_without_cuda_graphs(world_dir, monkeypatch):
    """CUDA graph replays overwrite the KV caches these transformers keep between calls (seen on an H100)."""
    modes = []
    monkeypatch.setattr(torch, "compile", lambda module, mode=None, dynamic=None: modes.append(mode) or module)
    load_world(world_dir, device="cpu", compile="reduce-overhead")
    assert modes == ["default", "default"]
    load_world(world_dir, device="cpu", compile="max-autotune")
    assert modes[2:] == ["max-autotune", "max-autotune"]


# --- CUDA ---

@pytest.mark.gpu
def test_cuda_step_batch_bf16_and_spawn(world_dir):
    base = load_world(world_dir, device="cuda")
    assert base.autocast and base.model.dynamics.head.weight.dtype == torch.bfloat16
    ws = [base.spawn() for _ in range(4)]
    for i, w in enumerate(ws):
        w.reset(Prompt(seed=i))
    for t in range(3):
        WorldModelBackend.step_batch(ws, [(t + i) % 4 for i in range(4)], [None] * 4)
    states = [w.get_state() for w in ws]
    runs = []
    for _ in range(2):  # the batched path is deterministic: same states, same actions -> same frames
        for w, s in zip(ws, states):
            w.set_state(s)
        runs.append([WorldModelBackend.step_batch(ws, [(t + i) % 4 for i in range(4)], [None] * 4) for t in range(10)])
    for a, b in zip(*runs):
        assert all(x.shape == (16, 16, 3) and x.dtype == np.uint8 and np.array_equal(x, y) for x, y in zip(a, b))
    assert [w._dyn.pos for w in ws] == [14] * 4 and all(w._dyn.k[0].is_cuda for w in ws)
    alone = base.spawn()
    alone.reset(Prompt(seed=0))
    assert alone.step(1).shape == (16, 16, 3)


@pytest.mark.gpu
def test_cuda_report_and_compiled_stages(world_dir):
    w = load_world(world_dir, device="cuda", compile="reduce-overhead")  # compiled; no CUDA graphs (KV caches)
    st = stage_timings(w, frames=4, resets=2)
    assert st["dynamics"] > 0 and len(st["dynamics_per_step"]) == 4
    assert matmul_peak_gflops(torch.bfloat16, seconds=0.1, n=2048, device="cuda") > 1000
