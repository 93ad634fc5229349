"""A merge method's bound arguments by parameter name, read with the type the method declares."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

Arguments = Mapping[str, object]


def tensor_arg(args: Arguments, name: str) -> Tensor:
    """A tensor parameter."""
    value = args[name]
    assert isinstance(value, Tensor)
    return value


def tensors_arg(args: Arguments, name: str) -> tuple[Tensor, ...]:
    """A ``*args`` parameter of tensors (never empty)."""
    values = args[name]
    assert isinstance(values, tuple) and values
    return values


def number_arg(args: Arguments, name: str) -> float:
    """A numeric parameter, as a float."""
    value = args[name]
    assert isinstance(value, int | float)
    return float(value)
