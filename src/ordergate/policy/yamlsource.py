"""Read policy YAML into plain data while remembering where every value came from.

We compose the YAML into nodes and build the data ourselves instead of letting a YAML
constructor do it, for three reasons: numbers become `Decimal` from the scalar's source text
(YAML `0.1` is exactly `Decimal("0.1")`, never a float); duplicate keys, anchors and custom
tags are errors instead of silent last-one-wins or surprises; and each value's line and
column are kept so an error can point at the exact spot in the file.

Scalars resolve by the YAML 1.2 core schema only: `yes`/`no`/`on`/`off` stay strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ordergate.policy.errors import Path, PolicyError

_TAG = "tag:yaml.org,2002:"
_CORE_TAGS = frozenset(
    _TAG + name for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_TRUE = re.compile(r"^(?:true|True|TRUE)$")
_FALSE = re.compile(r"^(?:false|False|FALSE)$")
_INT10 = re.compile(r"^[-+]?[0-9]+$")
_INT8 = re.compile(r"^0o[0-7]+$")
_INT16 = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")

Value = None | bool | int | Decimal | str | list["Value"] | dict[str, "Value"]


@dataclass(slots=True)
class SourceMap:
    """Where each value (and each mapping key) starts, as 1-based (line, column)."""

    source: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    text: dict[Path, str] = field(default_factory=dict)

    def locate(self, path: Path, *, key: bool = False) -> tuple[int, int] | None:
        """The position of `path` (of its key, when `key` and the key is known), or of its
        nearest ancestor we know of."""
        if key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), -1, -1):
            if path[:end] in self.values:
                return self.values[path[:end]]
        return None

    def error(self, path: Path, message: str, *, key: bool = False) -> PolicyError:
        where = self.locate(path, key=key)
        line, column = where if where is not None else (None, None)
        return PolicyError(self.source, message, path=path, line=line, column=column)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _pos(node: Node) -> tuple[int, int]:
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


# How deep a policy document may nest: its deepest fields (an override's rate limit, an
# instrument's field) are a few levels down. Deeper is refused before it is walked.
MAX_DEPTH = 16


def read_yaml(text: str, source: str) -> tuple[Value, SourceMap]:
    """Parse one YAML document into plain data plus a `SourceMap`."""
    yaml = YAML(typ="safe", pure=True)
    try:
        nodes = list(yaml.compose_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise PolicyError(source, f"malformed YAML: {problem}", line=line,
                          column=column) from None
    except YAMLError as exc:
        raise PolicyError(source, f"malformed YAML: {exc}") from None
    except RecursionError:  # the YAML parser recurses once per level of nesting
        raise PolicyError(source, f"the YAML is nested too deeply (a policy needs at most "
                                  f"{MAX_DEPTH} levels)") from None
    if not nodes or nodes[0] is None:
        raise PolicyError(source, "the policy is empty; start it with "
                                  "'apiVersion: ordergate/v1' and 'kind: Policy'")
    if len(nodes) > 1:
        raise PolicyError(source, "expected one YAML document, found several "
                                  "(remove the extra '---' separators)",
                          line=_pos(nodes[1])[0])
    smap = SourceMap(source)
    reader = _Reader(smap, yaml)
    return reader.value(nodes[0], ()), smap


class _Reader:
    def __init__(self, smap: SourceMap, yaml: YAML) -> None:
        self.smap = smap
        self.yaml = yaml

    def fail(self, node: Node, path: Path, message: str) -> PolicyError:
        line, column = _pos(node)
        return PolicyError(self.smap.source, message, path=path, line=line, column=column)

    def value(self, node: Node, path: Path) -> Value:
        self.smap.values[path] = _pos(node)
        if len(path) > MAX_DEPTH:
            raise self.fail(node, path, f"nested deeper than {MAX_DEPTH} levels; no policy "
                                        "field is that deep")
        if getattr(node, "anchor", None) is not None:
            raise self.fail(node, path, "YAML anchors and aliases are not allowed in a policy; "
                                        "write the values out (use defaults and overrides to "
                                        "share limits)")
        tag = str(node.tag) if node.tag is not None else ""
        if tag and tag not in _CORE_TAGS:
            raise self.fail(node, path, f"unsupported YAML tag '{tag}'; remove it")
        if isinstance(node, MappingNode):
            return self.mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.value(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, ScalarNode):
            self.smap.text[path] = node.value
            if not _encodable(node.value):
                raise self.fail(node, path, "the text holds an unpaired surrogate escape "
                                            "(\\ud800-\\udfff); write the character itself")
            return self.scalar(node, path, tag)
        raise self.fail(node, path, f"unsupported YAML node {type(node).__name__}")

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Value]:
        result: dict[str, Value] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise self.fail(key_node, path, "mapping keys must be plain names, "
                                                "not lists or mappings")
            if key_node.tag is not None and str(key_node.tag) == _TAG + "merge":
                raise self.fail(key_node, path, "YAML merge keys ('<<') are not allowed "
                                                "in a policy; write the values out")
            key = key_node.value
            if not _encodable(key):
                raise self.fail(key_node, path, "the key holds an unpaired surrogate escape "
                                                "(\\ud800-\\udfff); write the character itself")
            child: Path = (*path, key)
            if key in result:
                first_line = self.smap.keys[child][0]
                raise self.fail(key_node, child, f"duplicate key '{key}' (first defined on "
                                                 f"line {first_line}); keep only one")
            self.smap.keys[child] = _pos(key_node)
            result[key] = self.value(value_node, child)
        return result

    def scalar(self, node: ScalarNode, path: Path, tag: str) -> Value:
        text: str = node.value
        if node.style is not None:  # quoted or block scalar: always a string
            return text
        implicit = str(self.yaml.resolver.resolve(ScalarNode, text, (True, False)))
        if tag == _TAG + "str" and implicit != tag:  # an explicit !!str
            return text
        if _NULL.match(text):
            return None
        if _TRUE.match(text):
            return True
        if _FALSE.match(text):
            return False
        if _INT10.match(text):
            return int(text)
        if _INT8.match(text):
            return int(text[2:], 8)
        if _INT16.match(text):
            return int(text[2:], 16)
        if _FLOAT.match(text):
            try:
                return Decimal(text)
            except InvalidOperation:  # pragma: no cover - the pattern admits only valid text
                raise self.fail(node, path, f"not a number: '{text}'") from None
        if _INF.match(text):
            return Decimal("-Infinity") if text.startswith("-") else Decimal("Infinity")
        if _NAN.match(text):
            return Decimal("NaN")
        return text
