"""The syntax tree of a Mecha recipe: one node per line, values with their positions.

Nodes are frozen dataclasses. Positions (and the version header) take no part in equality, so two
spellings of one recipe — the seed's dialect and sd-mecha's, CRLF or LF, tabs or spaces — parse
to equal trees. The tree keeps arguments as written (positional or keyword, defaults left out);
binding them to a method's parameters is the checker's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from compiler.diagnostics import Span

FORMAT_VERSION = "0.1.0"


class Line(NamedTuple):
    """A source line, shared by the positions of everything on it."""

    file: str
    number: int
    text: str


class Pos(NamedTuple):
    """Where a node is: its line and its columns (1-based, the end exclusive).

    Nodes keep this small tuple and make a :class:`Span` only when one is asked for: a
    10,000-line recipe has some 60,000 nodes and few diagnostics.
    """

    line: Line
    col: int
    end_col: int

    @property
    def span(self) -> Span:
        line = self.line
        return Span(line.file, line.number, self.col, line.number, self.end_col, line.text)


NOWHERE = Pos(Line("<recipe>", 0, ""), 0, 0)


class Located:
    """A node with a position; ``span`` is the diagnostics' view of it."""

    __slots__ = ()
    pos: Pos

    @property
    def span(self) -> Span:
        return self.pos.span


@dataclass(frozen=True, slots=True)
class Str(Located):
    """A quoted string, unescaped."""

    value: str
    pos: Pos = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Int(Located):
    value: int
    pos: Pos = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Float(Located):
    value: float
    pos: Pos = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Bool(Located):
    value: bool
    pos: Pos = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Null(Located):
    pos: Pos = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Ref(Located):
    """``&N``: the result of expression ``index`` (0-based, counting expressions only)."""

    index: int
    pos: Pos = field(default=NOWHERE, compare=False, repr=False)


Value = Str | Int | Float | Bool | Null | Ref


@dataclass(frozen=True, slots=True)
class Keyword(Located):
    """``name=value``."""

    name: str
    value: Value
    pos: Pos = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Model(Located):
    """``model "path" [model_config=…] [merge_space=…]``: a model file (or a MIR id)."""

    path: Str
    args: tuple[Value, ...] = ()
    kwargs: tuple[Keyword, ...] = ()
    pos: Pos = field(default=NOWHERE, compare=False, repr=False)

    command = "model"


@dataclass(frozen=True, slots=True)
class Merge(Located):
    """``merge "method" args… key=value…`` (the seed spells it ``call``)."""

    method: Str
    args: tuple[Value, ...] = ()
    kwargs: tuple[Keyword, ...] = ()
    pos: Pos = field(default=NOWHERE, compare=False, repr=False)

    command = "merge"


@dataclass(frozen=True, slots=True)
class Literal(Located):
    """``literal &N model_config=… merge_space=…``: a dict of values as a recipe node."""

    args: tuple[Value, ...] = ()
    kwargs: tuple[Keyword, ...] = ()
    pos: Pos = field(default=NOWHERE, compare=False, repr=False)

    command = "literal"


@dataclass(frozen=True, slots=True)
class Dict(Located):
    """``dict key=value…``: a plain dict (per-block hyperparameters, literal contents)."""

    kwargs: tuple[Keyword, ...] = ()
    pos: Pos = field(default=NOWHERE, compare=False, repr=False)

    command = "dict"

    @property
    def args(self) -> tuple[Value, ...]:
        return ()


Expression = Model | Merge | Literal | Dict


@dataclass(frozen=True, slots=True)
class Comment(Located):
    """A full-line ``#`` comment; ``text`` follows the ``#``, trailing spaces removed."""

    text: str
    pos: Pos = field(default=NOWHERE, compare=False, repr=False)


Item = Expression | Comment


@dataclass(frozen=True, slots=True)
class Recipe:
    """A whole recipe: expressions and comments in file order; the last expression is the output.

    ``version`` is the header's version (``None`` for the seed's dialect, which has none).
    """

    items: tuple[Item, ...]
    version: str | None = field(default=FORMAT_VERSION, compare=False)
    file: str = field(default="<recipe>", compare=False)

    @property
    def expressions(self) -> tuple[Expression, ...]:
        return tuple(item for item in self.items if not isinstance(item, Comment))
