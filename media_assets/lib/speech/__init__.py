"""Speech: the 16 kHz audio both models hear, Whisper ASR, pyannote diarization, speaker attribution
and subtitles; stages transcript, diarization, speaker_transcript."""
