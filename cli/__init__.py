"""The `reelscribe` command line."""
