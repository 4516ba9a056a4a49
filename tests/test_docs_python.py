"""docs/python.md runs: every ```python block is executed in order, so the Python API's examples cannot rot."""

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "python.md"


def python_blocks(text: str) -> list[str]:
    """The doc's ```python blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.M | re.S)


def test_python_blocks_are_found():
    blocks = python_blocks("intro\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = a\n```\n")
    assert blocks == ["a = 1\n", "b = a\n"]


def test_readme_links_the_python_doc():
    assert "docs/python.md" in (ROOT / "README.md").read_text()


def test_every_python_block_of_the_doc_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the doc's host records into ./recordings, as `serve` does: not into the repo
    torch.set_num_threads(1)
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 10, f"docs/python.md has only {len(blocks)} python blocks"
    namespace: dict = {"__name__": "docs_python"}
    try:
        for i, block in enumerate(blocks):
            try:
                exec(compile(block, f"docs/python.md block {i + 1}", "exec"), namespace)
            except Exception as e:
                pytest.fail(f"docs/python.md block {i + 1} failed: {type(e).__name__}: {e}\n{block}")
    finally:
        for name in ("client", "env"):
            if hasattr(namespace.get(name), "close"):
                namespace[name].close()
        if "host" in namespace:
            namespace["host"].stop()
    assert namespace["client"]._closed and not namespace["host"].thread.is_alive()
    assert (tmp_path / "recordings").is_dir()  # the recording block ran where this test put it
