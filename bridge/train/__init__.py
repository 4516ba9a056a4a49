"""Training stages, the training loop and evaluation of world models (docs/model.md)."""
