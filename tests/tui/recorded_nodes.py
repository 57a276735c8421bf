"""The recorded polls of ``recorded.py`` as a four-node KRaft cluster would answer them, for the
brokers' states and the quorum leader: nodes 1-3 combined (broker + controller), the quorum led
by node 2; node 4 a broker only. Node 3 was stopped (SIGSTOP) past ``broker.session.timeout.ms``:
its process is there, DescribeCluster v2 lists it fenced, and its partitions (one replica each)
are offline. Node 4 was killed: its process is gone (DescribeCluster v2 lists it fenced too).

Derived, not recorded: until a multi-node cluster can be recorded (the three-node launcher and
DescribeCluster v2 on our broker are landing with issue 14), each recorded snapshot keeps its
offsets, groups and node 1's process samples, and gets four nodes' brokers, partition leaders,
processes, fenced brokers and quorum. Metadata's controller id stays 1: on KRaft it is a live
broker Kafka picks for clients, not the active controller.
"""

from __future__ import annotations

import dataclasses

from recorded import SNAPSHOTS

from pykafka_ops.models.monitor import ClusterSnapshot, MetadataQuorum
from pykafka_ops.models.topics import BrokerInfo, TopicDescription

#: The fenced node (stopped) and the killed one.
STOPPED, KILLED = 3, 4
QUORUM = MetadataQuorum(leader_id=2, leader_epoch=5, voters=(1, 2, 3), observers=(4,))


def _spread(topic: TopicDescription) -> TopicDescription:
    """Partition p led by node p % 3 + 1, its only replica; the stopped node's partitions offline."""
    partitions = []
    for p in topic.partitions:
        leader = p.partition % 3 + 1
        partitions.append(dataclasses.replace(p, leader=None if leader == STOPPED else leader, replicas=(leader,),
                                              isr=() if leader == STOPPED else (leader,)))
    return dataclasses.replace(topic, partitions=tuple(partitions))


def four_nodes(snapshot: ClusterSnapshot) -> ClusterSnapshot:
    """``snapshot`` as the four-node cluster of the module docstring answers it."""
    (first,) = snapshot.nodes
    cpu = first.cpu_percent
    nodes = tuple(dataclasses.replace(first, node_id=i, port=first.port + i - 1, pid=first.pid + i - 1,
                                      roles=("broker",) if i == KILLED else first.roles, running=i != KILLED,
                                      cpu_percent=None if i == KILLED or cpu is None else 0.0 if i == STOPPED else cpu,
                                      rss_bytes=None if i == KILLED else first.rss_bytes)
                  for i in range(1, 5))
    brokers = tuple(BrokerInfo(n.node_id, n.host, n.port) for n in nodes)
    return dataclasses.replace(snapshot, brokers=brokers[:2], topics=tuple(map(_spread, snapshot.topics)),
                               nodes=nodes, fenced_brokers=brokers[2:], quorum=QUORUM)


SNAPSHOTS_FOUR_NODES = [four_nodes(s) for s in SNAPSHOTS]
