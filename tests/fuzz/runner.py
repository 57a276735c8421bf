"""The protocol fuzzer's network loop (specs/reliability.md T8), and its command line.

``Fuzzer.run`` sends cases from ``fuzz.frames`` to a running node, each on a fresh connection
(a pipeline case sends several frames on it), a few connections in flight at once. Every frame
must be answered with its correlation id, or its connection closed, within ``timeout_s`` (plus
any legal long poll, ``fuzz.expect``); a frame neither answered nor closed is a *hang*. A case
whose size prefix claims more bytes than were sent is closed by the fuzzer (the node legitimately
waits). Every ``health_every`` frames, ``node.health_check`` runs on a fresh connection. Before
the run the node's address space is capped (``NodeWatch.limit_address_space``); its RSS and open
descriptors are compared before and after. A failure prints the seed, the case index and the
frame in hex with the command that replays it; after a node exit, the suspects are replayed one
by one on a restarted node to name the culprit. The run's figures end as one JSON line.

Run from ``tests/`` (or with ``tests/`` on ``sys.path``)::

    python -m fuzz.runner --seconds 600 --seed 7                   # on a fresh node of its own
    python -m fuzz.runner --frames 1000000 --seed 7                # a long run
    python -m fuzz.runner --bootstrap 127.0.0.1:9092 --seconds 60  # on a node already running
    python -m fuzz.runner --replay 0000001a0003... --bootstrap 127.0.0.1:9092
    python -m fuzz.runner --listener controller --seconds 60      # a controller-only node's listener

The pytest test (``test_protocol_fuzz.py``) reads ``PKO_FUZZ_SECONDS`` (default 30),
``PKO_FUZZ_CONTROLLER_SECONDS`` (default a third of it) and ``PKO_FUZZ_SEED``. What differs
between the client and the controller listener is in ``fuzz.listeners``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import struct
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from fuzz import expect
from fuzz.frames import KNOWN_FRAMES, Bodies, Case, FrameGenerator
from fuzz.listeners import CLIENT, LISTENERS, Listener
from fuzz.node import NodeWatch, advertised, pid_listening, watch_cluster
from fuzz.report import MIB, Stats, bound_failures, describe_failure, resources
from pykafka_ops.protocol.api_keys import ApiKey

DEFAULT_SEED = 20261206
#: ApiVersions v0 sent after every case whose bytes frame exactly: once it is answered, every
#: frame before it has been answered or legally left unanswered.
SENTINEL_CID = -0x5A5A5A5A
SENTINEL = struct.pack(">ihhih", 10, ApiKey.API_VERSIONS, 0, SENTINEL_CID, -1)
#: A case that may legally be held longer than this (long polls) is not waited for to the end,
#: and once the budget is spent no case is waited for longer than ``timeout_s``: such a case is
#: counted as ``parked``, never as a hang (a hang is a wait past the whole legal allowance).
PARK_CAP_S = 60.0


@dataclass
class Settings:
    """How long and how hard to fuzz, and the bounds that fail a run."""

    seed: int = DEFAULT_SEED
    seconds: float | None = 30.0
    frames: int | None = None
    """Stop after this many frames (as the node cuts them) instead of after ``seconds``."""
    connections: int = 6
    timeout_s: float = 5.0
    health_every: int = 100
    rss_bound: int = 300 * MIB
    fds_bound: int = 100
    progress_s: float | None = None
    """Print a progress line to stderr this often (long runs)."""
    corpus: bool = True
    """Start with the fixed corpus (``frames.KNOWN_FRAMES``); False starts at the generated cases."""


class Fuzzer:
    """Sends cases to one node and judges what comes back (see the module docstring).

    ``restart`` (optional) restarts a node that exited and returns its new PID. ``listener`` is
    the kind of listener ``watch.port`` is (``fuzz.listeners``: its health probe, preparation and
    valid bodies, ``bodies`` built by ``listener.bodies`` unless given)."""

    def __init__(self, watch: NodeWatch, settings: Settings, restart: Callable[[], int | None] | None = None,
                 listener: Listener = CLIENT, bodies: Bodies | None = None) -> None:
        self.watch, self.settings, self.restart, self.listener = watch, settings, restart, listener
        self.advertised = advertised(watch.host, watch.port)
        listener.prepare(watch.host, watch.port)
        pairs = [(k, v) for k, (low, high) in self.advertised.items() for v in range(low, high + 1)]
        self.generator = FrameGenerator(pairs, settings.seed, bodies if bodies is not None else listener.bodies(None))
        self.stats = Stats(settings.seed, pairs_advertised=len(pairs), listener=listener.name)
        self._next = 0 if settings.corpus else len(KNOWN_FRAMES)
        self._stop = False
        self._budget_end: float | None = None  # when no new case starts any more
        self._pinpointing = False
        self._in_flight: dict[int, Case] = {}
        self._recent: deque[Case] = deque(maxlen=4 * settings.connections)
        self._max_rebalance_s = 0.0
        self._last_health = 0

    # -- runs ------------------------------------------------------------------------------

    def run(self) -> Stats:
        """Fuzz until the time or case budget is spent, or the node exits; return the figures."""
        self.listener.health(self.watch.host, self.watch.port)
        limit = self.watch.limit_address_space()
        before, partitions_before = self.watch.usage(), self.listener.partitions(self.watch.host, self.watch.port)
        started = time.monotonic()
        asyncio.run(self._workers(started))
        self.stats.seconds = time.monotonic() - started
        self._final_checks(before, partitions_before, limit)
        if self.stats.node_exits and self.restart is not None:
            self._pinpoint()
        return self.stats

    def replay(self, cases: list[Case]) -> list[str]:
        """Send each case alone, one after the other; the outcome of each."""
        async def each() -> list[str]:
            return [await self._run_case(case) for case in cases]
        return asyncio.run(each())

    async def _workers(self, started: float) -> None:
        deadline = None if self.settings.seconds is None else started + self.settings.seconds
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):  # stop early, still print the figures
            loop.add_signal_handler(signum, self._end_budget)
        progress = asyncio.create_task(self._progress(started))
        workers = [asyncio.create_task(self._worker(deadline)) for _ in range(self.settings.connections)]
        done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
        progress.cancel()
        for task in done:
            if task.exception() is not None:  # a bug of the fuzzer itself: stop, loudly
                self._end_budget()
                await asyncio.wait(workers)
                raise task.exception()  # type: ignore[misc]
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)

    def _end_budget(self) -> None:
        if self._budget_end is None:
            self._budget_end = time.monotonic()

    async def _progress(self, started: float) -> None:
        while self.settings.progress_s:
            await asyncio.sleep(self.settings.progress_s)
            s, usage = self.stats, self.watch.usage()
            print(f"fuzz: {time.monotonic() - started:.0f} s, {s.cases} cases, {s.frames} frames, "
                  f"{s.answers} answers, {s.closes} closes, {s.hangs} hangs, {s.node_exits} node exits, "
                  f"{len(s.failures)} failures, rss {usage.rss // MIB if usage else '?'} MiB, "
                  f"fds {usage.fds if usage else '?'}", file=sys.stderr, flush=True)

    async def _worker(self, deadline: float | None) -> None:
        while not self._stop and self._budget_end is None:
            index = self._next
            if (self.settings.frames is not None and self.stats.frames >= self.settings.frames) or (
                    deadline is not None and time.monotonic() >= deadline):
                self._end_budget()
                return
            self._next += 1
            case = self.generator.case(index)
            self._in_flight[index] = case
            try:
                await self._run_case(case)
            finally:
                del self._in_flight[index]
                self._recent.append(case)
            if self.stats.frames - self._last_health >= self.settings.health_every and not self._stop:
                self._last_health = self.stats.frames
                await self._health(case)

    async def _health(self, case: Case) -> None:
        self.stats.health_checks += 1
        try:
            await asyncio.to_thread(self.listener.health, self.watch.host, self.watch.port)
        except Exception as exc:  # noqa: BLE001 - any failure of the probe is the finding
            self.stats.health_failures += 1
            if self._check_alive(case):
                self._fail("health", case, f"health check after case {case.index} failed: {exc!r}")

    # -- one case --------------------------------------------------------------------------

    async def _run_case(self, case: Case) -> str:
        """Send one case on a new connection; its outcome (``answered``, ``closed``, ``hang`` ...)."""
        stats = self.stats
        plan = expect.plan(case.data, self.advertised)
        stats.cases += 1
        stats.frames += max(len(plan.frames), 1)
        stats.strategies[case.family] += 1
        stats.variants[case.strategy] += 1
        for frame in plan.frames:
            if frame.reaches_decoder:
                stats.body_decoder[f"{frame.api_key}/{frame.api_version}"] += 1
            self._max_rebalance_s = max(self._max_rebalance_s, expect.rebalance_timeout_s(frame))
        groups = sum(1 for f in plan.frames if f.api_key in (ApiKey.JOIN_GROUP, ApiKey.SYNC_GROUP) and f.request)
        allowance = self.settings.timeout_s + plan.park_s + groups * self._max_rebalance_s
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.watch.host, self.watch.port), self.settings.timeout_s)
        except (TimeoutError, OSError) as exc:
            if self._check_alive(case):
                self._fail("connect", case, f"cannot connect: {exc!r}")
            return "no connection"
        try:
            return await self._exchange(case, plan, reader, writer, allowance)
        finally:
            writer.transport.abort()

    async def _exchange(self, case: Case, plan: expect.Plan, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter, allowance: float) -> str:
        stats = self.stats
        writer.write(case.data + (SENTINEL if plan.end == "idle" else b""))
        try:
            await asyncio.wait_for(writer.drain(), self.settings.timeout_s)
        except (TimeoutError, OSError):
            pass  # the node closed first, or reads slowly: what it answers is still read below
        pending = deque(plan.frames)
        codes: list[int] = []
        started = time.monotonic()
        deadline = started + allowance
        while True:
            if plan.end == "partial" and all(f.silent_ok for f in pending):
                stats.partial_closed_by_us += 1
                return "partial frame: closed by the fuzzer"
            try:
                response = await asyncio.wait_for(_read_frame(reader), self._wait_s(started, deadline))
            except (asyncio.IncompleteReadError, OSError):
                stats.closes += 1
                answered = f" after answers with error codes {codes}" if codes else ""
                return f"closed{answered}" if self._check_alive(case) else "closed: node exited"
            except TimeoutError:
                if time.monotonic() < deadline:
                    stats.parked += 1
                    return "parked (a legal long poll, not waited for to its end)"
                what = f"{len(pending)} frame(s) unanswered" if pending else f"the stream ends {plan.end!r}, not closed"
                self._fail("hang", case, f"neither answered nor closed after {allowance:.1f} s: {what}")
                return "hang"
            (cid,) = struct.unpack_from(">i", response)
            if cid == SENTINEL_CID:
                unanswered = [f for f in pending if not f.silent_ok]
                stats.silent += len(pending) - len(unanswered)
                if unanswered:
                    self._violation("unanswered", case, f"no answer to correlation id {unanswered[0].correlation_id}")
                    return "violation: unanswered"
                return f"answered (error codes {codes})"
            while pending and pending[0].silent_ok and pending[0].correlation_id != cid:
                pending.popleft()
                stats.silent += 1
            if not pending or pending[0].correlation_id != cid:
                self._violation("wrong_correlation_id", case, f"answer with correlation id {cid}")
                return "violation: wrong correlation id"
            codes += self._judge_answer(case, pending.popleft(), response)

    def _wait_s(self, started: float, deadline: float) -> float:
        """Seconds to wait for the next answer: up to the case's deadline, but at most
        ``PARK_CAP_S`` after it started and ``timeout_s`` after the budget ended."""
        until = min(deadline, started + PARK_CAP_S)
        if self._budget_end is not None:
            until = min(until, max(self._budget_end, started) + self.settings.timeout_s)
        return max(until - time.monotonic(), 0.001)

    def _judge_answer(self, case: Case, frame: expect.NodeFrame, response: bytes) -> list[int]:
        """Count an answer and the error codes in it (returned)."""
        self.stats.answers += 1
        key_version = expect.response_key_version(frame, self.advertised)
        if key_version is None:
            self._violation("answered_unsupported", case, f"answered {frame.pair} instead of closing")
            return []
        codes = expect.error_codes(*key_version, response)
        if codes is None:
            self.stats.undecodable_answers += 1
            self._violation("undecodable_answer", case, f"answer to {key_version} does not decode: {response.hex()}")
            return []
        self.stats.error_codes.update(codes)
        return codes

    # -- failures --------------------------------------------------------------------------

    def _check_alive(self, case: Case) -> bool:
        if self.watch.alive():
            return True
        if not self._stop:
            self.stats.node_exits += 1
            suspects = {c.index: c for c in [*self._recent, *self._in_flight.values(), case]}
            self._fail("node_exit", case, f"the node process exited (seen during case {case.index}; the culprit is "
                       "among the suspects, replayed one by one when the node can be restarted)",
                       sorted(suspects.values(), key=lambda c: c.index))
            self._stop = True
        return False

    def _fail(self, kind: str, case: Case, detail: str, suspects: list[Case] | None = None) -> None:
        if kind == "hang":
            self.stats.hangs += 1
        failure = {"kind": kind, "listener": self.listener.name, "seed": self.settings.seed, "index": case.index,
                   "strategy": case.strategy, "detail": detail, "hex": case.data.hex()}
        if suspects:
            failure["suspects"] = [{"index": c.index, "strategy": c.strategy, "hex": c.data.hex()} for c in suspects]
        self.stats.failures.append(failure)
        if not self._pinpointing:
            print(describe_failure(failure, self.watch), file=sys.stderr, flush=True)

    def _violation(self, kind: str, case: Case, detail: str) -> None:
        self.stats.violations[kind] += 1
        if self.stats.violations[kind] <= 3:
            print(f"FUZZ VIOLATION {kind} seed={self.settings.seed} index={case.index} strategy={case.strategy}: "
                  f"{detail}\n  frame: {case.data.hex()}", file=sys.stderr, flush=True)

    def _final_checks(self, before: object, partitions_before: int | None, limit: int | None) -> None:
        stats = self.stats
        every_pair = {f"{k}/{v}" for k, (low, high) in self.advertised.items() for v in range(low, high + 1)}
        stats.pairs_missing = sorted(every_pair - set(stats.body_decoder))
        if self.watch.alive() and not self._stop:
            time.sleep(1.0)  # let the node see every close
            after = self.watch.usage()
            partitions = (partitions_before, self.listener.partitions(self.watch.host, self.watch.port))
            stats.resources = resources(before, after, partitions, limit)  # type: ignore[arg-type]
            if before is not None and after is not None:
                for detail in bound_failures(before, after, self.settings.rss_bound, self.settings.fds_bound):  # type: ignore[arg-type]
                    stats.failures.append({"kind": "bound", "seed": self.settings.seed, "detail": detail})
                    print(describe_failure(stats.failures[-1], self.watch), file=sys.stderr, flush=True)
            for detail in self.listener.final_checks(self.watch.host, self.watch.port):
                stats.failures.append({"kind": "final", "seed": self.settings.seed, "detail": detail})
                print(describe_failure(stats.failures[-1], self.watch), file=sys.stderr, flush=True)
        elif not self.watch.alive() and not stats.node_exits and self._recent:
            self._check_alive(self._recent[-1])
        stats.node_log_errors = self.watch.log_errors()

    def _pinpoint(self) -> None:
        """After a node exit: replay each suspect alone on a restarted node; those that stop it
        again are the culprits (added to the failure and printed)."""
        failure = next(f for f in self.stats.failures if f["kind"] == "node_exit")
        saved, culprits = self.stats, []
        self._pinpointing = True
        for suspect in failure.get("suspects", []):
            if not self.watch.alive():
                self.watch.pid = self.restart()  # type: ignore[misc]
                self.watch.limit_address_space()
            self.stats, self._stop = Stats(self.settings.seed), False
            case = Case(suspect["index"], suspect["strategy"], None, bytes.fromhex(suspect["hex"]))
            outcome = self.replay([case])[0]
            time.sleep(0.3)
            if not self.watch.alive():
                culprits.append({**suspect, "outcome": outcome})
                print(f"FUZZ CULPRIT seed={self.settings.seed} index={case.index} strategy={case.strategy}: "
                      f"this frame alone stops the node\n  frame: {suspect['hex']}\n"
                      f"  replay on a fresh node: cd tests && python -m fuzz.runner --listener {self.listener.name} "
                      f"--replay {suspect['hex']}",
                      file=sys.stderr, flush=True)
        self.stats, self._stop, self._pinpointing = saved, True, False
        failure["culprits"] = culprits


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


# --- command line ------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fuzz.runner", description=__doc__.split("\n\n")[0])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=float, help="time budget (default 30 s unless --frames)")
    budget.add_argument("--frames", type=int, help="frames to send (a pipeline case sends several)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--connections", type=int, default=Settings.connections, help="cases in flight at once")
    parser.add_argument("--timeout", type=float, default=Settings.timeout_s, help="seconds for an answer or a close")
    parser.add_argument("--listener", choices=sorted(LISTENERS), default=CLIENT.name,
                        help="which listener: a fresh node's client port, or a controller-only node's (or, with "
                             "--bootstrap, what kind of listener HOST:PORT is)")
    parser.add_argument("--bootstrap", help="host:port of a running node (default: start a fresh one)")
    parser.add_argument("--pid", type=int, help="the node's PID with --bootstrap (default: found by its port)")
    parser.add_argument("--replay", action="append", metavar="HEX", help="send these frames (hex) and stop")
    parser.add_argument("--no-corpus", action="store_true", help="skip the fixed corpus of known frames")
    parser.add_argument("--progress", type=float, default=60.0, help="seconds between progress lines (0: none)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Fuzz or replay against a given node or a fresh one; print the JSON line; 1 on failure."""
    args = _parse(argv)
    settings = Settings(seed=args.seed, connections=args.connections, timeout_s=args.timeout,
                        seconds=None if args.frames else args.seconds or 30.0, frames=args.frames,
                        corpus=not args.no_corpus, progress_s=args.progress or None)
    listener = LISTENERS[args.listener]
    if args.bootstrap:
        host, port = args.bootstrap.rsplit(":", 1)
        watch = NodeWatch(host, int(port), args.pid or pid_listening(int(port)))
        return _go(Fuzzer(watch, settings, listener=listener), args.replay)
    with tempfile.TemporaryDirectory(prefix="pko-fuzz-") as tmp, listener.start(tmp) as cluster:
        def restart() -> int | None:
            cluster.restart(1)
            return cluster.status()[0].pid
        watch = watch_cluster(cluster, listener.port(cluster))
        return _go(Fuzzer(watch, settings, restart, listener, listener.bodies(cluster)), args.replay)


def _go(fuzzer: Fuzzer, replay: list[str] | None) -> int:
    if replay:
        for index, frame in enumerate(replay):
            (outcome,) = fuzzer.replay([Case(index, "replay", None, bytes.fromhex(frame.replace(" ", "")))])
            time.sleep(0.5)  # a node that aborts may still be exiting when its sockets close
            print(f"frame {index}: {outcome}; node {'alive' if fuzzer.watch.alive() else 'EXITED'}", flush=True)
        try:
            fuzzer.listener.health(fuzzer.watch.host, fuzzer.watch.port)
            print("health check: ok")
        except Exception as exc:  # noqa: BLE001 - reported, and the exit status says it
            print(f"health check: FAILED ({exc})")
            fuzzer.stats.health_failures += 1
        fuzzer.stats.node_log_errors = fuzzer.watch.log_errors()
    else:
        fuzzer.run()
    print(fuzzer.stats.as_json(), flush=True)
    failed = fuzzer.stats.failures or fuzzer.stats.health_failures or not fuzzer.watch.alive()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
