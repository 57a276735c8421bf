"""What `pko perf produce` / `pko perf consume` measure (kafka-producer-perf-test and
kafka-consumer-perf-test figures). MB is 1024 × 1024 bytes, as in those tools."""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class ProducerPerfWindow:
    """One reporting interval of a producer run (the tool's periodic line)."""

    records: int
    elapsed_s: float
    bytes: int
    avg_latency_ms: float
    max_latency_ms: float

    @property
    def records_per_s(self) -> float:
        """Acknowledged records per second."""
        return self.records / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def mb_per_s(self) -> float:
        """Acknowledged MB per second."""
        return self.bytes / MB / self.elapsed_s if self.elapsed_s else 0.0


@dataclass(frozen=True)
class ProducerPerfResult:
    """A whole producer run; latencies are from ``produce()`` to the acknowledgement, in ms."""

    total: ProducerPerfWindow
    p50_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float
    failed: int = 0
    first_error: str | None = None
    transactions: int = 0


@dataclass(frozen=True)
class ConsumerPerfResult:
    """A consumer run: wall-clock window, what was read, time to the first assignment."""

    start_ms: int
    end_ms: int
    bytes: int
    messages: int
    rebalance_ms: int
    timed_out: bool = False

    @property
    def elapsed_s(self) -> float:
        """Seconds from start to end."""
        return max(self.end_ms - self.start_ms, 1) / 1000

    @property
    def fetch_ms(self) -> int:
        """Time spent fetching: the run minus the rebalance (the tool's ``fetch.time.ms``)."""
        return max(self.end_ms - self.start_ms - self.rebalance_ms, 1)
