"""Text and sketch -> first frame: a prompt-conditioned MaskGIT over one frame's tokens (Muse-style).

The frame's tokens come from the world's own video tokenizer, so a generated first frame is exactly what the
dynamics expects to continue from. Conditioning: the text embedding becomes one prefix token (a learned null
token replaces it for classifier-free guidance), and a sketch enters as its palette class map pooled to the
token grid, added to every token (a learned null vector when there is no sketch). One model serves text, sketch
and text + sketch prompts. Files: first_frame.safetensors + first_frame.json beside the world's checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from bridge.backend import opaque
from bridge.files import atomic_write_bytes, atomic_write_json
from bridge.model.checkpoint import CheckpointError, read_json
from bridge.model.sampler import mask_schedule
from bridge.model.tokenizer import DECODER_PARTS
from bridge.worlds.sketch import SKETCH_PALETTE, nearest_labels

WEIGHTS, META = "first_frame.safetensors", "first_frame.json"
FORMAT = "worldbridge-first-frame"
SKETCH_CLASSES = len(SKETCH_PALETTE)


@dataclass
class FirstFrameConfig:
    """Size of the first-frame MaskGIT and how it was conditioned."""

    dim: int = 192
    depth: int = 6
    heads: int = 6
    dropout: float = 0.0
    text_dim: int = 384
    text_drop: float = 0.15  # prompts replaced by the null token in training (classifier-free guidance)
    sketch_keep: float = 0.5  # share of training samples that see their sketch
    steps: int = 12  # MaskGIT steps at inference
    cfg: float = 3.0  # guidance scale on the text
    temperature: float = 1.0  # sampling temperature of the tokens
    choice_noise: float = 2.0  # Gumbel noise on the confidences, annealed to 0 (MaskGIT's choice temperature)


PRESETS = {
    "micro": FirstFrameConfig(dim=32, depth=2, heads=2, steps=4),
    "tiny": FirstFrameConfig(dim=192, depth=6, heads=6, steps=12),
    "small": FirstFrameConfig(dim=384, depth=8, heads=8, steps=16),
}


def sketch_class_map(sketch: np.ndarray, grid: tuple[int, int], sent: tuple[int, int] | None = None) -> np.ndarray:
    """A sketch (H, W, 3) uint8 in SKETCH_PALETTE colours -> (gh*gw, classes) fraction of each colour per token cell;
    `sent`: (width, height) of the drawing `sketch` was cut from, the size a refusal names (the user knows that one)."""
    img = opaque(sketch)  # transparent = not drawn = sky (white)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"a sketch must be an (H, W, 3) uint8 image in the sketch palette, got shape {img.shape} "
                         f"dtype {img.dtype}")
    gh, gw = grid
    H, W = img.shape[:2]
    if H < gh or W < gw:
        width, height = sent or (W, H)
        raise ValueError(f"the sketch is {width}x{height} pixels, smaller than the {gw}x{gh} token grid: draw it "
                         "larger")
    step = max(1, min(H // (32 * gh), W // (32 * gw)))  # 32 samples a cell are plenty: a 2048 px sketch took 1 GB
    img = img[::step, ::step]
    H, W = img.shape[:2]
    lab, _ = nearest_labels(img)
    cell = (np.arange(H) * gh // H)[:, None] * gw + (np.arange(W) * gw // W)[None, :]
    counts = np.zeros((gh * gw, SKETCH_CLASSES), np.float32)
    np.add.at(counts, (cell.ravel(), lab.ravel()), 1.0)
    return counts / counts.sum(1, keepdims=True)


class FirstFrameModel(nn.Module):
    """tokens (B, N) with MASK ids + text embedding (B, C) or None + sketch map (B, N, K) or None -> logits (B, N, V)."""

    def __init__(self, cfg: FirstFrameConfig, vocab: int, grid: tuple[int, int]):
        super().__init__()
        self.cfg, self.vocab, self.grid = cfg, vocab, tuple(grid)
        self.tokens = grid[0] * grid[1]
        self.mask_id = vocab
        self.tok_embed = nn.Embedding(vocab + 1, cfg.dim)  # last row = MASK
        self.pos = nn.Parameter(torch.randn(1, self.tokens + 1, cfg.dim) * 0.02)
        self.text_proj = nn.Linear(cfg.text_dim, cfg.dim)
        self.null_text = nn.Parameter(torch.randn(1, 1, cfg.dim) * 0.02)
        self.sketch_proj = nn.Linear(SKETCH_CLASSES, cfg.dim)
        self.null_sketch = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, 4 * cfg.dim, cfg.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.ln = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, vocab)

    def forward(self, tokens: torch.Tensor, text: torch.Tensor | None, sketch: torch.Tensor | None,
                text_on: torch.Tensor | None = None, sketch_on: torch.Tensor | None = None) -> torch.Tensor:
        """`text_on` / `sketch_on` (B,) bool pick per sample between the condition and its null."""
        B = tokens.shape[0]
        x = self.tok_embed(tokens)  # (B, N, D)
        null_t = self.null_text.expand(B, 1, -1)
        if text is None:
            t = null_t
        else:
            t = self.text_proj(text.float())[:, None]  # (B, 1, D)
            if text_on is not None:
                t = torch.where(text_on[:, None, None], t, null_t)
        if sketch is None:
            x = x + self.null_sketch
        else:
            s = self.sketch_proj(sketch.float())  # (B, N, D)
            if sketch_on is not None:
                s = torch.where(sketch_on[:, None, None], s, self.null_sketch.expand_as(s))
            x = x + s
        h = self.blocks(torch.cat([t, x], 1) + self.pos)
        return self.head(self.ln(h[:, 1:]))  # (B, N, V)

    def training_loss(self, tokens: torch.Tensor, text: torch.Tensor, sketch: torch.Tensor | None,
                      generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """MaskGIT loss on clean tokens (B, N): cosine-scheduled mask rate, condition dropout for guidance."""
        B, N = tokens.shape
        dev = tokens.device
        rand = lambda *s: torch.rand(*s, device=dev, generator=generator)  # noqa: E731
        rate = torch.cos(math.pi / 2 * rand(B, 1))  # MaskGIT's cosine schedule over the mask ratio
        mask = rand(B, N) < rate
        mask[torch.arange(B, device=dev), torch.randint(0, N, (B,), device=dev, generator=generator)] = True  # >= 1
        inp = torch.where(mask, torch.full_like(tokens, self.mask_id), tokens)
        text_on = rand(B) >= self.cfg.text_drop
        sketch_on = rand(B) < self.cfg.sketch_keep if sketch is not None else None
        logits = self(inp, text, sketch, text_on, sketch_on)
        m = mask.flatten().float()
        ce = (F.cross_entropy(logits.flatten(0, 1).float(), tokens.flatten(), reduction="none") * m).sum() / m.sum()
        acc = ((logits.flatten(0, 1).argmax(-1) == tokens.flatten()).float() * m).sum() / m.sum()
        return {"loss": ce, "ce": ce, "acc": acc}

    @torch.no_grad()
    def generate(self, text: torch.Tensor | None, sketch: torch.Tensor | None = None, batch: int = 1,
                 steps: int | None = None, cfg: float | None = None, temperature: float | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Token maps (B, N) for text embeddings (B, C) and/or sketch maps (B, N, K); neither = unconditional."""
        c = self.cfg
        steps, cfg, temperature = steps or c.steps, c.cfg if cfg is None else cfg, c.temperature if temperature is None else temperature
        B = text.shape[0] if text is not None else sketch.shape[0] if sketch is not None else batch
        dev = self.pos.device
        tokens = torch.full((B, self.tokens), self.mask_id, dtype=torch.long, device=dev)
        guided = text is not None and cfg != 1.0
        for s, left in enumerate(mask_schedule(steps, self.tokens)):
            masked = tokens == self.mask_id
            if guided:  # text and null text side by side in one batch
                on = torch.cat([torch.ones(B, dtype=torch.bool, device=dev), torch.zeros(B, dtype=torch.bool, device=dev)])
                lg = self(tokens.repeat(2, 1), text.repeat(2, 1), None if sketch is None else sketch.repeat(2, 1, 1), on)
                cond, unc = lg.float().chunk(2)
                logits = unc + cfg * (cond - unc)
            else:
                logits = self(tokens, text, sketch).float()
            if temperature > 0:
                probs = torch.softmax(logits / temperature, -1)
                sampled = torch.multinomial(probs.flatten(0, 1), 1, generator=generator).view(B, -1)
            else:
                probs = torch.softmax(logits, -1)
                sampled = probs.argmax(-1)
            conf = torch.log(probs.gather(-1, sampled[..., None])[..., 0].clamp(min=1e-20))
            noise = c.choice_noise * (1 - (s + 1) / steps)
            if noise > 0:
                u = torch.rand(conf.shape, device=dev, generator=generator).clamp(1e-20, 1 - 1e-7)
                conf = conf + noise * -torch.log(-torch.log(u))
            conf = conf.masked_fill(~masked, -float("inf"))
            reveal = int(masked[0].sum()) - left
            idx = conf.topk(reveal, dim=-1).indices
            tokens.scatter_(1, idx, sampled.gather(1, idx))
        return tokens


# --- Files ---

def tokenizer_fingerprint(tokenizer: nn.Module) -> str:
    """A short hash of the weights that define the tokens (encoder and codebook): a first-frame model only fits the
    tokens it was trained on, and a decoder trained further (`worldbridge train decoder`) leaves them as they were."""
    h = hashlib.sha256()
    for k, v in sorted(tokenizer.state_dict().items()):
        if k.startswith(tuple(f"{p}." for p in DECODER_PARTS)):
            continue
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def save_first_frame(folder: Path, model: FirstFrameModel, card: dict[str, Any]) -> None:
    """Weights then metadata, each atomically (so the metadata never points at missing weights)."""
    folder = Path(folder)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    atomic_write_bytes(folder / WEIGHTS, st_save(tensors, metadata={"format": FORMAT}))
    meta = {"format": FORMAT, "version": 1, "config": dataclasses.asdict(model.cfg), "vocab": model.vocab,
            "grid": list(model.grid), **card}
    atomic_write_json(folder / META, meta)


def has_first_frame(folder: Path) -> bool:
    return (Path(folder) / META).is_file() and (Path(folder) / WEIGHTS).is_file()


def load_first_frame(folder: Path, tokenizer: nn.Module | None = None) -> tuple[FirstFrameModel, dict[str, Any]]:
    """(model in eval mode, metadata); checks it was trained on this tokenizer when one is given."""
    folder = Path(folder)
    if not has_first_frame(folder):
        raise CheckpointError(f"no first-frame model in {folder}: train one with "
                              f"`worldbridge train prompts first-frame --world {folder} --data DIR`")
    meta = read_json(folder / META)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{folder / META} is not a first-frame model file (format={meta.get('format')!r})")
    if tokenizer is not None and meta.get("tokenizer") not in (None, tokenizer_fingerprint(tokenizer)):
        raise CheckpointError(f"the first-frame model in {folder} was trained on another video tokenizer: delete "
                              f"{folder}/first_frame.* and train one afresh with `worldbridge train prompts first-frame "
                              f"--world {folder} --data DIR` (add --init-from OLD_WORLD to start from its weights)")
    names = {f.name for f in dataclasses.fields(FirstFrameConfig)}
    cfg = FirstFrameConfig(**{k: v for k, v in meta["config"].items() if k in names})
    model = FirstFrameModel(cfg, int(meta["vocab"]), tuple(meta["grid"]))
    try:
        tensors = st_load((folder / WEIGHTS).read_bytes())
        model.load_state_dict(tensors)
    except (SafetensorError, RuntimeError) as e:
        raise CheckpointError(f"{folder / WEIGHTS} does not fit {folder / META} ({str(e)[:200]}): retrain the "
                              "first-frame model") from None
    return model.eval(), meta
