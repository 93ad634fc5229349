"""Binding a command's arguments to its parameters, the way Python's ``Signature.bind`` does.

sd-mecha calls each merge method with the recipe's arguments, so the rules are Python's:
positional arguments fill the positional parameters in order and then the ``*varargs``; keyword
arguments name any parameter that is not positional-only; nothing may be given twice; every
parameter without a default must be given. The binder is generic in the argument type so the
checker (syntax-tree values) and the graph form (graph operands) share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from compiler.diagnostics import did_you_mean
from compiler.lang.mecha.catalogue import Method, Param

A = TypeVar("A")


@dataclass(frozen=True, slots=True)
class Problem:
    """Why arguments do not fit: at positional ``index``, at keyword ``name``, or missing."""

    message: str
    index: int | None = None
    name: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Binding(Generic[A]):
    """Each argument with the parameter it fills, in the order given, and what did not fit."""

    method: Method
    values: tuple[tuple[Param, A], ...]
    problems: tuple[Problem, ...]

    def value_of(self, name: str) -> A | None:
        return next((v for p, v in self.values if p.name == name), None)


def bind(method: Method, args: Sequence[A], kwargs: Sequence[tuple[str, A]]) -> Binding[A]:
    """Bind ``args`` and ``kwargs`` to ``method``'s parameters, reporting what does not fit."""
    positional = method.positional
    varargs = method.varargs
    values: list[tuple[Param, A]] = []
    problems: list[Problem] = []
    for index, value in enumerate(args):
        if index < len(positional):
            values.append((positional[index], value))
        elif varargs is not None:
            values.append((varargs, value))
        else:
            problems.append(Problem(_too_many(method, len(args)), index=index))
            break
    given = {param.name for param, _ in values}
    for name, value in kwargs:
        problem = _keyword_problem(method, name, given)
        if problem is not None:
            problems.append(problem)
            continue
        values.append((method.by_name[name], value))
        given.add(name)
    problems.extend(_missing(method, given))
    return Binding(method, tuple(values), tuple(problems))


def _too_many(method: Method, count: int) -> str:
    limit = len(method.positional)
    plural = "s" if limit != 1 else ""
    return f"{method.identifier} takes {limit} positional argument{plural} but {count} were given"


def _keyword_problem(method: Method, name: str, given: set[str]) -> Problem | None:
    param = method.by_name.get(name)
    if param is None:
        names = [p.name for p in method.params if p.kind not in ("varargs", "positional_only")]
        notes = did_you_mean(name, names) or (_parameters_note(method),)
        return Problem(f"{method.identifier} has no parameter '{name}'", name=name, notes=notes)
    if param.kind == "positional_only":
        message = f"'{name}' of {method.identifier} can only be given by position"
        return Problem(message, name=name)
    if name in given:
        return Problem(f"'{name}' of {method.identifier} is given twice", name=name)
    return None


def _missing(method: Method, given: set[str]) -> list[Problem]:
    return [
        Problem(f"{method.identifier} is missing its argument '{param.name}'")
        for param in method.required
        if param.name not in given
    ]


def _parameters_note(method: Method) -> str:
    shown = []
    for param in method.params:
        prefix = "*" if param.kind == "varargs" else ""
        shown.append(prefix + param.name)
    return f"{method.identifier} takes: " + (", ".join(shown) if shown else "no arguments")
