"""Prompts and promptable world events: text encoder, text/sketch -> first frame, event conditioning, frame edits."""
