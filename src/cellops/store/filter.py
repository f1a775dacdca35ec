"""MLflow's search filter grammar, parsed into a small syntax tree.

The grammar (a superset of MLflow's)::

    filter     := or_expr
    or_expr    := and_expr ("OR" and_expr)*          # OR and parentheses are extensions
    and_expr   := term ("AND" term)*
    term       := "(" or_expr ")" | comparison
    comparison := field op value
                | field ["NOT"] "IN" "(" value ("," value)* ")"
                | field "IS" ["NOT"] "NULL"
    field      := entity "." key  |  attribute-name
    entity     := metrics | params | tags | attributes | datasets | models (and MLflow's
                  aliases: metric, param, parameter(s), tag, attribute, attr, run, dataset,
                  model), bare or in backticks as MLflow accepts them: `params`.my_param
    key        := name | `backticked` | "double quoted" | 'single quoted'
    op         := = | == | != | <> | > | >= | < | <= | LIKE | ILIKE | NOT LIKE | NOT ILIKE
    value      := number | 'string' | "string"

Metrics compare as numbers. Params and tags are stored as text: a quoted value
compares as text, an unquoted number compares numerically (``params.alpha > 0.1``).
``datasets.KEY`` (name, digest or fingerprint, context, source) is a run's data lineage;
a digest compared with ``=`` or ``!=`` matches as a prefix of the fingerprint, so the
12 characters shown everywhere find it. Runs take ``models.KEY`` (name, version, alias):
the registered versions made from them. Model versions take ``datasets.KEY`` too: the
lineage recorded when they were registered.
The tree is turned into bound SQL by :mod:`cellops.store.search`; no text from
the filter is ever interpolated into SQL.

Limits keep hostile input cheap and the SQL within SQLite's expression depth: at most
``MAX_FILTER_CHARS`` characters, ``MAX_DEPTH`` levels of parentheses, ``MAX_CONDITIONS``
comparisons, ``MAX_IN_VALUES`` values in all IN lists together (each is a bound SQL
parameter) and ``MAX_ORDER_KEYS`` order keys;
past them the error says which limit and where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Union

from ..errors import FilterSyntaxError

__all__ = ["ATTRIBUTES", "MODEL_VERSIONS", "RUNS", "Comparison", "Field", "Logical", "OrderKey",
           "Schema", "parse_filter",
           "parse_order_by"]

ENTITIES = {
    "metric": "metrics", "metrics": "metrics",
    "param": "params", "params": "params", "parameter": "params", "parameters": "params",
    "tag": "tags", "tags": "tags",
    "attribute": "attributes", "attributes": "attributes", "attr": "attributes",
    "run": "attributes",
    "dataset": "datasets", "datasets": "datasets",
    "model": "models", "models": "models",
}
# Logical attribute name -> kind of value it holds. Aliases resolve to the left name.
ATTRIBUTES = {
    "run_id": "text", "run_name": "text", "status": "text", "start_time": "time",
    "end_time": "time", "user": "text", "kind": "text", "parent_run_id": "text",
    "host": "text", "git_commit": "text", "git_branch": "text", "notebook_path": "text",
    "source_name": "text", "experiment": "text",
}
ATTRIBUTE_ALIASES = {
    "id": "run_id", "name": "run_name", "user_id": "user", "parent_id": "parent_run_id",
    "experiment_name": "experiment", "created": "start_time",
}
DATASET_KEYS = {"name": "name", "digest": "fingerprint", "fingerprint": "fingerprint",
                "context": "role", "role": "role", "source": "source"}
MODEL_KEYS = {"name": "name", "model": "name", "version": "version", "alias": "alias"}
KEYWORDS = {"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL", "ASC", "DESC"}


@dataclass(frozen=True)
class Schema:
    """What a filter may name: its entities, and its attributes (name -> ``text``, ``time``
    or ``number``) with their aliases. ``RUNS`` for runs, ``MODEL_VERSIONS`` for the registry."""

    what: str
    entities: frozenset
    attributes: dict
    aliases: dict


RUNS = Schema("runs", frozenset({"metrics", "params", "tags", "attributes", "datasets", "models"}),
              ATTRIBUTES, ATTRIBUTE_ALIASES)
# Model versions: their own attributes; metrics. and params. are those of the source run.
MODEL_VERSIONS = Schema(
    "model versions", frozenset({"metrics", "params", "tags", "attributes", "datasets"}),
    {"name": "text", "version": "number", "alias": "text", "run_id": "text", "flavor": "text",
     "created_by": "text", "created_at": "time", "description": "text"},
    {"model": "name", "user": "created_by", "created": "created_at", "run": "run_id"})

MAX_FILTER_CHARS = 100_000
MAX_DEPTH = 50
MAX_CONDITIONS = 250
MAX_IN_VALUES = 1_000
MAX_ORDER_KEYS = 20


@dataclass(frozen=True)
class Field:
    entity: str  # metrics | params | tags | attributes | datasets | models
    key: str

    def __str__(self) -> str:
        return f"{self.entity}.{self.key}"


@dataclass(frozen=True)
class Comparison:
    field: Field
    op: str  # = != > >= < <= LIKE ILIKE NOT LIKE NOT ILIKE IN NOT IN IS NULL IS NOT NULL
    value: Union[float, str, tuple, None]


@dataclass(frozen=True)
class Logical:
    op: str  # AND | OR
    items: tuple


Node = Union[Comparison, Logical]


@dataclass(frozen=True)
class OrderKey:
    field: Field
    descending: bool


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<ident>(?:[A-Za-z_][A-Za-z0-9_]*|`[A-Za-z_][A-Za-z0-9_]*`)\.(?:`[^`]*`|"[^"]*"|'[^']*'|[A-Za-z0-9_][A-Za-z0-9_.\-/:]*)?)
  | (?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<>|>=|<=|=|>|<)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FilterSyntaxError(f"Unexpected character {text[pos]!r}", text, pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    tokens.append(_Tok("end", "", len(text)))
    return tokens


def _unquote(s: str) -> str:
    q = s[0]
    body = s[1:-1]
    if q in "'\"":
        body = body.replace(q + q, q).replace("\\" + q, q)
    return body


def _field(tok: _Tok, text: str, schema: Schema = RUNS) -> Field:
    if tok.kind == "ident":
        entity_text, _, key = tok.text.partition(".")
        entity_text = entity_text.strip("`")
        entity = ENTITIES.get(entity_text.lower())
        if entity is None or entity not in schema.entities:
            raise FilterSyntaxError(
                f"Unknown entity {entity_text!r} for {schema.what}; use "
                + ", ".join(f"{e}." for e in sorted(schema.entities)), text, tok.pos)
        if key[:1] in "`\"'":
            key = key[1:-1]
        if not key:
            raise FilterSyntaxError(
                f"Empty key after {entity_text}.: name one, e.g. {entity_text}.acc", text, tok.pos)
    elif tok.kind == "word" and tok.text.upper() not in KEYWORDS:
        entity, key = "attributes", tok.text
    else:
        raise FilterSyntaxError(
            f"Expected a field such as metrics.acc or params.model, got {tok.text or 'the end'!r}",
            text, tok.pos)
    if entity == "attributes":
        name = schema.aliases.get(key, key)
        if name not in schema.attributes:
            raise FilterSyntaxError(
                f"Unknown attribute {key!r}. Attributes of {schema.what}: "
                f"{', '.join(sorted(schema.attributes))}. "
                "For a param, metric or tag write params.KEY, metrics.KEY or tags.KEY.",
                text, tok.pos)
        key = name
    elif entity == "datasets":
        if key not in DATASET_KEYS:
            raise FilterSyntaxError(
                f"Unknown dataset field {key!r}; use datasets.name, datasets.digest or "
                "datasets.context.", text, tok.pos)
        key = DATASET_KEYS[key]
    elif entity == "models":
        if key not in MODEL_KEYS:
            raise FilterSyntaxError(
                f"Unknown model field {key!r}; use models.name, models.version or "
                "models.alias.", text, tok.pos)
        key = MODEL_KEYS[key]
    return Field(entity, key)


class _Parser:
    def __init__(self, text: str, schema: Schema = RUNS) -> None:
        self.schema = schema
        if len(text) > MAX_FILTER_CHARS:
            raise FilterSyntaxError(
                f"The filter is {len(text):,} characters; the limit is {MAX_FILTER_CHARS:,}. "
                "Split the search, or select runs by experiment or tag instead of long lists.")
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0
        self.conditions = 0
        self.in_values = 0

    def peek(self, offset: int = 0) -> _Tok:
        return self.toks[min(self.i + offset, len(self.toks) - 1)]

    def next(self) -> _Tok:
        tok = self.peek()
        self.i += 1
        return tok

    def is_word(self, word: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok.kind == "word" and tok.text.upper() == word

    def expect_word(self, word: str) -> None:
        tok = self.next()
        if not (tok.kind == "word" and tok.text.upper() == word):
            raise self.error(f"Expected {word}, got {tok.text or 'the end'!r}", tok)

    def error(self, message: str, tok: _Tok) -> FilterSyntaxError:
        return FilterSyntaxError(message, self.text, tok.pos)

    def parse(self) -> Node:
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "end":
            hint = " (join conditions with AND or OR)" if tok.kind in ("ident", "word") else ""
            raise self.error(f"Unexpected {tok.text!r}{hint}", tok)
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.is_word("OR"):
            self.next()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Logical("OR", tuple(items))

    def and_expr(self) -> Node:
        items = [self.term()]
        while self.is_word("AND"):
            self.next()
            items.append(self.term())
        return items[0] if len(items) == 1 else Logical("AND", tuple(items))

    def term(self) -> Node:
        tok = self.peek()
        if tok.kind == "punct" and tok.text == "(":
            if self.depth >= MAX_DEPTH:
                raise self.error(f"Parentheses nest deeper than {MAX_DEPTH} levels; simplify "
                                 "the filter", tok)
            self.next()
            self.depth += 1
            node = self.or_expr()
            self.depth -= 1
            close = self.next()
            if close.text != ")":
                raise self.error(f"Expected ')', got {close.text or 'the end'!r}", close)
            return node
        return self.comparison()

    def comparison(self) -> Comparison:
        ftok = self.next()
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise self.error(f"The filter has more than {MAX_CONDITIONS} conditions; use IN "
                             "('a', 'b', ...) for lists of values, or split the search", ftok)
        field = _field(ftok, self.text, self.schema)
        tok = self.peek()
        if self.is_word("IS"):
            self.next()
            negate = self.is_word("NOT")
            if negate:
                self.next()
            self.expect_word("NULL")
            return Comparison(field, "IS NOT NULL" if negate else "IS NULL", None)
        negate = False
        if self.is_word("NOT"):
            self.next()
            negate = True
            tok = self.peek()
        if self.is_word("IN"):
            self.next()
            return Comparison(field, "NOT IN" if negate else "IN", self.value_list(field))
        if self.is_word("LIKE") or self.is_word("ILIKE"):
            op = self.next().text.upper()
            vtok = self.peek()
            value = self.value(field)
            if not isinstance(value, str):
                raise self.error(f"{op} needs a quoted pattern such as '%rf%'", vtok)
            if field.entity == "metrics" or field.entity == "attributes" and \
                    self.schema.attributes.get(field.key) in ("time", "number"):
                raise self.error(f"{op} compares text; {field} is a number", vtok)
            return Comparison(field, ("NOT " if negate else "") + op, value)
        if negate:
            raise self.error("NOT must be followed by IN, LIKE or ILIKE", tok)
        if tok.kind != "op":
            raise self.error(
                f"Expected a comparison operator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, IS) "
                f"after {field}, got {tok.text or 'the end'!r}", tok)
        self.next()
        op = {"==": "=", "<>": "!="}.get(tok.text, tok.text)
        return Comparison(field, op, self.value(field))

    def value_list(self, field: Field) -> tuple:
        tok = self.next()
        if tok.text != "(":
            raise self.error("IN needs a parenthesised list such as ('a', 'b')", tok)
        values = [self.value(field)]
        while self.peek().text == ",":
            comma = self.next()
            if self.in_values + len(values) >= MAX_IN_VALUES:
                raise self.error(f"IN lists may hold at most {MAX_IN_VALUES:,} values in all",
                                 comma)
            values.append(self.value(field))
        self.in_values += len(values)
        close = self.next()
        if close.text != ")":
            raise self.error(f"Expected ',' or ')' in the IN list, got {close.text or 'the end'!r}",
                             close)
        return tuple(values)

    def value(self, field: Field) -> float | str:
        tok = self.next()
        if tok.kind == "number":
            value: float | str = float(tok.text)
        elif tok.kind == "string":
            value = _unquote(tok.text)
        else:
            raise self.error(
                f"Expected a value (a number or a quoted string) for {field}, "
                f"got {tok.text or 'the end'!r}", tok)
        if field.entity == "metrics" and not isinstance(value, float):
            raise self.error(f"{field} is a metric and compares with numbers, not {tok.text}", tok)
        kind = self.schema.attributes.get(field.key) if field.entity == "attributes" else None
        if kind == "time" and isinstance(value, str):
            value = _time_ms(value, self, tok)
        elif kind == "number" and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise self.error(f"{field} is a number, not {tok.text}", tok) from None
        return value


def _time_ms(value: str, parser: _Parser, tok: _Tok) -> float:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise parser.error(
            f"{value!r} is not a time: use milliseconds since the epoch or an ISO date "
            "such as '2026-01-31T12:00'", tok) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return float(int(dt.timestamp() * 1000))


def parse_filter(text: str | None, schema: Schema = RUNS) -> Node | None:
    """Parse a filter string over ``schema`` (runs by default); blank means no filter."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise FilterSyntaxError(f"A filter must be a string, not {type(text).__name__}.")
    if not text.strip():
        return None
    _check_text(text, "filter")
    return _Parser(text, schema).parse()


def _check_text(text: str, what: str) -> None:
    """Refuse text that is not valid Unicode (a lone surrogate: what undecodable bytes on a
    command line become), pointing at it: SQLite could not take it as a value."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FilterSyntaxError(
            f"The {what} holds a character that is not valid text ({text[exc.start]!r}: "
            "bytes that are not UTF-8, or half of a surrogate pair); type it again or remove "
            "it", text, exc.start) from None


def parse_order_by(items: list[str] | str | None, schema: Schema = RUNS) -> list[OrderKey]:
    """Parse ``["metrics.acc DESC", "start_time"]`` into order keys over ``schema``."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, (list, tuple)):
        raise FilterSyntaxError(f"order_by takes a string or a list of strings, not {items!r}.")
    if len(items) > MAX_ORDER_KEYS:
        raise FilterSyntaxError(f"order_by has {len(items)} keys; the limit is {MAX_ORDER_KEYS}.")
    keys = []
    for item in items:
        if isinstance(item, str):
            _check_text(item, "order_by key")
        if not isinstance(item, str):
            raise FilterSyntaxError(f"order_by entries must be strings, not {item!r}.")
        if len(item) > 1000:
            raise FilterSyntaxError(f"order_by entry {item[:40]!r}... is too long.")
        p = _Parser(item, schema)
        field = _field(p.next(), item, schema)
        desc = False
        if p.is_word("DESC") or p.is_word("ASC"):
            desc = p.next().text.upper() == "DESC"
        end = p.peek()
        if end.kind != "end":
            raise p.error(f"Unexpected {end.text!r}; write e.g. 'metrics.acc DESC'", end)
        keys.append(OrderKey(field, desc))
    return keys
