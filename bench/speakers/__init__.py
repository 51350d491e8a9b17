"""Diarization error rate on conversations built from espeak-ng voices."""
