"""The syntax tree of a Mecha recipe: one node per line, values with their spans.

Nodes are frozen dataclasses. Spans (and the version header) take no part in equality, so two
spellings of one recipe — the seed's dialect and sd-mecha's, CRLF or LF, tabs or spaces — parse
to equal trees. The tree keeps arguments as written (positional or keyword, defaults left out);
binding them to a method's parameters is the checker's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compiler.diagnostics import Span

FORMAT_VERSION = "0.1.0"

_NO_SPAN = Span("<recipe>")


@dataclass(frozen=True, slots=True)
class Str:
    """A quoted string, unescaped."""

    value: str
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Int:
    value: int
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Float:
    value: float
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Null:
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Ref:
    """``&N``: the result of expression ``index`` (0-based, counting expressions only)."""

    index: int
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


Value = Str | Int | Float | Bool | Null | Ref
Scalar = Str | Int | Float | Bool | Null


@dataclass(frozen=True, slots=True)
class Keyword:
    """``name=value``."""

    name: str
    value: Value
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Model:
    """``model "path" [model_config=…] [merge_space=…]``: a model file (or a MIR id)."""

    path: Str
    args: tuple[Value, ...] = ()
    kwargs: tuple[Keyword, ...] = ()
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)

    command = "model"


@dataclass(frozen=True, slots=True)
class Merge:
    """``merge "method" args… key=value…`` (the seed spells it ``call``)."""

    method: Str
    args: tuple[Value, ...] = ()
    kwargs: tuple[Keyword, ...] = ()
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)

    command = "merge"


@dataclass(frozen=True, slots=True)
class Literal:
    """``literal &N model_config=… merge_space=…``: a dict of values as a recipe node."""

    args: tuple[Value, ...] = ()
    kwargs: tuple[Keyword, ...] = ()
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)

    command = "literal"


@dataclass(frozen=True, slots=True)
class Dict:
    """``dict key=value…``: a plain dict (per-block hyperparameters, literal contents)."""

    kwargs: tuple[Keyword, ...] = ()
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)

    command = "dict"

    @property
    def args(self) -> tuple[Value, ...]:
        return ()


Expression = Model | Merge | Literal | Dict


@dataclass(frozen=True, slots=True)
class Comment:
    """A full-line ``#`` comment; ``text`` follows the ``#``, trailing spaces removed."""

    text: str
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


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

    @property
    def output(self) -> int:
        """The index of the output expression (the last one)."""
        return len(self.expressions) - 1
