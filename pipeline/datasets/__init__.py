"""Dataset readers and generators: pure functions, no downloads and no CLI."""
