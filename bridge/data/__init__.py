"""Video datasets: the on-disk format (docs/data.md), its reader, and the tools that make datasets."""

from bridge.data.dataset import ClipSampler, Episode, VideoDataset, check_frame_size, no_val_episodes

__all__ = ["ClipSampler", "Episode", "VideoDataset", "check_frame_size", "no_val_episodes"]
