"""kafka-reassign-partitions' arithmetic without a cluster: its JSON files and messages, Kafka's
placement (test vectors of Kafka's ``AdminRackAwareTest`` / ``AdminUtilsTest``), pko's
replication-factor change, the throttle configs and the --verify states."""

from __future__ import annotations

import random

import pytest

from pykafka_ops import replica_placement
from pykafka_ops.models.reassign import (
    BrokerInfo,
    LogDirMoveStatus,
    OngoingReassignment,
    PartitionTarget,
    VerifyReport,
)
from pykafka_ops.services import reassign_plan as plan
from pykafka_ops.services.reassign_text import list_lines, verify_lines


class FixedStart(random.Random):
    """Kafka's ``fixedStartIndex``: every random draw is the same index."""

    def __init__(self, index: int) -> None:
        super().__init__(0)
        self.index = index

    def randrange(self, *_args: object, **_kwargs: object) -> int:  # type: ignore[override]
        return self.index


def _brokers(racks: dict[int, str | None]) -> list[BrokerInfo]:
    return [BrokerInfo(b, "h", 9092 + b, r) for b, r in sorted(racks.items())]


def test_a_reassignment_file_is_read_as_kafka_reads_it() -> None:
    text = ('{"version":1,"partitions":[{"topic":"t","partition":1,"replicas":[2,3],"log_dirs":["any","/d2"]},'
            '{"topic":"t","partition":0,"replicas":[1]}]}')
    assert plan.parse_reassignment_json(text) == (PartitionTarget("t", 1, (2, 3), ("any", "/d2")),
                                                  PartitionTarget("t", 0, (1,), ("any",)))
    assert plan.parse_reassignment_json(text)[0].log_dir_moves == {3: "/d2"}
    assert plan.parse_reassignment_json('{"partitions":[]}') == ()


@pytest.mark.parametrize(("text", "message"), [
    ('{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}',
     "Size of replicas list [1, 2] is different from size of log dirs list [any] for partition t-0"),
    ('{"version":2,"partitions":[]}', "Not supported version field value 2"),
    ("{not json", "The input string is not a valid JSON: "),
    ('{"partitions":[{"topic":"t","partition":"0","replicas":[1]}]}', 'Each partition needs "topic" (a string)'),
])
def test_a_bad_reassignment_file_gets_kafkas_message(text: str, message: str) -> None:
    with pytest.raises(plan.ReassignmentDataError) as caught:
        plan.parse_reassignment_json(text)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(("targets", "message"), [
    ((), "Partition reassignment list cannot be empty"),
    ((PartitionTarget("t", 0, (), ()),), "Partition replica list cannot be empty"),
    ((PartitionTarget("t", 0, (1,), ("any",)), PartitionTarget("t", 0, (2,), ("any",))),
     "Partition reassignment contains duplicate topic partitions: t-0"),
    ((PartitionTarget("t", 0, (1, 1, 2), ("any",) * 3),),
     "Partition replica lists may not contain duplicate entries: t-0 contains multiple entries for 1"),
])
def test_execute_refuses_what_kafka_refuses(targets: tuple[PartitionTarget, ...], message: str) -> None:
    with pytest.raises(plan.ReassignmentDataError, match=f"^{message}$"):
        plan.check_execute_plan(targets)


def test_topics_and_broker_lists_refuse_duplicates() -> None:
    assert plan.parse_topics_json('{"topics":[{"topic":"a"},{"topic":"b"}],"version":1}') == ["a", "b"]
    with pytest.raises(plan.ReassignmentDataError, match=r"^List of topics to reassign contains duplicate entries: \[a\]$"):
        plan.parse_topics_json('{"topics":[{"topic":"a"},{"topic":"a"}]}')
    assert plan.parse_broker_list("1,2,3") == [1, 2, 3]
    with pytest.raises(plan.ReassignmentDataError, match=r"^Broker list contains duplicate entries: \[2\]$"):
        plan.parse_broker_list("1,2,2")
    with pytest.raises(plan.ReassignmentDataError, match="Invalid broker list 'a,b'"):
        plan.parse_broker_list("a,b")


def test_the_json_is_kafkas_byte_for_byte() -> None:
    targets = plan.targets_from({("t", 1): [2, 3], ("a", 0): [1]})
    assert plan.reassignment_json(targets) == (
        '{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1],"log_dirs":["any"]},'
        '{"topic":"t","partition":1,"replicas":[2,3],"log_dirs":["any","any"]}]}')


def test_rack_unaware_placement_is_kafkas() -> None:
    brokers = _brokers(dict.fromkeys(range(5)))
    assert plan.assign_replicas(brokers, 10, 3, FixedStart(0)) == {
        0: [0, 1, 2], 1: [1, 2, 3], 2: [2, 3, 4], 3: [3, 4, 0], 4: [4, 0, 1],
        5: [0, 2, 3], 6: [1, 3, 4], 7: [2, 4, 0], 8: [3, 0, 1], 9: [4, 1, 2]}


def test_rack_aware_placement_is_kafkas() -> None:
    racks = {0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"}
    assert replica_placement._rack_alternated(racks) == [0, 3, 1, 5, 4, 2]
    assert plan.assign_replicas(_brokers(racks), 7, 3, FixedStart(0)) == {
        0: [0, 3, 1], 1: [3, 1, 5], 2: [1, 5, 4], 3: [5, 4, 2], 4: [4, 2, 0], 5: [2, 0, 3], 6: [0, 4, 2]}


def test_every_replica_lands_in_its_own_rack_whatever_the_start() -> None:
    racks = {0: "r1", 1: "r2", 2: "r2", 3: "r3", 4: "r3", 5: "r1"}
    for seed in range(20):
        placed = plan.assign_replicas(_brokers(racks), 12, 3, random.Random(seed))
        assert all(len({racks[b] for b in replicas}) == 3 for replicas in placed.values())


def test_broker_list_keeps_known_brokers_and_checks_racks() -> None:
    cluster = _brokers({1: "a", 2: "b", 3: None})
    assert [b.broker_id for b in plan.usable_brokers(cluster, [1, 2, 9], True)] == [1, 2]
    with pytest.raises(plan.ReassignmentDataError, match="^Not all brokers have rack information"):
        plan.usable_brokers(cluster, [1, 2, 3], True)
    assert all(b.rack is None for b in plan.usable_brokers(cluster, [1, 2, 3], False))
    with pytest.raises(plan.ReassignmentDataError, match=r"^Replication factor: 3 larger than available brokers: 2\.$"):
        plan.propose_assignment({("t", 0): [1, 2, 3]}, plan.usable_brokers(cluster, [1, 2], False))


def test_generate_places_each_topic_with_its_partition_count_and_first_replication_factor() -> None:
    current = {("t", 0): [1, 2], ("t", 1): [2, 3], ("t", 2): [3, 1], ("u", 0): [1]}
    proposed = plan.propose_assignment(current, _brokers({4: None, 5: None, 6: None}), FixedStart(0))
    assert proposed == {("t", 0): [4, 5], ("t", 1): [5, 6], ("t", 2): [6, 4], ("u", 0): [4]}


def test_raising_the_replication_factor_keeps_the_leader_and_adds_the_least_loaded() -> None:
    current = {("__consumer_offsets", p): [1 + p % 3] for p in range(3)}
    load = {1: 5, 2: 1, 3: 3}
    assert plan.change_replication_factor(current, [1, 2, 3], 3, load) == {
        ("__consumer_offsets", 0): [1, 2, 3], ("__consumer_offsets", 1): [2, 3, 1], ("__consumer_offsets", 2): [3, 2, 1]}
    assert plan.change_replication_factor(current, [1, 2, 3], 2, load) == {
        ("__consumer_offsets", 0): [1, 2], ("__consumer_offsets", 1): [2, 3], ("__consumer_offsets", 2): [3, 2]}
    assert plan.change_replication_factor({("t", 0): [1, 2, 3]}, [1, 2, 3], 1, {}) == {("t", 0): [1]}
    with pytest.raises(plan.ReassignmentDataError, match=r"^Replication factor: 4 larger than available brokers: 3\.$"):
        plan.change_replication_factor(current, [1, 2, 3], 4, load)


def test_throttles_name_the_sending_and_the_receiving_replicas() -> None:
    ongoing = [OngoingReassignment("o", 0, (1, 2, 3), (3,), (1,))]
    proposed = {("t", 0): [2, 3], ("t", 10): [1, 4], ("t", 2): [1, 2]}
    current = {("t", 0): [1, 2], ("t", 10): [1, 2], ("t", 2): [1, 2]}
    throttles = plan.throttle_plan(plan.move_map(ongoing, proposed, current))
    assert throttles.leader_replicas == {"o": "0:1,0:2", "t": "0:1,0:2,10:1,10:2,2:1,2:2"}
    assert throttles.follower_replicas == {"o": "0:3", "t": "0:3,10:4"}
    assert throttles.brokers == (1, 2, 3, 4)


def test_a_partition_already_moving_keeps_its_sources() -> None:
    ongoing = [OngoingReassignment("t", 0, (1, 2, 3), (3,), (1,))]
    moves = plan.move_map(ongoing, {("t", 0): [3, 4]}, {("t", 0): [1, 2, 3]})
    assert moves[("t", 0)].sources == {1, 2} and moves[("t", 0)].destinations == {3, 4}


def test_verify_states_and_kafkas_words() -> None:
    targets = [PartitionTarget("t", 2, (2, 3), ("any", "any")), PartitionTarget("t", 0, (2, 3), ("any", "/b")),
               PartitionTarget("t", 1, (2, 3), ("any", "any")), PartitionTarget("gone", 0, (1,), ("any",))]
    ongoing = {("t", 1): OngoingReassignment("t", 1, (1, 2, 3), (3,), (1,))}
    states = plan.partition_states(targets, ongoing, {("t", 0): (2, 3), ("t", 1): (1, 2), ("t", 2): (1, 2)})
    moves = plan.log_dir_states(targets, {("t", 0, 3): ("/a", "/b")})
    report = VerifyReport(states, moves, True, True, None)
    assert verify_lines(report) == [
        "Status of partition reassignment:",
        "There is no active reassignment of partition gone-0, but replica set is  rather than 1.",
        "Reassignment of partition t-0 is completed.",
        "Reassignment of partition t-1 is still in progress.",
        "There is no active reassignment of partition t-2, but replica set is 1,2 rather than 2,3.",
        "Reassignment of replica t-0-3 is still in progress."]
    assert not moves[0].done


@pytest.mark.parametrize(("dirs", "state", "line"), [
    (("/b", None), "completed", "Reassignment of replica t-0-3 completed successfully."),
    (("/a", None), "cancelled", "Partition t-0 on broker 3 is not being moved from log dir /a to /b."),
    (("/a", "/c"), "active", "Partition t-0 on broker 3 is being moved to log dir /c instead of /b."),
    ((None, "/b"), "missing_log_dir", ("Partition t-0 is not found in any live log dir on broker 3. "
                                       "There is likely an offline log directory on the broker.")),
    (None, "missing_replica", "Partition t-0 cannot be found in any live log directory on broker 3."),
])
def test_log_dir_move_states(dirs: tuple[str | None, str | None] | None, state: str, line: str) -> None:
    found = {} if dirs is None else {("t", 0, 3): dirs}
    (move,) = plan.log_dir_states([PartitionTarget("t", 0, (3,), ("/b",))], found)
    assert isinstance(move, LogDirMoveStatus) and move.state == state
    assert verify_lines(VerifyReport((), (move,), False, False, None))[1:] == [line]


def test_list_lines_are_kafkas() -> None:
    assert list_lines([]) == ["No partition reassignments found."]
    assert list_lines([OngoingReassignment("t", 0, (1, 2, 3), (3,), (1,)), OngoingReassignment("t", 1, (1, 2), (), ())]) == [
        "Current partition reassignments:", "t-0: replicas: 1,2,3. adding: 3. removing: 1.", "t-1: replicas: 1,2."]


def test_throttles_are_cleared_on_every_broker_and_the_plans_topics() -> None:
    targets = [PartitionTarget("b", 0, (1, 4), ("any", "any")), PartitionTarget("a", 0, (2,), ("any",))]
    assert plan.throttle_targets(targets, [3, 1, 2]) == ([1, 2, 3, 4], ["a", "b"])
