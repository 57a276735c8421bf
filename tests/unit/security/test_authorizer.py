"""StandardAuthorizer decisions (Kafka's ``StandardAuthorizerData`` rules), ACL filters
(``AclBindingFilter.matches``), CreateAcls validation, the ACL records in the metadata image and
snapshots, and the config that builds the authorizer."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from cluster.controller.acl_image import acl_record, remove_acl_record
from cluster.controller.metadata_image import MetadataImage, MetadataReplayError, image_records
from cluster.controller.metadata_snapshot import decode_snapshot, encode_snapshot
from cluster.security.acls import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
    validate_new_acl,
)
from cluster.security.authorizer import StandardAuthorizer, authorizer_from_config, parse_super_users
from pykafka_ops.config.cluster import ClusterConfig, ConfigError, parse

ALICE, BOB, ANON = "User:alice", "User:bob", "User:ANONYMOUS"
OP, RT, PT = AclOperation, ResourceType, PatternType
ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY
_ids = itertools.count()


def acl(name: str, op: AclOperation = OP.READ, permission: AclPermissionType = ALLOW, principal: str = ALICE,
        rtype: ResourceType = RT.TOPIC, pattern: PatternType = PT.LITERAL, host: str = "*") -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, host, op, permission)


def acls(*bindings: AclBinding) -> dict[str, AclBinding]:
    return {f"id-{next(_ids)}": b for b in bindings}


def allowed(bindings: dict[str, AclBinding], op: AclOperation, name: str = "orders", principal: str = ALICE,
            rtype: ResourceType = RT.TOPIC, host: str = "10.0.0.1", authorizer: StandardAuthorizer | None = None
            ) -> bool:
    return (authorizer or StandardAuthorizer()).authorize(bindings, principal, host, op, rtype, name)


# -- the match rules ---------------------------------------------------------------------------

def test_no_acl_denies_by_default_and_allows_with_allow_everyone() -> None:
    assert not allowed({}, OP.READ)
    assert allowed({}, OP.READ, authorizer=StandardAuthorizer(allow_everyone_if_no_acl_found=True))


def test_allow_everyone_applies_only_to_resources_without_any_acl() -> None:
    everyone = StandardAuthorizer(allow_everyone_if_no_acl_found=True)
    bobs = acls(acl("orders", principal=BOB))
    assert not allowed(bobs, OP.READ, authorizer=everyone)  # the topic has an ACL (of another principal)
    assert allowed(bobs, OP.READ, name="payments", authorizer=everyone)


def test_literal_acl_matches_its_name_only() -> None:
    granted = acls(acl("orders"))
    assert allowed(granted, OP.READ)
    assert not allowed(granted, OP.READ, name="orders2")
    assert not allowed(granted, OP.READ, name="order")


def test_wildcard_resource_matches_every_name_of_its_type() -> None:
    granted = acls(acl("*"))
    assert allowed(granted, OP.READ, name="anything")
    assert not allowed(granted, OP.READ, name="anything", rtype=RT.GROUP)


def test_prefixed_acl_matches_names_starting_with_it() -> None:
    granted = acls(acl("ord", pattern=PT.PREFIXED))
    assert allowed(granted, OP.READ, name="orders")
    assert allowed(granted, OP.READ, name="ord")
    assert not allowed(granted, OP.READ, name="or")
    assert not allowed(granted, OP.READ, name="payments")


def test_prefixed_star_is_a_prefix_not_a_wildcard() -> None:
    granted = acls(acl("*", pattern=PT.PREFIXED))
    assert allowed(granted, OP.READ, name="*x")
    assert not allowed(granted, OP.READ, name="orders")


def test_deny_wins_over_allow_from_any_pattern() -> None:
    for deny in (acl("orders", permission=DENY), acl("*", permission=DENY),
                 acl("or", permission=DENY, pattern=PT.PREFIXED), acl("orders", OP.ALL, DENY),
                 acl("orders", permission=DENY, principal="User:*")):
        assert not allowed(acls(acl("orders", OP.ALL), acl("*"), deny), OP.READ), deny


def test_deny_of_another_operation_does_not_block() -> None:
    assert allowed(acls(acl("orders"), acl("orders", OP.WRITE, DENY)), OP.READ)


def test_deny_does_not_imply_operations() -> None:
    # a DENY READ does not deny DESCRIBE (Kafka: implications apply to ALLOW only)
    assert allowed(acls(acl("orders", OP.DESCRIBE), acl("orders", OP.READ, DENY)), OP.DESCRIBE)


def test_principal_must_match_or_be_the_user_wildcard() -> None:
    assert not allowed(acls(acl("orders", principal=BOB)), OP.READ)
    assert allowed(acls(acl("orders", principal="User:*")), OP.READ)
    assert allowed(acls(acl("orders", principal="User:*")), OP.READ, principal=ANON)


def test_host_must_match_or_be_the_wildcard() -> None:
    assert allowed(acls(acl("orders", host="10.0.0.1")), OP.READ)
    assert not allowed(acls(acl("orders", host="10.0.0.2")), OP.READ)
    assert not allowed(acls(acl("orders"), acl("orders", permission=DENY, host="10.0.0.1")), OP.READ)
    assert allowed(acls(acl("orders"), acl("orders", permission=DENY, host="10.0.0.2")), OP.READ)


def test_operation_all_allows_every_operation() -> None:
    granted = acls(acl("orders", OP.ALL))
    assert all(allowed(granted, op) for op in (OP.READ, OP.WRITE, OP.CREATE, OP.DELETE, OP.ALTER, OP.DESCRIBE,
                                              OP.DESCRIBE_CONFIGS, OP.ALTER_CONFIGS))


@pytest.mark.parametrize("implying", [OP.READ, OP.WRITE, OP.DELETE, OP.ALTER])
def test_describe_is_implied(implying: AclOperation) -> None:
    assert allowed(acls(acl("orders", implying)), OP.DESCRIBE)


@pytest.mark.parametrize("other", [OP.CREATE, OP.DESCRIBE_CONFIGS, OP.ALTER_CONFIGS, OP.CLUSTER_ACTION])
def test_describe_is_not_implied_by_others(other: AclOperation) -> None:
    assert not allowed(acls(acl("orders", other)), OP.DESCRIBE)


def test_describe_configs_is_implied_by_alter_configs_only() -> None:
    assert allowed(acls(acl("orders", OP.ALTER_CONFIGS)), OP.DESCRIBE_CONFIGS)
    assert not allowed(acls(acl("orders", OP.ALTER)), OP.DESCRIBE_CONFIGS)
    assert not allowed(acls(acl("orders", OP.DESCRIBE)), OP.READ)  # implications go one way


def test_resource_types_are_separate() -> None:
    granted = acls(acl("orders", rtype=RT.GROUP))
    assert allowed(granted, OP.READ, rtype=RT.GROUP)
    assert not allowed(granted, OP.READ, rtype=RT.TOPIC)


def test_super_users_bypass_denies() -> None:
    authorizer = StandardAuthorizer(super_users=[ALICE])
    denied = acls(acl("*", OP.ALL, DENY, principal="User:*"))
    assert allowed(denied, OP.WRITE, authorizer=authorizer)
    assert not allowed(denied, OP.WRITE, principal=BOB, authorizer=authorizer)
    assert allowed({}, OP.CLUSTER_ACTION, rtype=RT.CLUSTER, name="kafka-cluster", authorizer=authorizer)


def test_the_index_follows_a_new_acl_mapping() -> None:
    authorizer = StandardAuthorizer()
    assert not allowed(acls(), OP.READ, authorizer=authorizer)
    assert allowed(acls(acl("orders")), OP.READ, authorizer=authorizer)


# -- authorizeByResourceType (KIP-679) ---------------------------------------------------------

def by_type(bindings: dict[str, AclBinding], authorizer: StandardAuthorizer | None = None) -> bool:
    return (authorizer or StandardAuthorizer()).authorize_by_resource_type(bindings, ALICE, "10.0.0.1", OP.WRITE,
                                                                           RT.TOPIC)


def test_write_on_any_topic() -> None:
    assert not by_type({})
    assert by_type(acls(acl("orders", OP.WRITE)))
    assert by_type(acls(acl("ord", OP.WRITE, pattern=PT.PREFIXED)))
    assert not by_type(acls(acl("orders", OP.READ)))
    assert not by_type(acls(acl("orders", OP.WRITE), acl("orders", OP.WRITE, DENY)))
    assert not by_type(acls(acl("orders", OP.WRITE), acl("o", OP.WRITE, DENY, pattern=PT.PREFIXED)))
    assert not by_type(acls(acl("orders", OP.WRITE), acl("*", OP.ALL, DENY)))
    assert by_type(acls(acl("orders", OP.WRITE), acl("payments", OP.WRITE, DENY)))
    assert by_type({}, StandardAuthorizer(super_users=[ALICE]))


# -- filters (DescribeAcls, DeleteAcls) --------------------------------------------------------

def test_filter_any_matches_everything() -> None:
    assert AclBindingFilter().matches(acl("orders"))


def test_filter_literal_name_is_exact() -> None:
    f = AclBindingFilter(RT.TOPIC, "orders", PT.LITERAL)
    assert f.matches(acl("orders"))
    assert not f.matches(acl("orders", pattern=PT.PREFIXED))
    assert not f.matches(acl("*"))


def test_filter_match_selects_the_patterns_that_apply() -> None:
    f = AclBindingFilter(RT.TOPIC, "orders", PT.MATCH)
    assert f.matches(acl("orders"))
    assert f.matches(acl("*"))
    assert f.matches(acl("ord", pattern=PT.PREFIXED))
    assert not f.matches(acl("orders2"))
    assert not f.matches(acl("x", pattern=PT.PREFIXED))


def test_filter_any_pattern_with_a_name_matches_equal_names() -> None:
    f = AclBindingFilter(RT.ANY, "ord", PT.ANY)
    assert f.matches(acl("ord", pattern=PT.PREFIXED))
    assert f.matches(acl("ord", rtype=RT.GROUP))
    assert not f.matches(acl("orders"))


def test_filter_entry_fields() -> None:
    binding = acl("orders", OP.WRITE, DENY, principal=BOB, host="1.2.3.4")
    assert AclBindingFilter(principal=BOB, host="1.2.3.4", operation=OP.WRITE, permission_type=DENY).matches(binding)
    assert not AclBindingFilter(principal=ALICE).matches(binding)
    assert not AclBindingFilter(host="*").matches(binding)
    assert not AclBindingFilter(operation=OP.ALL).matches(binding)  # a filter's ALL is exact, as Kafka's
    assert not AclBindingFilter(permission_type=ALLOW).matches(binding)


def test_filter_unknown_elements() -> None:
    assert AclBindingFilter().unknown_element() is None
    assert AclBindingFilter(resource_type=RT.UNKNOWN).unknown_element() == "Unknown resourceType UNKNOWN."
    assert AclBindingFilter(pattern_type=0).unknown_element() == "Unknown patternType UNKNOWN."
    assert AclBindingFilter(operation=99).unknown_element() == "Unknown operation 99."


# -- CreateAcls validation (AclControlManager.validateNewAcl) ----------------------------------

@pytest.mark.parametrize(("binding", "message"), [
    (acl("orders", rtype=RT.ANY), "Invalid resourceType ANY"),
    (acl("orders", rtype=RT.UNKNOWN), "Invalid resourceType UNKNOWN"),
    (acl("orders", pattern=PT.MATCH), "Invalid patternType MATCH"),
    (acl("orders", pattern=PT.ANY), "Invalid patternType ANY"),
    (acl("orders", OP.ANY), "Invalid operation ANY"),
    (acl("orders", permission=AclPermissionType.ANY), "Invalid permissionType ANY"),
    (acl(""), "Resource name should not be empty"),
    (acl("other", rtype=RT.CLUSTER), "The only valid name for the CLUSTER resource is kafka-cluster"),
    (acl("orders", principal="alice"), "Could not parse principal"),
    (acl("orders", principal="User:"), "Invalid principal"),
])
def test_invalid_new_acls(binding: AclBinding, message: str) -> None:
    problem = validate_new_acl(binding)
    assert problem is not None and problem.startswith(message)


def test_valid_new_acls() -> None:
    assert validate_new_acl(acl("orders")) is None
    assert validate_new_acl(acl("kafka-cluster", OP.ALTER, rtype=RT.CLUSTER)) is None
    assert validate_new_acl(acl("app-", pattern=PT.PREFIXED, rtype=RT.GROUP)) is None


# -- metadata records, image and snapshot ------------------------------------------------------

def test_acl_records_apply_remove_and_survive_a_snapshot() -> None:
    first, second = acl("orders"), acl("app-", pattern=PT.PREFIXED, rtype=RT.GROUP)
    image = MetadataImage().apply_all([(0, acl_record("a", first)), (1, acl_record("b", second))])
    assert dict(image.acls) == {"a": first, "b": second}
    restored = decode_snapshot(encode_snapshot(image), image.offset + 1)
    assert dict(restored.acls) == {"a": first, "b": second}
    assert [r["type"] for r in image_records(image)].count("AccessControlEntryRecord") == 2
    removed = image.apply(remove_acl_record("a"), 2)
    assert dict(removed.acls) == {"b": second}
    assert dict(image.acls) == {"a": first, "b": second}  # images are immutable
    with pytest.raises(ValueError):
        removed.apply(remove_acl_record("a"), 3)


def test_newer_acl_record_version_stops_replay() -> None:
    with pytest.raises(MetadataReplayError):
        MetadataImage().apply({**acl_record("a", acl("orders")), "version": 9}, 0)


# -- config ------------------------------------------------------------------------------------

def test_authorizer_config() -> None:
    assert authorizer_from_config({"authorizer.class.name": None}) is None
    authorizer = authorizer_from_config({
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin; User:ANONYMOUS", "allow.everyone.if.no.acl.found": True})
    assert authorizer is not None
    assert authorizer.super_users == {"User:admin", "User:ANONYMOUS"}
    assert authorizer.allow_everyone_if_no_acl_found
    assert parse_super_users(";;") == []
    with pytest.raises(ValueError, match="super.users"):
        authorizer_from_config({"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                                "super.users": "admin"})


def load_text(text: str) -> ClusterConfig:
    return parse(text, Path("acl.yaml"), Path("."))


def test_yaml_accepts_only_the_standard_authorizer() -> None:
    base = "cluster: {name: a}\nnodes:\n  - {id: 1, port: 9092}\nbroker:\n"
    config = load_text(base + "  authorizer.class.name: org.apache.kafka.metadata.authorizer.StandardAuthorizer\n"
                              "  super.users: User:ANONYMOUS\n  allow.everyone.if.no.acl.found: true\n")
    assert config.broker["super.users"] == "User:ANONYMOUS"
    assert config.broker["allow.everyone.if.no.acl.found"] is True
    with pytest.raises(ConfigError, match="StandardAuthorizer"):
        load_text(base + "  authorizer.class.name: kafka.security.authorizer.AclAuthorizer\n")
    with pytest.raises(ConfigError, match=r"'alice' is not a principal \(Type:name\)"):
        load_text(base + "  super.users: User:bob;alice\n")
