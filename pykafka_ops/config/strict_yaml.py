"""Reading a cluster file's YAML strictly, keeping the line of every key for error messages.

Beyond PyYAML's SafeLoader: a key given twice in one mapping is refused (YAML would keep the last
one silently), and a document whose aliases expand past ``MAX_YAML_NODES`` nodes is refused before
anything walks it (an alias bomb). ``read`` returns the data and the line of each key path, which
``where`` turns into ``<file>: <key> (line N)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

#: Most YAML nodes a file may expand to once aliases are followed (a real config has hundreds).
MAX_YAML_NODES = 100_000

#: Line of each key path, e.g. ``('broker', 'num.partitions')`` or ``('nodes', 1, 'port')``.
Lines = dict[tuple[Any, ...], int]


class YamlProblem(ValueError):
    """Text that is not a usable YAML document; the message follows the file name
    (``: the file is empty …`` or `` (line 3): not valid YAML: …``)."""


def read(text: str) -> tuple[Any, Lines]:
    """The document in ``text`` and the line of each key path; raises YamlProblem."""
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise YamlProblem(": the file is empty (a cluster file has at least `nodes:` or `cluster:`)")
        if _expanded_size(root, {}) > MAX_YAML_NODES:
            raise YamlProblem(f": its aliases expand to more than {MAX_YAML_NODES} YAML nodes")
        data = loader.construct_document(root)
    except _DuplicateKey as exc:
        raise YamlProblem(f": {exc.key} (line {exc.line}): duplicate key (first at line {exc.first})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlProblem(f"{line}: not valid YAML: {problem}") from None
    finally:
        loader.dispose()
    return data, _line_index(root)


def where(source: Path, lines: Mapping[tuple[Any, ...], int], path: tuple[Any, ...]) -> str:
    """``<file>: <key> (line N)`` for a key path such as ``("nodes", 0, "port")``."""
    key = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
    line = lines.get(path)
    return f"{source}: {key or '<top level>'}" + (f" (line {line})" if line else "")


class _DuplicateKey(Exception):
    def __init__(self, key: str, line: int, first: int) -> None:
        super().__init__(key)
        self.key, self.line, self.first = key, line, first


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, refusing a key given twice in one mapping (merged keys aside)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in seen:
                raise _DuplicateKey(key_node.value, line, seen[key_node.value])
            seen[key_node.value] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many nodes ``node`` stands for with every alias followed (linear: shared nodes are
    counted once each, then multiplied, never walked again)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = MAX_YAML_NODES + 1  # a cycle (an alias to an enclosing node) is too big
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, sizes) for item in node.value)
    sizes[id(node)] = size = min(size, MAX_YAML_NODES + 1)
    return size


def _line_index(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> Lines:
    """Map each key path to its line."""
    lines: Lines = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = (*path, key_node.value)
            lines[key_path] = key_node.start_mark.line + 1
            lines.update(_line_index(value_node, key_path))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            lines.update(_line_index(item, (*path, i)))
    return lines
