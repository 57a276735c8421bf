"""Golden bytes: the first ApiVersions, Metadata and Produce frames real clients sent.

The frames in ``data/`` were captured from confluent-kafka (librdkafka), kafka-python and
aiokafka by ``capture_clients.py`` (see ``data/README.md``), with the versions each client picks
against our broker's advertised ranges. Our codec must parse every frame, the fast path must
parse every Produce frame (zero copy) to the records the client produced, and re-encoding the
decoded request must give the client's bytes exactly: the wire format is fixed, so any
difference is a codec bug (a field read or written wrongly), not a style choice.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster.handlers import load_handlers
from pykafka_ops.protocol import codec, fastpath
from pykafka_ops.records import RecordBatch
from pykafka_ops.records.batch import iter_batches

DATA = Path(__file__).parent / "data"
MANIFEST = json.loads((DATA / "clients.json").read_text())
FRAMES = [
    pytest.param(client, api, meta, id=f"{client}-{api}")
    for client, info in MANIFEST["clients"].items()
    for api, meta in info["frames"].items()
]
TS = 1_700_000_000_000
RECORDS = [(b"key-0", b"value-0", [("h", b"1")], TS), (None, b"value-1", [], TS)]  # capture_clients.RECORDS


def _frame(meta: dict) -> bytearray:
    return bytearray((DATA / meta["file"]).read_bytes())


def test_every_client_and_api_was_captured() -> None:
    assert set(MANIFEST["clients"]) == {"librdkafka", "kafka-python", "aiokafka"}
    for info in MANIFEST["clients"].values():
        assert set(info["frames"]) == {"api_versions", "metadata", "produce"}


@pytest.mark.parametrize(("client", "api", "meta"), FRAMES)
def test_header_parses_as_the_client_wrote_it(client: str, api: str, meta: dict) -> None:
    frame = _frame(meta)
    header = codec.decode_request_header(memoryview(frame))
    assert (header.api_key, header.api_version, header.correlation_id, header.client_id) == (
        meta["api_key"], meta["api_version"], meta["correlation_id"], f"golden-{client}")
    flexible = codec.is_flexible(header.api_key, header.api_version)
    assert header.size == 10 + len(header.client_id) + (1 if flexible else 0)  # header v2 when flexible


@pytest.mark.parametrize(("client", "api", "meta"), FRAMES)
def test_decode_then_encode_gives_the_clients_bytes(client: str, api: str, meta: dict) -> None:
    frame = _frame(meta)
    header = codec.decode_request_header(memoryview(frame))
    request = codec.decode_request(header.api_key, header.api_version, memoryview(frame), header.size)
    again = codec.encode_request(header.api_key, header.api_version, header.correlation_id, header.client_id, request)
    assert again == bytes(frame)


@pytest.mark.parametrize(("client", "api", "meta"), [p for p in FRAMES if p.values[1] == "produce"])
def test_fast_path_parses_the_clients_produce_request(client: str, api: str, meta: dict) -> None:
    frame = _frame(meta)
    header = codec.decode_request_header(memoryview(frame))
    low, high = fastpath.PRODUCE_VERSIONS
    assert low <= header.api_version <= high
    parsed = fastpath.parse_produce_request(memoryview(frame), header.size, header.api_version)
    kio = codec.decode_request(0, header.api_version, memoryview(frame), header.size)
    assert parsed.transactional_id == kio.transactional_id
    assert parsed.acks == kio.acks
    assert parsed.timeout_ms == kio.timeout.total_seconds() * 1000
    [topic] = parsed.topics
    [partition] = topic.partitions
    assert (topic.name, partition.index) == ("golden", 0)
    records = partition.records
    assert records.obj is frame  # a view into the frame
    assert bytes(records) == kio.topic_data[0].partition_data[0].records
    got = [(r.key, r.value, [(h.key, h.value) for h in r.headers], r.timestamp)
           for pos, _h in iter_batches(records) for r in RecordBatch(records, pos).records()]
    assert got == RECORDS
    for pos, _h in iter_batches(records):
        RecordBatch(records, pos).validate_crc()


@pytest.mark.parametrize(("client", "api", "meta"), [p for p in FRAMES if p.values[1] == "api_versions"])
def test_api_versions_request(client: str, api: str, meta: dict) -> None:
    frame = _frame(meta)
    header = codec.decode_request_header(memoryview(frame))
    request = codec.decode_request(18, header.api_version, memoryview(frame), header.size)
    if header.api_version >= 3:  # KIP-511: the client names itself
        assert request.client_software_name and request.client_software_version
    # A client opens with its own highest version, which may exceed ours (the broker then
    # answers UNSUPPORTED_VERSION with its ranges, in v0); every other frame is in our range.
    ours = load_handlers()[18]
    assert header.api_version >= ours.min_version


@pytest.mark.parametrize(("client", "api", "meta"), [p for p in FRAMES if p.values[1] != "api_versions"])
def test_clients_use_versions_we_register(client: str, api: str, meta: dict) -> None:
    handler = load_handlers()[meta["api_key"]]
    assert handler.min_version <= meta["api_version"] <= handler.max_version
