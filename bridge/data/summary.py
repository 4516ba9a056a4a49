"""What a dataset holds, for `worldbridge data info`: sizes, splits, captions, events and how it was made."""

from __future__ import annotations

import textwrap
from collections import Counter

from bridge.data.dataset import VideoDataset, provenance
from bridge.values import plural


def dataset_info(ds: VideoDataset) -> dict:
    """A JSON-able summary of a dataset."""
    size = sum(f.stat().st_size for f in ds.root.iterdir() if f.is_file())
    events = Counter(e["type"] for ep in ds.episodes for e in ep.events)
    params = [ep.params or {} for ep in ds.episodes]
    counts = {key: dict(Counter(p[key] for p in params if key in p)) for key in ("theme", "time", "weather")}
    return {
        "root": str(ds.root),
        "source": ds.source,
        "episodes": len(ds.episodes),
        "frames": ds.num_frames,
        "height": ds.height,
        "width": ds.width,
        "fps": ds.fps,
        "hours": round(ds.num_frames / ds.fps / 3600, 3) if ds.fps else None,
        "action_names": ds.action_names,
        "has_actions": ds.has_actions,
        "has_sketches": ds.has_sketches,
        "bytes": size,
        "bytes_per_100k_frames": round(size / max(ds.num_frames, 1) * 100_000),
        "splits": {name: {"episodes": len(eps), "frames": sum(e.length for e in eps)}
                   for name in ("train", "val") for eps in [ds.split(name)]},
        "episode_length": {"min": min((e.length for e in ds.episodes), default=0),
                           "max": max((e.length for e in ds.episodes), default=0)},
        "params": {k: v for k, v in counts.items() if v},
        "events": dict(events),
        "episodes_with_events": sum(1 for ep in ds.episodes if ep.events),
        "example_captions": sorted({ep.caption for ep in ds.episodes if ep.caption})[:5],
        **{k: v for k, v in provenance(ds).items() if k != "path"},  # what model cards record of it (root says where)
    }


def _setting(v: object) -> str:
    return "/".join(map(_setting, v)) if isinstance(v, list) else f"{v:g}" if isinstance(v, float) else str(v)


def _made(info: dict) -> list[str]:
    """How the dataset was made, as `data info` prints it: the generator's settings, or an import's sources (the
    first 5) and how they were read."""
    lines = []
    if "generated_by" in info:
        settings = "generated " + ", ".join(f"{k}={_setting(v)}" for k, v in info["generated_by"].items())
        lines += textwrap.wrap(settings, 116, initial_indent="  ", subsequent_indent=" " * 12)
    if "imported_from" in info:
        imp, shown = info["imported_from"], 5
        sources = imp["sources"]
        lines.append(f"  imported  {plural(len(sources), 'source')} at {imp['fps']:g} fps, {imp['size']} px, "
                     f"val_fraction {_setting(imp['val_fraction'])}")
        lines += [f"  source    {s['path']}  ({s['bytes'] / 2**20:.1f} MiB, modified {s['modified']})"
                  for s in sources[:shown]]
        if len(sources) > shown:
            lines.append(f"  source    ... and {len(sources) - shown} more (--json lists them all)")
    return lines


def format_info(info: dict) -> str:
    """The summary for a terminal (`data info` without --json)."""
    mb = info["bytes"] / 2**20
    shortest, longest = info["episode_length"]["min"], info["episode_length"]["max"]
    lengths = ("" if shortest == longest else f"{shortest}-") + plural(longest, "frame")
    fingerprint = (f"fingerprint {info['fingerprint']}" if info["fingerprint"]
                   else "no fingerprint (made before datasets had one)")
    lines = [
        f"{info['root']}  (source: {info['source']}, {fingerprint})",
        f"  episodes  {info['episodes']}  ({lengths} each)",
        f"  frames    {info['frames']}  at {info['height']}x{info['width']}, {info['fps']:g} fps"
        + (f"  ({info['hours']} h)" if info["hours"] is not None else ""),
        f"  on disk   {mb:.1f} MiB  ({info['bytes_per_100k_frames'] / 2**20:.0f} MiB per 100k frames)",
        "  splits    " + ", ".join(f"{k}: {plural(v['episodes'], 'episode')} / {plural(v['frames'], 'frame')}" for k, v in info["splits"].items()),
        f"  actions   {info['action_names'] if info['has_actions'] else 'none (video only)'}",
    ]
    if info["has_sketches"]:
        lines.append("  sketches  yes")
    for key, counts in info["params"].items():
        lines.append(f"  {key:<9} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if info["events"]:
        lines.append(f"  events    {plural(info['episodes_with_events'], 'episode')} with events: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(info["events"].items())))
    for c in info["example_captions"]:
        lines.append(f"  caption   {c}")
    return "\n".join(lines + _made(info))
