"""Leader election for one partition, as Kafka's ``PartitionChangeBuilder`` (KRaft, before the
eligible leader replicas of KIP-966): what leader and ISR a partition gets when a broker is
fenced or unfenced, or when unclean leader election is turned on for its topic.

The rule:

* a broker being fenced leaves the ISR, unless it is its last member: the ISR then stays
  [last member], so that this broker can lead again once it is unfenced (Kafka keeps the last ISR
  member for the same reason; it may hold records no other replica has);
* a leader that is still in the ISR and unfenced stays leader;
* otherwise the new leader is the first replica, in replica order (so the preferred replica
  first), that is in the ISR and unfenced (Kafka's "online" election);
* if there is none and ``unclean.leader.election.enable`` is true for the topic, the first
  unfenced replica (in replica order) leads, with ISR = [it] (Kafka's "unclean" election: records
  only the old ISR had are lost);
* else the partition has no leader (-1) and is offline until an ISR member is unfenced.

Leader recovery state: Kafka marks an unclean leader RECOVERING (KIP-704); the new leader then
recovers its transaction state and sends AlterPartition with RECOVERED. pko's brokers have no such
recovery step (the follower side truncates by leader epoch, KIP-101/279, as after any election),
and the metadata image does not hold the state: an unclean leader is written RECOVERED at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from cluster.controller.metadata_image import PartitionImage, TopicImage

NO_LEADER = -1
UNCLEAN_LEADER_ELECTION = "unclean.leader.election.enable"


def unclean_election_enabled(topic: TopicImage, broker_defaults: Mapping[str, Any],
                             config: Mapping[str, Any] | None = None) -> bool:
    """The topic's effective ``unclean.leader.election.enable``: its override, else the broker
    default (Kafka's ``ConfigurationControlManager.uncleanLeaderElectionEnabledForTopic``).
    ``config`` replaces the topic's overrides (a config change not committed yet)."""
    overrides = topic.config if config is None else config
    value = overrides.get(UNCLEAN_LEADER_ELECTION, broker_defaults.get(UNCLEAN_LEADER_ELECTION, False))
    return value is True or str(value).lower() == "true"


def elect(partition: PartitionImage, alive: AbstractSet[int], unclean: bool,
          leaving_isr: int | None = None) -> tuple[int, tuple[int, ...]]:
    """(leader, ISR) of ``partition`` with the unfenced brokers ``alive``, after ``leaving_isr``
    (a broker being fenced) leaves the ISR; see the module docstring for the rule."""
    isr = partition.isr
    if leaving_isr is not None and leaving_isr in isr:
        isr = tuple(r for r in isr if r != leaving_isr) or isr
    if partition.leader != NO_LEADER and partition.leader in isr and partition.leader in alive:
        return partition.leader, isr
    online = next((r for r in partition.replicas if r in isr and r in alive), None)
    if online is not None:
        return online, isr
    if unclean:
        last_resort = next((r for r in partition.replicas if r in alive), None)
        if last_resort is not None:
            return last_resort, (last_resort,)
    return NO_LEADER, isr


def change_record(topic: TopicImage, partition: PartitionImage, leader: int,
                  isr: tuple[int, ...]) -> dict[str, Any] | None:
    """The ``PartitionChangeRecord`` that moves ``partition`` to (leader, ISR), or None when
    neither changes."""
    if (leader, isr) == (partition.leader, partition.isr):
        return None
    return {"type": "PartitionChangeRecord", "topic_id": str(topic.topic_id), "partition": partition.partition,
            "leader": leader, "isr": list(isr)}
