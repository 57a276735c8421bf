"""`pko configs`: kafka-configs for topics and brokers (--describe, --alter).

Piped, ``--describe`` prints kafka-configs' own layout::

    Dynamic configs for topic orders are:
      retention.ms=86400000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=86400000}

(``--all``: "All configs for …", every config). ``--alter`` takes ``--add-config k=v,k2=[a,b]``,
``--add-config-file`` (a properties file) and ``--delete-config k,k2`` and sends them with
IncrementalAlterConfigs. ``--entity-type brokers --entity-default`` is the cluster-wide default of
every broker ("Default configs for brokers in the cluster are:"); describing every broker shows
it too. Usage errors exit 2, Kafka errors 1.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands._exit import USAGE, CliError, handle_errors
from commands._options import BootstrapOption, CommandConfigOption, OutputOption, TimeoutOption
from commands._render import Table, render
from pykafka_ops.services.configs import BROKER_DEFAULT

if TYPE_CHECKING:
    from pykafka_ops.models.topics import ConfigEntry, ResourceConfigs

app = typer.Typer(add_completion=False, rich_markup_mode=None)

#: kafka-configs splits --add-config at commas outside square brackets.
_TOP_LEVEL_COMMA = re.compile(r",(?=[^\]]*(?:\[|$))")


def parse_add_config(text: str) -> dict[str, str]:
    """``k1=v1,k2=[a,b]`` → {"k1": "v1", "k2": "a,b"} (kafka-configs' ``parseConfigsToBeAdded``)."""
    result = {}
    for pair in filter(None, _TOP_LEVEL_COMMA.split(text)):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError('Invalid entity config: all configs to be added must be in the format "key=val".', USAGE)
        value = value.strip()
        result[key.strip()] = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    return result


def _entity(entity_type: str | None, entity_name: str | None, topic: str | None,
            broker: str | None, entity_default: bool = False) -> tuple[str, str | None]:
    """(entity type, name) from --entity-type/--entity-name or --topic/--broker; name None = all,
    ``BROKER_DEFAULT`` = the brokers' cluster-wide default (--entity-default)."""
    if entity_default:
        if entity_name is not None or topic is not None or broker is not None:
            raise CliError("--entity-default can't be used with --entity-name, --topic or --broker", USAGE)
        if entity_type != "brokers":
            raise CliError("--entity-default needs --entity-type brokers", USAGE)
        return entity_type, BROKER_DEFAULT
    if topic is not None or broker is not None:
        if entity_type or entity_name is not None or (topic is not None and broker is not None):
            raise CliError("give one entity: --topic, --broker, or --entity-type with --entity-name", USAGE)
        return ("topics", topic) if topic is not None else ("brokers", broker)
    if entity_type is None:
        raise CliError("Must specify --entity-type (topics or brokers), or --topic / --broker", USAGE)
    if entity_type not in ("topics", "brokers"):
        raise CliError(f"Invalid entity type {entity_type}, the entity type must be one of topics, brokers", USAGE)
    return entity_type, entity_name


@app.command(no_args_is_help=True)
@handle_errors
def configs(
    describe: Annotated[bool, typer.Option("--describe", help="List configs of the entity.")] = False,
    alter: Annotated[bool, typer.Option("--alter", help="Alter configs of the entity.")] = False,
    entity_type: Annotated[str | None, typer.Option("--entity-type", help="topics or brokers.")] = None,
    entity_name: Annotated[str | None, typer.Option(
        "--entity-name", help="Topic name or broker id (describe: all when left out).")] = None,
    topic: Annotated[str | None, typer.Option("--topic", help="Same as --entity-type topics --entity-name.")] = None,
    broker: Annotated[str | None, typer.Option("--broker", help="Same as --entity-type brokers --entity-name.")] = None,
    entity_default: Annotated[bool, typer.Option(
        "--entity-default", help="The default of every broker (with --entity-type brokers).")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Describe every config, not only dynamic ones.")] = False,
    add_config: Annotated[str | None, typer.Option(
        "--add-config", help="Configs to set: k1=v1,k2=[v2,v3] (brackets group a list value).")] = None,
    add_config_file: Annotated[Path | None, typer.Option(
        "--add-config-file", exists=True, dir_okay=False, help="A properties file of configs to set.")] = None,
    delete_config: Annotated[str | None, typer.Option(
        "--delete-config", help="Config overrides to remove: k1,k2.")] = None,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 30000,
    output: OutputOption = None,
) -> None:
    """Describe or alter topic and broker configs, with kafka-configs' flags."""
    if describe == alter:
        raise CliError("Command must include exactly one action: --describe, --alter", USAGE)
    kind, name = _entity(entity_type, entity_name, topic, broker, entity_default)
    from pykafka_ops.client.connection import client_settings

    settings = client_settings(bootstrap_server, command_config, timeout)
    if describe:
        if add_config or add_config_file or delete_config:
            raise CliError("--add-config/--delete-config need --alter", USAGE)
        from pykafka_ops.services.configs import describe_configs

        described = asyncio.run(describe_configs(settings, kind, name))
        render(output, [_table(r, all_) for r in described], [_payload(r, all_) for r in described],
               text=lambda: "\n".join(_text(r, all_) for r in described))
        return
    _alter(settings, kind, name, add_config, add_config_file, delete_config)


def _alter(settings: Any, kind: str, name: str | None, add_config: str | None, add_config_file: Path | None,
           delete_config: str | None) -> None:
    from pykafka_ops.config.client import parse_properties
    from pykafka_ops.services.configs import alter_configs

    if name is None:
        raise CliError("--alter needs one entity: --entity-name, --topic or --broker", USAGE)
    to_set = parse_add_config(add_config or "")
    if add_config_file is not None:
        to_set.update(parse_properties(add_config_file.read_text(), str(add_config_file)))
    to_delete = [k.strip() for k in (delete_config or "").split(",") if k.strip()]
    if not to_set and not to_delete:
        raise CliError("--alter needs --add-config, --add-config-file or --delete-config", USAGE)
    both = sorted(set(to_set) & set(to_delete))
    if both:
        raise CliError(f"Invalid config(s): {','.join(both)} are both added and deleted", USAGE)
    asyncio.run(alter_configs(settings, kind, name, to_set, to_delete))
    if name == BROKER_DEFAULT:
        typer.echo(f"Completed updating default config for {kind} in the cluster.")
    else:
        typer.echo(f"Completed updating config for {kind[:-1]} {name}.")


_DYNAMIC_SOURCE = {"topics": "DYNAMIC_TOPIC_CONFIG", "brokers": "DYNAMIC_BROKER_CONFIG"}


def _shown(resource: ResourceConfigs, all_: bool) -> list[ConfigEntry]:
    """kafka-configs: every config with --all, else the dynamic ones for this entity; by name."""
    wanted = _DYNAMIC_SOURCE[resource.entity_type]
    if resource.entity_name == BROKER_DEFAULT:
        wanted = "DYNAMIC_DEFAULT_BROKER_CONFIG"
    return sorted((e for e in resource.entries if all_ or e.source == wanted), key=lambda e: e.name)


def _heading(resource: ResourceConfigs, all_: bool) -> str:
    if resource.entity_name == BROKER_DEFAULT:  # kafka-configs' ConfigCommand
        return f"Default configs for {resource.entity_type} in the cluster are:"
    scope = "All" if all_ else "Dynamic"
    return f"{scope} configs for {resource.entity_type[:-1]} {resource.entity_name} are:"


def _text(resource: ResourceConfigs, all_: bool) -> str:
    lines = [_heading(resource, all_)]
    for e in _shown(resource, all_):
        synonyms = ", ".join(f"{s.source}:{s.name}={s.value}" for s in e.synonyms)
        lines.append(f"  {e.name}={'null' if e.sensitive else e.value} sensitive={str(e.sensitive).lower()} "
                     f"synonyms={{{synonyms}}}")
    return "\n".join(lines)


def _table(resource: ResourceConfigs, all_: bool) -> Table:
    return Table(["NAME", "VALUE", "SOURCE", "SENSITIVE", "READ-ONLY"],
                 [[e.name, None if e.sensitive else e.value, e.source, e.sensitive, e.read_only]
                  for e in _shown(resource, all_)], title=_heading(resource, all_).removesuffix(" are:"))


def _payload(resource: ResourceConfigs, all_: bool) -> dict[str, Any]:
    return {"entity_type": resource.entity_type, "entity_name": resource.entity_name,
            "configs": [{"name": e.name, "value": None if e.sensitive else e.value, "source": e.source,
                         "is_default": e.is_default, "read_only": e.read_only, "sensitive": e.sensitive,
                         "synonyms": [{"name": s.name, "value": s.value, "source": s.source} for s in e.synonyms]}
                        for e in _shown(resource, all_)]}
