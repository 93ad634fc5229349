"""Formatting recipes and comparing them as graphs: fixtures, pairs, properties."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings

from compiler.diagnostics import MircError
from compiler.lang.mecha.ast import Recipe
from compiler.lang.mecha.format import format_recipe
from compiler.lang.mecha.graph import (
    Const,
    DictNode,
    MergeNode,
    ModelNode,
    Node,
    RecipeGraph,
    recipe_graph,
)
from compiler.lang.mecha.parser import parse_recipe
from tests.mecha_strategies import recipes
from tests.test_mecha_parse import variants

FIXTURES = Path(__file__).parent / "fixtures" / "mecha"
IDENTITY = sorted((FIXTURES / "identity").glob("*.mecha"))
PAIRS = sorted(p for p in (FIXTURES / "pairs").glob("*.mecha") if ".given." not in p.name)


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def fmt(text: str) -> str:
    return format_recipe(parse_recipe(text))


@pytest.mark.parametrize("path", IDENTITY, ids=lambda p: p.stem)
def test_canonical_recipes_format_to_themselves(path: Path) -> None:
    text = read(path)
    assert fmt(text) == text


@pytest.mark.parametrize("path", PAIRS, ids=lambda p: p.stem)
def test_pairs_parse_equal_and_format_to_the_canonical_text(path: Path) -> None:
    canonical = read(path)
    given_text = read(path.with_name(path.stem + ".given.mecha"))
    assert parse_recipe(given_text) == parse_recipe(canonical)
    assert fmt(given_text) == canonical
    assert fmt(canonical) == canonical


@pytest.mark.parametrize("variant", variants("").keys())
@pytest.mark.parametrize("path", IDENTITY, ids=lambda p: p.stem)
def test_layout_variants_format_to_the_canonical_text(path: Path, variant: str) -> None:
    text = read(path)
    assert fmt(variants(text)[variant]) == text


def test_output_shape() -> None:
    out = fmt('\n  model "a"\t\r\n\r\ncall "scale" &0 alpha=1E2\n')
    assert out == 'version 0.1.0\nmodel "a"\nmerge "scale" &0 alpha=100.0'


@settings(max_examples=100, deadline=None)
@given(recipes())
def test_parse_of_format_is_identity(recipe: Recipe) -> None:
    text = format_recipe(recipe)
    assert parse_recipe(text) == recipe
    assert format_recipe(parse_recipe(text)) == text


MODEL_A = ModelNode("a", "sdxl-sgm", "weight")
MODEL_B = ModelNode("b", "sdxl-sgm", "weight")


def graph(text: str) -> RecipeGraph:
    return recipe_graph(parse_recipe(text))


def test_graph_form() -> None:
    text = (
        'model "a" model_config="sdxl-sgm" merge_space="weight"\n'
        'model "b" model_config="sdxl-sgm" merge_space="weight"\n'
        "dict IN00=1 BASE=0.5\n"
        'merge "weighted_sum" &1 &0 alpha=&2\n'
        'merge "cast" &3 device=null'
    )
    assert graph(text).nodes == (
        MODEL_B,
        MODEL_A,
        DictNode((("BASE", Const("float", 0.5)), ("IN00", Const("int", 1)))),
        MergeNode("weighted_sum", (Node(0), Node(1)), (("alpha", Node(2)),)),
        MergeNode("cast", (Node(3),), (("device", Const("null", None)),)),
    )


def test_graphs_ignore_order_duplicates_dialect_and_unused_lines() -> None:
    first = (
        'model "a" model_config="sdxl-sgm"\nmodel "b"\n'
        'merge "weighted_sum" &0 &1 alpha=0.5\nmerge "add_difference" &2 &2 alpha=1'
    )
    second = (
        "# the same merge, written differently\n"
        'model "b" model_config=null merge_space=null\nmodel "unused"\n'
        'model "a" model_config="sdxl-sgm"\nmodel "b"\n'
        'call "weighted_sum" &2 &0 alpha=0.5\ncall "weighted_sum" &2 &3 alpha=0.5\n'
        'call "add_difference" &4 &5 alpha=1'
    )
    assert graph(first) == graph(second)
    assert len(graph(first).nodes) == 4


@pytest.mark.parametrize(
    "changed",
    [
        ("alpha=0.5", "alpha=0.25"),
        ("alpha=1", "alpha=1.0"),
        ("&0 &1", "&1 &0"),
        ('"sdxl-sgm"', '"sd1-ldm"'),
        ("weighted_sum", "slerp"),
    ],
)
def test_graphs_tell_different_recipes_apart(changed: tuple[str, str]) -> None:
    text = (
        'model "a" model_config="sdxl-sgm"\nmodel "b"\n'
        'merge "weighted_sum" &0 &1 alpha=0.5\nmerge "add_difference" &2 &2 alpha=1'
    )
    assert graph(text) != graph(text.replace(*changed))


def test_long_chains_do_not_recurse() -> None:
    lines = ['model "a"'] + [f'merge "scale" &{i} alpha=0.5' for i in range(5000)]
    assert len(graph("\n".join(lines)).nodes) == 5001


def test_graph_of_a_rejected_recipe_raises() -> None:
    with pytest.raises(MircError):
        graph('merge "nope" 1')
