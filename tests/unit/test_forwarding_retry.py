"""Forwarded admin requests and NOT_CONTROLLER (Kafka's ``NodeToControllerRequestThread``): an
answer naming NOT_CONTROLLER anywhere — from a controller that lost its leadership, or from this
node while it leads the quorum without being active yet — is asked again until the timeout."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from cluster.controller_requests import names_not_controller
from cluster.handlers import BROKER, CONTROLLER
from cluster.handlers.forwarding import forwarded
from pykafka_ops.errors import ErrorCode

NOT_CONTROLLER = {"error_code": ErrorCode.not_controller, "results": []}
DONE = {"error_code": ErrorCode.none, "results": [{"name": "t", "error_code": ErrorCode.none}]}


@dataclass
class _Partition:
    error_code: int


@dataclass
class _Answer:
    error_code: int
    partitions: tuple[_Partition, ...]


def test_not_controller_is_found_at_any_depth_of_a_body_or_a_decoded_answer() -> None:
    assert names_not_controller({"error_code": 0, "results": [{"name": "t", "error_code": ErrorCode.not_controller}]})
    assert names_not_controller(_Answer(0, (_Partition(0), _Partition(ErrorCode.not_controller))))
    assert not names_not_controller(DONE) and not names_not_controller(_Answer(0, (_Partition(0),)))


def _ctx(listener: str, timeout_s: float) -> Any:
    requests = SimpleNamespace(local=True, backoff_s=0.01, forward_timeout_s=lambda _request: timeout_s)
    return SimpleNamespace(listener=listener, broker=SimpleNamespace(requests=requests))


def _handler(answers: list[dict[str, Any]]) -> Any:
    calls = []

    @forwarded(lambda _request, code, message: {"error_code": code})
    async def handle(_ctx: Any, _request: Any) -> dict[str, Any]:
        calls.append(1)
        return answers[min(len(calls), len(answers)) - 1]

    return handle, calls


def test_a_local_not_controller_answer_is_asked_again_until_the_controller_is_active() -> None:
    handle, calls = _handler([NOT_CONTROLLER, NOT_CONTROLLER, DONE])
    assert asyncio.run(handle(_ctx(BROKER, 5.0), None)) == DONE and len(calls) == 3


def test_the_controller_listener_answers_not_controller_at_once_and_a_timeout_ends_the_retries() -> None:
    handle, calls = _handler([NOT_CONTROLLER])
    assert asyncio.run(handle(_ctx(CONTROLLER, 5.0), None)) == NOT_CONTROLLER and len(calls) == 1
    handle, calls = _handler([NOT_CONTROLLER])
    assert asyncio.run(handle(_ctx(BROKER, 0.05), None)) == NOT_CONTROLLER and 2 <= len(calls) <= 10
