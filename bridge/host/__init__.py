"""The world host: protocol codec, ROUTER server, sessions, recordings, bench and their commands."""
