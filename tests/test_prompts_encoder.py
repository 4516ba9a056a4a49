"""Text encoder: unit vectors, memory + disk caching keyed by text, paraphrase similarity with the real model."""

import os
import sys
import threading

import numpy as np
import pytest

from bridge.prompts import text_encoder as te
from bridge.prompts.events import EVAL_PARAPHRASES, TRAIN_PHRASINGS
from bridge.worlds.events import EVENT_CAPTIONS, EVENT_TYPES


def test_hashing_encoder_is_normalised_deterministic_and_cached(tmp_path):
    enc = te.HashingEncoder(cache_dir=tmp_path)
    v = enc.encode(["it starts to snow", "night falls", "it starts to snow"])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(v[0], v[2])
    assert enc.model_calls == 2  # the repeat came from memory
    enc.encode(["  it starts   to snow "])  # whitespace does not make a new text
    assert enc.model_calls == 2
    fresh = te.HashingEncoder(cache_dir=tmp_path)  # a new process: the disk cache answers
    assert np.array_equal(fresh.encode(["night falls"])[0], v[1]) and fresh.model_calls == 0
    assert len(list((tmp_path / enc.name).rglob("*.npy"))) == 2


def test_damaged_cache_file_is_recomputed(tmp_path):
    enc = te.HashingEncoder(cache_dir=tmp_path)
    want = enc.encode(["coins appear"])[0]
    path = enc._path("coins appear")
    path.write_bytes(b"not an array")
    fresh = te.HashingEncoder(cache_dir=tmp_path)
    assert np.array_equal(fresh.encode(["coins appear"])[0], want) and fresh.model_calls == 1
    for damage in (b"", b"PK\x03\x04zip", None):  # empty, a zip, a readable file that is not a unit vector
        if damage is None:
            np.save(path, np.full(enc.dim, 5.0, np.float32))
        else:
            path.write_bytes(damage)
        fresh = te.HashingEncoder(cache_dir=tmp_path)
        assert np.array_equal(fresh.encode(["coins appear"])[0], want) and fresh.model_calls == 1


def test_bad_input_is_named():
    enc = te.HashingEncoder(disk_cache=False)
    with pytest.raises(TypeError, match="list of strings"):
        enc.encode("just one string")
    with pytest.raises(TypeError, match="must be strings"):
        enc.encode([3])
    with pytest.raises(ValueError, match="unknown text encoder"):
        te.get_encoder("bert-large")


def test_hub_is_forced_offline():
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_training_and_eval_wordings_never_overlap():
    for t in EVENT_TYPES:
        assert TRAIN_PHRASINGS[t][0] == EVENT_CAPTIONS[t]
        assert not set(TRAIN_PHRASINGS[t]) & set(EVAL_PARAPHRASES[t])


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    return te.MiniLMEncoder(cache_dir=tmp_path_factory.mktemp("emb"))


def test_minilm_paraphrases_land_near_their_event(minilm, tmp_path):
    v = minilm.encode(["make it snow", "it starts to snow", "night falls", "coins appear"])
    assert v.shape == (4, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2 and v[0] @ v[1] > v[0] @ v[3] + 0.2
    # held-out paraphrases: the nearest training wording belongs to the right event for most of them
    known = [(t, p) for t, ps in TRAIN_PHRASINGS.items() for p in ps]
    K = minilm.encode([p for _, p in known])
    hits = [known[int((K @ v).argmax())][0] == t for t, ps in EVAL_PARAPHRASES.items() for v in minilm.encode(ps)]
    assert np.mean(hits) >= 0.75, hits
    calls = minilm.model_calls
    again = te.MiniLMEncoder(cache_dir=minilm.cache_dir.parent)  # same disk cache, nothing re-embedded
    assert np.array_equal(again.encode(["make it snow"])[0], v[0]) and again.model_calls == 0
    assert minilm.model_calls == calls


def test_minilm_refuses_texts_it_cannot_read_instead_of_meaning_something_else(minilm):
    assert minilm.unreadable("make it snow") is None and minilm.unreadable("☀️ a sunny day") is None
    emoji = minilm.encode(["🌧️", "🔥🔥"])
    assert emoji[0] @ emoji[1] > 0.99  # why: all of them encode alike
    assert "no words" in minilm.unreadable("🌧️") and "no words" in minilm.unreadable(" 🔥 🔥 ")
    long = "a snowy night level with coins " * 60
    assert "word pieces long" in minilm.unreadable(long) and "shorten it" in minilm.unreadable(long)
    assert minilm.unreadable("a snowy night level with coins " * 40) is None  # 240 pieces fit
    korean = "a " + "한국 " * 100  # 201 characters, but each syllable is split into jamo: 601 pieces
    assert "601 word pieces long" in minilm.unreadable(korean)


def test_hashing_encoder_refuses_texts_without_words(tmp_path):
    enc = te.HashingEncoder(cache_dir=tmp_path)
    assert enc.unreadable("make it snow") is None
    assert "no words" in enc.unreadable("🌧️ !!") and "no words" in enc.unreadable("雪")


def test_cached_vectors_belong_to_the_encoder_that_made_them(tmp_path, monkeypatch):
    class Reversed(te.HashingEncoder):  # same name and dim, other vectors: a swapped model
        def _embed(self, texts):
            return super()._embed(texts)[:, ::-1].copy()

    want = Reversed(disk_cache=False).encode(["coins appear"])[0]
    te.HashingEncoder(cache_dir=tmp_path).encode(["coins appear"])
    other = Reversed(cache_dir=tmp_path)
    assert np.array_equal(other.encode(["coins appear"])[0], want) and other.model_calls == 1
    # MiniLM's keys follow its weights: a reinstalled or swapped model does not read the old vectors
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights 1")
    monkeypatch.setattr(te, "_model_path", lambda: model)
    before = te.MiniLMEncoder(cache_dir=tmp_path)._path("coins appear")
    (model / "model.safetensors").write_bytes(b"weights 2")
    te.files_fingerprint.cache_clear()
    assert te.MiniLMEncoder(cache_dir=tmp_path)._path("coins appear") != before


def test_an_unreadable_texts_error_quotes_its_start_not_all_of_it():
    from bridge.prompts.text_encoder import HashingEncoder

    enc = HashingEncoder()
    long = "🌧️" * 1000
    msg = enc.unreadable(long)
    assert msg.startswith("the text '🌧️") and "(2000 characters) has no words" in msg and len(msg) < 400
    assert "'🌧️' has no words" in enc.unreadable("🌧️")  # a short one is quoted whole


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities are per thread on Linux only")
def test_warm_up_runs_at_the_lowest_priority_and_leaves_the_callers_alone(monkeypatch):
    seen = []

    class Probe:
        def warm(self):
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    monkeypatch.setattr(te, "_WARMING", set())
    monkeypatch.setattr(te, "get_encoder", lambda name: Probe())
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    te.warm_up(["probe"]).join()
    assert seen == [19] and os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


def test_warm_up_returns_at_once_while_a_load_is_under_way(monkeypatch):
    monkeypatch.setattr(te, "_WARMING", set())
    monkeypatch.setattr(te, "get_encoder", lambda name: type("Idle", (), {"warm": lambda self: None})())
    with te._MODEL_LOCK:  # what a loading sentence model holds for seconds (the editor calls warm_up on its GUI thread)
        done = threading.Event()
        threading.Thread(target=lambda: (te.warm_up(["probe"]), done.set()), daemon=True).start()
        assert done.wait(2.0), "warm_up waited for the model lock: the editor window froze for the whole load"


def test_warm_up_loads_minilm_once_in_the_background_and_caches_no_text(tmp_path, monkeypatch):
    import sentence_transformers

    made = []

    class Counted(sentence_transformers.SentenceTransformer):
        def __init__(self, *args, **kwargs):
            made.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", Counted)
    monkeypatch.setattr(te, "_MODEL", None)  # this process has not loaded the model yet
    monkeypatch.setattr(te, "_WARMING", set())
    monkeypatch.setattr(te, "_INSTANCES", {})
    monkeypatch.setenv("WORLDBRIDGE_CACHE", str(tmp_path))
    thread = te.warm_up(["minilm", "minilm"])
    assert thread is not None and thread.is_alive() and te.warm_up(["minilm"]) is None  # once per process
    enc = te.get_encoder("minilm")
    v = enc.encode(["a snowy night in a cave"])  # the first prompt, mid-load: waits for the rest, never loads again
    thread.join()
    assert len(made) == 1 and enc.model_calls == 1
    assert len(list(tmp_path.rglob("*.npy"))) == 1  # the warm-up's own run cached nothing
    cold = te.MiniLMEncoder(cache_dir=tmp_path / "cold", disk_cache=False)
    assert np.array_equal(v, cold.encode(["a snowy night in a cave"]))


def test_a_long_text_gets_its_clear_refusal_without_the_tokenizers_warning():
    """A 300-word prompt logged transformers' "Token indices sequence length ..." before its clear bad_prompt."""
    import subprocess
    from pathlib import Path

    code = "from bridge.prompts.text_encoder import get_encoder; print(get_encoder('minilm').unreadable('snowy ' * 300))"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0 and "300 word pieces long" in res.stdout and "shorten it" in res.stdout, res.stderr
    assert "Token indices" not in res.stderr, res.stderr
