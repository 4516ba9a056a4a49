"""The WorldBridge editor: a PySide6 protocol client for prompting, playing, branching and exporting worlds."""
