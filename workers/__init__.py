"""Reelscribe workers: Dramatiq actors that run the processing pipeline.

Start them with `reelscribe worker` (or `dramatiq workers.actors`).
"""
