"""`pko produce` → `pko consume` round trips, against our cluster and Tansu: plain lines, keys
with the separator inside the value, headers, JSON lines with binary values, null keys and
tombstones, and the output layouts (kcat -f, console consumer print.*, kcat -J)."""

from __future__ import annotations

import base64
import json

from records_cli import Broker, consume_json, pko, topic


def test_plain_lines_round_trip(broker: Broker) -> None:
    name = topic(broker.bootstrap, "plain")
    lines = ["first", "", "third line with spaces", "ünïcode ✓"]
    produced = pko(broker.bootstrap, "produce", name, input="\n".join(lines) + "\n")
    assert (produced.exit_code, produced.stdout, produced.stderr) == (0, "", "")
    consumed = pko(broker.bootstrap, "consume", name, "-o", "beginning", "-e")
    assert consumed.stdout.splitlines() == lines
    assert consumed.stderr.splitlines()[-2:] == [f"% Reached end of topic {name} [0] at offset 4: exiting",
                                                 "Processed a total of 4 messages"]


def test_key_separator_splits_at_the_first_occurrence(broker: Broker) -> None:
    name = topic(broker.bootstrap, "keys")
    pko(broker.bootstrap, "produce", name, "-K", ":", input="k1:v:with:colons\nk2:plain\n:no key\n")
    consumed = pko(broker.bootstrap, "consume", name, "-o", "beginning", "-e", "-q", "-f", "%k|%s\\n").stdout
    assert consumed.splitlines() == ["k1|v:with:colons", "k2|plain", "|no key"]
    missing = pko(broker.bootstrap, "produce", name, "-K", ":", input="fine:1\nbroken\n")
    assert (missing.exit_code, missing.stderr) == (
        1, "pko: No key separator found on line number 2: 'broken' (1 sent, 1 delivered)\n")


def test_headers_from_lines_and_fixed_headers(broker: Broker) -> None:
    name = topic(broker.bootstrap, "headers")
    produced = pko(broker.bootstrap, "produce", name, "--parse-headers", "--parse-key", "-H", "source=cli",
                   "-H", "flag", input="h1:a,h2:b\tk\tv\n")
    assert produced.exit_code == 0, produced.stderr
    (record,) = consume_json(broker.bootstrap, name)
    assert (record["key"], record["payload"]) == ("k", "v")
    assert record["headers"] == {"h1": "a", "h2": "b", "source": "cli", "flag": None}
    kcat = pko(broker.bootstrap, "consume", name, "-o", "beginning", "-e", "-q", "-f", "%h\\n").stdout
    assert kcat == "h1=a,h2=b,source=cli,flag=NULL\n"


def test_json_lines_round_trip_binary_safe(broker: Broker) -> None:
    source, copy = topic(broker.bootstrap, "jsrc"), topic(broker.bootstrap, "jcopy")
    binary = bytes(range(256))
    records = [
        {"key": "k1", "value": "text", "headers": {"h": "1", "dup": ["a", "b"]}, "ts": 1_700_000_000_000},
        {"key": {"base64": base64.b64encode(b"\xff\xfe").decode()},
         "payload": {"base64": base64.b64encode(binary).decode()}},
        {"key": None, "value": {"nested": [1, 2]}},
    ]
    produced = pko(broker.bootstrap, "produce", source, "--format", "json",
                   input="\n".join(json.dumps(r) for r in records) + "\n")
    assert produced.exit_code == 0, produced.stderr
    first = consume_json(broker.bootstrap, source)
    assert [(r["key"], r["payload"]) for r in first] == [
        ("k1", "text"), ({"base64": "//4="}, {"base64": base64.b64encode(binary).decode()}),
        (None, '{"nested":[1,2]}')]
    assert first[0]["headers"] == {"h": "1", "dup": ["a", "b"]} and first[0]["ts"] == 1_700_000_000_000
    assert first[0]["tstype"] == "create" and first[0]["topic"] == source and first[0]["offset"] == 0
    # consume --format json is produce --format json's input: a second hop changes nothing but topic/offsets
    again = pko(broker.bootstrap, "produce", copy, "--format", "json", input="\n".join(map(json.dumps, first)) + "\n")
    assert again.exit_code == 0, again.stderr
    second = consume_json(broker.bootstrap, copy)
    strip = ("topic", "broker")
    assert [{k: v for k, v in r.items() if k not in strip} for r in second] == \
           [{k: v for k, v in r.items() if k not in strip} for r in first]


def test_null_keys_and_tombstones(broker: Broker) -> None:
    name = topic(broker.bootstrap, "tomb")
    pko(broker.bootstrap, "produce", name, "-K", ":", "-Z", input="k1:v1\nk1:\n:v3\n")
    pko(broker.bootstrap, "produce", name, "-K", ":", "--null-marker", "NULL", input="NULL:NULL\n")
    consumed = pko(broker.bootstrap, "consume", name, "-o", "beginning", "-e", "-q", "-f", "%K %S %k|%s\\n").stdout
    assert consumed.splitlines() == ["2 2 k1|v1", "2 -1 k1|", "-1 2 |v3", "-1 -1 |"]
    console = pko(broker.bootstrap, "consume", name, "-o", "beginning", "-e", "-q", "--print-key").stdout
    assert console.splitlines() == ["k1\tv1", "k1\tnull", "null\tv3", "null\tnull"]


def test_console_consumer_layout(pko_group_cluster: Broker) -> None:
    bootstrap = pko_group_cluster.bootstrap
    name = topic(bootstrap, "layout")
    pko(bootstrap, "produce", name, "--format", "json",
        input='{"key":"k","value":"v","headers":{"a":"1"},"ts":1700000000000}\n')
    out = pko(bootstrap, "consume", name, "-o", "beginning", "-e", "-q", "--print-timestamp", "--print-partition",
              "--print-offset", "--print-headers", "--print-key").stdout
    assert out == "CreateTime:1700000000000\tPartition:0\tOffset:0\ta:1\tk\tv\n"
    readable = pko(bootstrap, "consume", name, "-o", "beginning", "-e", "-q", "-f", "%t/%p/%o %T %F\\n").stdout
    assert readable == f"{name}/0/0 1700000000000 2023-11-14T22:13:20.000Z\n"
    bad = pko(bootstrap, "consume", name, "-f", "%x")
    assert (bad.exit_code, bad.stderr) == (2, "pko: Unsupported formatter: %x\n")
