"""Video datasets: the on-disk format (docs/data.md), its reader, and the tools that make datasets."""

from bridge.data.dataset import ClipSampler, Episode, VideoDataset

__all__ = ["ClipSampler", "Episode", "VideoDataset"]
