"""Every knob of the speech stages, with its one default. `resources/speech.py` exposes each as a
resource field (UI launchpad, `MEDIA_LAKE_*`); each stage fingerprints the part it reads."""

from __future__ import annotations

from dataclasses import dataclass

from media_assets.lib.speech.asr import AsrSettings
from media_assets.lib.speech.diarizer import DiarizationSettings
from media_assets.lib.speech.quality import SpeechQuality


@dataclass(frozen=True)
class SpeechSettings:
    asr: AsrSettings = AsrSettings()
    diarization: DiarizationSettings = DiarizationSettings()
    quality: SpeechQuality = SpeechQuality()  # limits of the quality gates; not part of any fingerprint
