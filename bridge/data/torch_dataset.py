"""A torch IterableDataset over ClipSampler, for DataLoader workers (the numpy reader stays the core)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bridge.data.dataset import ClipSampler, VideoDataset


class ClipIterable(torch.utils.data.IterableDataset):
    """Endless random clips as uint8 tensors (T, H, W, 3), plus int64 actions (T-1,) when `with_actions`."""

    def __init__(self, root: str | Path, clip_len: int, split: str = "train", stride: int = 1, seed: int = 0,
                 with_actions: bool = False, effective: bool = False):
        self.root, self.clip_len, self.split, self.stride = Path(root), clip_len, split, stride
        self.seed, self.with_actions, self.effective = seed, with_actions, effective
        ClipSampler(VideoDataset(self.root), clip_len, split, stride)  # fail early, in the main process

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        sampler = ClipSampler(VideoDataset(self.root), self.clip_len, self.split, self.stride)  # memmaps per worker
        rng = np.random.default_rng([self.seed, worker])
        if self.with_actions and not sampler.ds.has_actions:
            raise ValueError(f"{self.root} has no actions (video-only footage); use with_actions=False")
        while True:
            if self.with_actions:
                frames, actions = sampler.sample_with_actions(1, rng, effective=self.effective)
                yield torch.from_numpy(frames[0]), torch.from_numpy(actions[0].astype(np.int64))
            else:
                yield torch.from_numpy(sampler.sample(1, rng)[0])
