"""`pko doctor`'s checks over the monitor's current frame, for the TUI's Doctor screen.

``diagnose_frame`` builds a ``DoctorInput`` from what a poll already read (the ``MonitorFrame``)
and the poll times of the services' history (the rate window the frame's rates cover), then runs
``doctor_checks.run_checks`` unchanged: no check logic lives here and nothing is read from the
cluster. The checks that need reads the poll does not do — key samples (hot keys, mixed
partitioners), the configs of ``--critical-topics`` (durability), our nodes' admin endpoints
(producer acks), their open files (psutil) and the replication throttles — find nothing or report themselves skipped
here; ``NOT_CHECKED`` names them for the screen ("run pko doctor").
"""

from __future__ import annotations

from dataclasses import dataclass

from pykafka_ops.models.doctor import DoctorInput, DoctorOptions, Finding
from pykafka_ops.models.monitor import MonitorFrame
from pykafka_ops.services.doctor_checks import run_checks
from pykafka_ops.services.monitor import MonitorServices

#: What `pko doctor` checks and the Doctor screen cannot (it needs reads the poll does not do).
NOT_CHECKED = ("hot keys and mixed partitioners (key samples)", "durability of critical topics (topic configs)",
               "producer acks (admin endpoint)", "open files of our nodes",
               "replication throttles left set (broker and topic configs)")


@dataclass(frozen=True)
class FrameDiagnosis:
    """The findings of one frame, worst first, and what they could not cover."""

    findings: tuple[Finding, ...]
    window_s: float
    """Seconds the frame's rates cover (0 after the first poll)."""
    poll: int
    not_checked: tuple[str, ...] = NOT_CHECKED


def frame_input(services: MonitorServices, frame: MonitorFrame) -> DoctorInput:
    """The checks' input from ``frame`` alone: no key samples, topic configs, node files or producers."""
    return DoctorInput(frame, services.rate_window_s(), services.bootstrap_servers)


def diagnose_frame(services: MonitorServices, frame: MonitorFrame,
                   options: DoctorOptions | None = None) -> FrameDiagnosis:
    """Run every check over ``frame`` (thresholds from ``options``; by default `pko doctor`'s, with
    the monitor's hot-partition z-score)."""
    options = options or DoctorOptions(hot_z=services.options.hot_k)
    data = frame_input(services, frame)
    findings, _skipped = run_checks(data, options)
    return FrameDiagnosis(findings, data.window_s, frame.poll)
