"""mirc against sd-mecha 1.1.8 itself: what mirc writes, sd-mecha reads, and the reverse.

Graphs are compared in mirc's canonical form; sd-mecha's recipe objects are walked into it by
``tests/sd_mecha_graph.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sd_mecha
from hypothesis import given, settings

from compiler.diagnostics import MircError
from compiler.lang.mecha.ast import Recipe
from compiler.lang.mecha.check import check_recipe
from compiler.lang.mecha.format import format_recipe
from compiler.lang.mecha.graph import recipe_graph, sd_mecha_form
from compiler.lang.mecha.parser import parse_recipe
from tests.conftest import ROOT
from tests.mecha_strategies import runnable_recipes
from tests.sd_mecha_graph import deserialized_graph, sd_mecha_graph

FIXTURES = ROOT / "tests" / "fixtures" / "mecha"
EVERY_RECIPE = [
    *sorted((FIXTURES / "identity").glob("*.mecha")),
    *sorted((FIXTURES / "pairs").glob("*.mecha")),
    *sorted((ROOT / "spec" / "recipes").glob("*.mecha")),
]


def errors(recipe: Recipe) -> list[str]:
    return [d.message for d in check_recipe(recipe) if d.is_error]


@pytest.mark.parametrize("path", EVERY_RECIPE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sd_mecha_reads_what_mirc_writes(path: Path) -> None:
    recipe = parse_recipe(path.read_text(encoding="utf-8"), str(path))
    assert errors(recipe) == []
    text = format_recipe(recipe)
    assert deserialized_graph(text) == sd_mecha_form(recipe_graph(recipe))


def models() -> list[Any]:
    """Models a, b, c and base (fresh nodes each time, like a user would build them)."""
    return [sd_mecha.model(f"models/{n}.safetensors", "sdxl-sgm") for n in ("a", "b", "c", "base")]


def _blocks() -> Any:
    values = {"BASE": 0.0, "IN00": 0.25, "OUT08": 1.0}
    return sd_mecha.literal(values, "sdxl-supermerger_blocks")


def _deltas() -> list[Any]:
    a, b, c, base = models()
    return [sd_mecha.subtract(m, base) for m in (a, b, c)]


# Recipes built with sd-mecha's Python API, by what they exercise.
API_RECIPES: dict[str, Callable[[], Any]] = {
    "weighted sum": lambda: sd_mecha.weighted_sum(*models()[:2], alpha=0.3),
    "add difference": lambda: sd_mecha.add_difference(*models()[:2], models()[3], alpha=0.7),
    "slerp": lambda: sd_mecha.slerp(*models()[:2], alpha=0.25),
    "ties sum of three deltas": lambda: sd_mecha.ties_sum(*_deltas(), k=0.5, vote_sgn=True),
    "per-block literal": lambda: sd_mecha.weighted_sum(*models()[:2], alpha=_blocks()),
    "n average": lambda: sd_mecha.n_average(*models()[:3]),
    "nested": lambda: sd_mecha.weighted_sum(
        sd_mecha.slerp(*models()[:2]),
        sd_mecha.add_difference(models()[2], *models()[:2]),
        alpha=0.6,
    ),
    "configs and spaces": lambda: sd_mecha.add_difference(
        sd_mecha.model("sd1/base.safetensors", "sd1-ldm"),
        sd_mecha.model("sd1/lora-delta.safetensors", "sd1-ldm", "delta"),
        alpha=1,
    ),
    "quotes and backslashes": lambda: sd_mecha.weighted_sum(
        sd_mecha.model('dir/we"ird\\name.safetensors', "sdxl-sgm"),
        sd_mecha.model("modèles/ünï 模型.safetensors"),
    ),
    "strings and none": lambda: sd_mecha.cast(models()[0], dtype="float16", device="cpu"),
    "varargs and keyword-only": lambda: sd_mecha.clamp(*models()[:3], stiffness=0.5),
    "ints and bools": lambda: sd_mecha.truncate_rank(
        sd_mecha.subtract(*models()[:2]), rank=16, use_approximate_basis=False
    ),
    "seeded dropout": lambda: sd_mecha.ties_sum_with_dropout(*_deltas(), probability=0.5, seed=42),
    "geometric median": lambda: sd_mecha.geometric_median(*models()[:3], eps=1e-8, maxiter=50),
    "fallback operator": lambda: models()[0] | models()[1],
}


@pytest.mark.parametrize("name", API_RECIPES)
def test_recipes_sd_mecha_writes(name: str) -> None:
    built = API_RECIPES[name]()
    text = sd_mecha.serialize(built, finalize=False)
    recipe = parse_recipe(text)
    assert format_recipe(recipe) == text  # byte for byte
    assert errors(recipe) == []
    assert recipe_graph(recipe) == deserialized_graph(text) == sd_mecha_graph(built)


HAND_WRITTEN = (
    'model "./a.safetensors" model_config="sdxl-sgm" merge_space="weight"\n'
    'model "b.safetensors" model_config="sdxl-sgm" merge_space="weight"\n'
    "dict BASE=0.5 IN00=1\n"
    'call "weighted_sum" &0 &1 alpha=&2\n'
    'call "subtract" &3 &1\n'
    'call "ties_sum" &4 &4 k=0.5\n'
    'call "add_difference" &0 &5\n'
    'call "cast" &6 dtype="float16"\n'
    'call "clamp" &7 &0 &1 stiffness=1'
)


def test_hand_written_recipes_bind_like_sd_mecha() -> None:
    """Defaults, keyword-to-positional, scalar and dict wrapping, path normalisation."""
    recipe = parse_recipe(HAND_WRITTEN)
    text = format_recipe(recipe)
    assert sd_mecha_form(recipe_graph(recipe)) == deserialized_graph(text)
    assert recipe_graph(recipe) != deserialized_graph(text)  # the binding step matters


@settings(max_examples=60, deadline=None)
@given(runnable_recipes())
def test_generated_recipes_check_format_and_run_in_sd_mecha(recipe: Recipe) -> None:
    assert errors(recipe) == []
    text = format_recipe(recipe)
    assert deserialized_graph(text) == sd_mecha_form(recipe_graph(recipe))


BASE = (
    "version 0.1.0\n"
    'model "a" model_config="sdxl-sgm" merge_space="weight"\n'
    'model "b" model_config="sdxl-sgm" merge_space="weight"\n'
    'merge "weighted_sum" &0 &1 alpha=0.5'
)
# What sd-mecha 1.1.8's reader refuses, and mirc reads and formats away.
SD_MECHA_REFUSES = {
    "final newline": BASE + "\n",
    "blank line": BASE.replace('\nmodel "b"', '\n\nmodel "b"'),
    "CRLF": BASE.replace("\n", "\r\n"),
    "byte-order mark": "\ufeff" + BASE,
    "tab between arguments": BASE.replace('model "b"', 'model\t"b"'),
    "comment above the version": "# note\n" + BASE,
    "no version line": BASE.split("\n", 1)[1],
    "call": BASE.replace('merge "', 'call "'),
}


@pytest.mark.parametrize("quirk", SD_MECHA_REFUSES)
def test_fmt_writes_what_sd_mecha_refuses_so_it_reads(quirk: str) -> None:
    text = SD_MECHA_REFUSES[quirk]
    with pytest.raises((ValueError, RuntimeError)):
        sd_mecha.deserialize(text)
    fixed = format_recipe(parse_recipe(text))
    assert deserialized_graph(fixed) == deserialized_graph(BASE)


def test_sd_mecha_reads_full_line_comments_so_fmt_keeps_them() -> None:
    text = BASE.replace('\nmodel "b"', '\n# a note\n   # indented\nmodel "b"')
    assert deserialized_graph(text) == deserialized_graph(BASE)
    assert format_recipe(parse_recipe(text)) == BASE.replace(
        '\nmodel "b"', '\n# a note\n# indented\nmodel "b"'
    )


def test_sd_mecha_writes_no_final_newline() -> None:
    assert not sd_mecha.serialize(sd_mecha.slerp(*models()[:2]), finalize=False).endswith("\n")


def test_equals_in_a_positional_string_is_sd_mechas_bug() -> None:
    """The seed says '=' in a quoted string is content; sd-mecha 1.1.8 splits there anyway.
    mirc reads it as content and warns."""
    text = BASE.replace('"a"', '"a=1.safetensors"')
    with pytest.raises(ValueError, match="argument 0"):
        sd_mecha.deserialize(text)
    found = check_recipe(parse_recipe(text))
    assert [d.code for d in found] == ["recipe-sd-mecha"]


# Problems both refuse: sd-mecha when it builds the graph, mirc before.
BOTH_REFUSE = {
    "unknown method": BASE.replace("weighted_sum", "weighted_summ"),
    "unknown keyword": BASE + " beta=1",
    "too many arguments": BASE.replace("&0 &1", "&0 &1 0.5 &0"),
    "literal of a number": BASE.replace("alpha=0.5", "alpha=&2").replace(
        'merge "w', 'literal 0.5\nmerge "w'
    ),
    "unknown model config": BASE.replace('"sdxl-sgm"', '"sdxl"', 1),
    "later reference": BASE.replace("&1", "&2"),
    "mixed dict": BASE.replace("alpha=0.5", "alpha=&2").replace(
        'merge "w', 'dict a=1 b="x"\nmerge "w'
    ),
}


@pytest.mark.parametrize("problem", BOTH_REFUSE)
def test_mirc_refuses_before_sd_mecha_does(problem: str) -> None:
    text = BOTH_REFUSE[problem]
    with pytest.raises((ValueError, KeyError, TypeError)):
        sd_mecha.deserialize(text)
    assert errors(parse_recipe(text))


LENIENT = {
    "unknown escape": BASE.replace('"a"', '"a\\n"'),
    "underscore in a number": BASE.replace("0.5", "1_0"),
    "overflowing number": BASE.replace("0.5", "1e400"),
    "leading zeros": BASE.replace("0.5", "007"),
}


@pytest.mark.parametrize("case", LENIENT)
def test_sd_mecha_is_lenient_where_mirc_is_strict(case: str) -> None:
    """sd-mecha reads '\\n' as 'n', 1_0 as 10, 1e400 as inf and 007 as 7; mirc refuses."""
    assert sd_mecha.deserialize(LENIENT[case]) is not None
    with pytest.raises(MircError):
        parse_recipe(LENIENT[case])
