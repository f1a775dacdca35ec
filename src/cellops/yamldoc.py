"""YAML files people write (pipeline files, later monitor files), read with limits.

:func:`load_yaml` parses with PyYAML's safe loader and gives back the data and a map
from each node's path to its line, for messages that say where. It answers hostile
input quickly and with a clear error instead of exhausting memory or the stack:

- ``MAX_BYTES`` of text at most;
- nesting at most ``MAX_DEPTH`` levels (PyYAML's composer recurses once per level);
- at most ``MAX_NODES`` nodes once aliases are expanded: a "billion laughs" file of a
  few lines whose anchors refer to each other would otherwise expand to billions;
- a key given twice in one mapping is an error naming both lines (PyYAML keeps the
  last one silently).

The first three are checked on PyYAML's event stream, before any tree is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 100_000

Path_ = tuple  # (key, index, ...) from the document root


class YamlError(Exception):
    """The text is not YAML (``syntax``), or is YAML past a limit; callers turn it into
    their own error with ``line`` (1-based, or None) and ``message``."""

    def __init__(self, line: int | None, message: str, syntax: bool = False) -> None:
        self.line, self.message, self.syntax = line, message, syntax
        super().__init__(f"line {line}: {message}" if line else message)


@dataclass
class YamlDocument:
    data: Any
    lines: dict[Path_, int]  # node path -> 1-based line; (..., key, "__key__") for the key itself

    def line(self, where: Path_) -> int | None:
        """The line of ``where``, or of its closest ancestor that has one."""
        for i in range(len(where), -1, -1):
            found = self.lines.get(where[:i])
            if found:
                return found
        return None


def load_yaml(text: str) -> YamlDocument:
    """Parse ``text``; problems are raised as :class:`YamlError`."""
    import yaml

    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise YamlError(None, f"the file is {size:,} bytes; the limit is {MAX_BYTES:,}")
    try:
        _check_events(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise _syntax(exc) from None
    if node is None:
        return YamlDocument(None, {})
    lines: dict[Path_, int] = {}
    _walk(node, (), lines)
    loader = yaml.SafeLoader("")
    try:
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _syntax(exc) from None
    finally:
        loader.dispose()
    return YamlDocument(data, lines)


def _syntax(exc: Exception) -> YamlError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return YamlError(mark.line + 1 if mark else None, f"not valid YAML ({problem})", syntax=True)


def _check_events(text: str) -> None:
    """Depth, expanded size and cycles from the event stream (no recursion, linear time):
    an alias inside the collection its anchor names would make a graph without end."""
    import yaml

    depth = 0
    total = 0
    # Per open collection: [expanded size so far, anchor]; sizes of finished anchors.
    open_: list[list[Any]] = []
    anchored: dict[str, int] = {}

    def add(n: int, line: int) -> None:
        nonlocal total
        total += n
        if open_:
            open_[-1][0] += n
        if total > MAX_NODES:
            raise YamlError(line, f"the document expands to more than {MAX_NODES:,} nodes (anchors "
                             "and aliases that multiply, as in a 'billion laughs' file); write "
                             "the values out or use fewer aliases")

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlError(line, f"values nest deeper than {MAX_DEPTH} levels")
            open_.append([1, event.anchor])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            size, anchor = open_.pop()
            if anchor is not None:
                anchored[anchor] = size
            add(size, line)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                anchored[event.anchor] = 1
            add(1, line)
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for _, anchor in open_):
                raise YamlError(line, f"alias *{event.anchor} refers to the collection it is "
                                      f"inside (&{event.anchor}), which would make it contain "
                                      "itself without end; write the values out")
            add(anchored.get(event.anchor, 1), line)


def _walk(node: Any, path: Path_, out: dict[Path_, int]) -> None:
    """Fill ``out`` with the line of every node; refuse duplicate keys. Iterative."""
    import yaml

    stack = [(node, path)]
    while stack:
        node, path = stack.pop()
        out.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
                line = key_node.start_mark.line + 1
                if key == "<<":  # a merge key (<<: *defaults) may appear more than once
                    continue
                if key in seen:
                    raise YamlError(line, f"key {key!r} appears twice in one mapping (lines "
                                     f"{seen[key]} and {line}); keep one")
                seen[key] = line
                out.setdefault(path + (key, "__key__"), line)
                stack.append((value_node, path + (key,)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                stack.append((item, path + (i,)))
