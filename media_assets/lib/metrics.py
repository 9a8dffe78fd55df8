"""The pipeline's figures as Prometheus sees them, tallied from durable events: pure bookkeeping,
no Dagster, no HTTP (media_assets/observability reads the events and serves the result).

Every count is a function of the events fed in, in storage order, so an exporter that restarts and
reads the event log again from the start arrives at the same totals. Episode and run ids are never
labels: a label's values come from the stage list, the job list, the failure classes and reasons
the code declares, or the check names.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

# Histogram bucket upper bounds (Prometheus `le`), one declaration each.
SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
RTF_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
END_TO_END_STAGE = "distribution"  # a run that did this stage's work took an episode end to end
# seconds of wall time per hour of audio: 360 s is 10 audio-hours per wall-hour, 3600 s is real time
PER_AUDIO_HOUR_BUCKETS = (60.0, 120.0, 240.0, 360.0, 540.0, 720.0, 900.0, 1200.0, 1800.0, 3600.0, 7200.0)
# word probabilities (ASR) and turn confidences (diarization), 0..1
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


DISTRIBUTION_SUFFIX = "_buckets"  # a metadata entry named <name>_buckets is the distribution <name>


def bucketed(values) -> dict:
    """A distribution of 0..1 values (word probabilities, turn confidences) as a stage summary
    carries it: counts per CONFIDENCE_BUCKETS bucket (overflow last) and their sum, so the exporter
    builds its histogram from the event log without reading the lake."""
    histogram = Histogram(CONFIDENCE_BUCKETS)
    for value in values:
        histogram.observe(value)
    return {"counts": histogram.counts, "sum": round(histogram.total, 6)}


@dataclass
class Histogram:
    edges: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative; overflow last
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = self.counts or [0] * (len(self.edges) + 1)

    def observe(self, value: float) -> None:
        self.counts[next((n for n, edge in enumerate(self.edges) if value <= edge), len(self.edges))] += 1
        self.total += value

    def merge(self, counts: list[int], total: float) -> None:
        """Add another histogram's counts with the same edges (and the sum of its values)."""
        if len(counts) != len(self.counts):
            raise ValueError(f"{len(counts)} bucket counts for {len(self.counts)} buckets")
        self.counts = [a + b for a, b in zip(self.counts, counts, strict=True)]
        self.total += total

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, count) pairs as Prometheus writes them, "+Inf" last."""
        running, pairs = 0, []
        for edge, count in zip([*map(str, self.edges), "+Inf"], self.counts, strict=True):
            running += count
            pairs.append((edge, running))
        return pairs


@dataclass(frozen=True)
class Materialization:
    """What the tally needs of one stage materialization (its metadata, see defs/episodes.py)."""

    stage: str
    episode_id: str  # kept to relate runs to audio seconds; never a label
    run_id: str  # likewise
    skipped: bool  # the stage found its outputs up to date and did no work
    stage_seconds: float | None
    audio_seconds: float | None
    distributions: dict[str, tuple[list[int], float]] = field(default_factory=dict)  # name -> (counts, sum)


class Tally:
    """Counters and histograms fed with events in storage order; `Tally()` fed the same events gives
    the same figures (what makes exporter restarts safe)."""

    def __init__(self) -> None:
        self.materializations: Counter[tuple[str, str]] = Counter()  # (stage, "done" | "skipped")
        self.stage_seconds: dict[str, Histogram] = defaultdict(lambda: Histogram(SECONDS_BUCKETS))
        self.stage_rtf: dict[str, Histogram] = defaultdict(lambda: Histogram(RTF_BUCKETS))
        self.audio_seconds: Counter[str] = Counter()  # stage -> audio seconds it processed
        self.quality: dict[str, Histogram] = defaultdict(lambda: Histogram(CONFIDENCE_BUCKETS))
        self.checks: Counter[tuple[str, str, str]] = Counter()  # (stage, check, "passed" | "failed")
        self.step_failures: Counter[tuple[str, str, str, str]] = Counter()  # stage, class, reason, error type
        self.step_retries: Counter[str] = Counter()
        self.runs_ended: Counter[tuple[str, str]] = Counter()  # (job, status)
        self.run_seconds: dict[tuple[str, str], Histogram] = defaultdict(lambda: Histogram(SECONDS_BUCKETS))
        self.seconds_per_audio_hour = Histogram(PER_AUDIO_HOUR_BUCKETS)
        self._audio_of: dict[str, float] = {}  # episode id -> its audio seconds
        self._end_to_end: set[str] = set()  # runs, not yet ended, that did END_TO_END_STAGE's work

    def materialized(self, event: Materialization) -> None:
        self.materializations[event.stage, "skipped" if event.skipped else "done"] += 1
        if event.audio_seconds is not None:
            self._audio_of[event.episode_id] = event.audio_seconds
        if event.skipped or event.stage_seconds is None:
            return
        if event.stage == END_TO_END_STAGE:
            self._end_to_end.add(event.run_id)
        self.stage_seconds[event.stage].observe(event.stage_seconds)
        if event.audio_seconds:
            self.stage_rtf[event.stage].observe(event.stage_seconds / event.audio_seconds)
            self.audio_seconds[event.stage] += event.audio_seconds
        for name, (counts, total) in event.distributions.items():
            self.quality[name].merge(counts, total)

    def checked(self, stage: str, check: str, passed: bool) -> None:
        self.checks[stage, check, "passed" if passed else "failed"] += 1

    def step_failed(self, stage: str, failure_class: str, reason: str, error_type: str) -> None:
        self.step_failures[stage, failure_class, reason, error_type] += 1

    def step_retried(self, stage: str) -> None:
        self.step_retries[stage] += 1

    def run_ended(self, run_id: str, job: str, status: str, seconds: float | None, episode_id: str | None) -> None:
        """A run reached SUCCESS, FAILURE or CANCELED. A successful run that did END_TO_END_STAGE's
        work (not one that asked for some stages, nor one that found everything up to date) is
        also one end-to-end time per audio hour, when its episode's audio length is known."""
        self.runs_ended[job, status] += 1
        end_to_end = run_id in self._end_to_end
        self._end_to_end.discard(run_id)
        if seconds is None:
            return  # never started (failed in the queue or at launch)
        self.run_seconds[job, status].observe(seconds)
        audio = self._audio_of.get(episode_id or "")
        if status == "SUCCESS" and end_to_end and audio:
            self.seconds_per_audio_hour.observe(seconds / (audio / 3600))
