"""The world model: ST transformer, tokenizer, latent actions, MaskGIT dynamics, sampler, checkpoints and the backend."""
