"""media-lake: a Dagster code location that turns raw episodes into a queryable media lake."""

import os

# CTranslate2 (Whisper) and torch (pyannote) each bring an OpenMP runtime; with busy-waiting
# threads they starve each other on small machines (whisperx on 2 cores: 4-10x slower).
# Set before either library is imported by the CLI or the code server; an explicit value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
