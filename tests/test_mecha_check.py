"""Checking recipes before any tensor is read: one case per kind of problem."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from compiler.diagnostics import Diagnostic, render_text
from compiler.lang.mecha.check import ResolvedModel, check_recipe
from compiler.lang.mecha.parser import parse_recipe
from compiler.lang.mir import MirId
from tests.conftest import ROOT
from tests.mecha_strategies import recipes

MODELS = (
    'model "a" model_config="sdxl-sgm" merge_space="weight"\n'
    'model "b" model_config="sdxl-sgm" merge_space="weight"\n'
)


def check(text: str) -> list[Diagnostic]:
    return check_recipe(parse_recipe(text, "t.mecha"))


def errors(text: str) -> list[str]:
    return [d.message for d in check(text) if d.is_error]


def test_the_seed_example_is_clean() -> None:
    text = (ROOT / "spec" / "recipes" / "seed-example.mecha").read_text(encoding="utf-8")
    assert check(text) == []


CASES = {
    "self reference": ('model "a"\nmerge "scale" &1', "&1 refers to its own line"),
    "later line": ('merge "scale" &1\nmodel "a"', "&1 refers to a later line"),
    "out of range": ('model "a"\nmerge "scale" &7', "&7 is out of range; the recipe's"),
    "unknown method": ('model "a"\nmerge "wieghted_sum" &0 &0', "unknown merge method"),
    "too many": ('model "a"\nmerge "subtract" &0 &0 &0', "subtract takes 2 positional"),
    "missing": ('model "a"\nmerge "subtract" &0', "subtract is missing its argument 'b'"),
    "unknown keyword": ('model "a"\nmerge "scale" &0 beta=1', "scale has no parameter 'beta'"),
    "twice": ('model "a"\nmerge "scale" &0 1 alpha=1', "'alpha' of scale is given twice"),
    "string for a tensor": (
        MODELS + 'merge "weighted_sum" &0 &1 alpha="half"',
        "'alpha' of weighted_sum takes a model, a merge result or a number, not a string",
    ),
    "model for a float": (
        MODELS + 'merge "crossover" &0 &1 alpha=&0',
        "'alpha' of crossover takes a number, not &0 (a model)",
    ),
    "float for an int": (
        MODELS + 'merge "rotate" &0 &1 stiefel_max_iters=1.5',
        "'stiefel_max_iters' of rotate takes an integer, not a number",
    ),
    "int for a bool": (
        MODELS + 'merge "subtract" &0 &1\nmerge "ties_sum" &2 vote_sgn=1',
        "'vote_sgn' of ties_sum takes true or false, not an integer",
    ),
    "null where required": (MODELS + 'merge "subtract" &0 null', "'b' of subtract cannot be null"),
    "dict of strings for a tensor": (
        MODELS + 'dict BASE="x"\nmerge "weighted_sum" &0 &1 alpha=&2',
        "'alpha' of weighted_sum takes a model, a merge result or a number, not &2 (a dict of "
        "strings)",
    ),
    "literal of a model": ('model "a"\nliteral &0', "literal takes a dict (a reference"),
    "dict in a dict": ("dict a=1\ndict b=&0", "a dict cannot hold a dict ('b' is &0"),
    "mixed dict": ('dict a=1 b="x"', "a dict's values must be of one kind: 'a' is an integer"),
    "dict of models in two spaces": (
        'model "a" merge_space="weight"\nmodel "b" merge_space="delta"\ndict x=&0 y=&1',
        "a dict's recipe values must share one merge space: 'x' and 'y' differ",
    ),
    "fixed merge space": (
        MODELS + 'merge "add_difference" &0 &1',
        "merge space mismatch: 'b' of add_difference takes delta, but &1 (a model) is in weight",
    ),
    "shared merge space": (
        MODELS + 'merge "subtract" &0 &1\nmerge "weighted_sum" &0 &2',
        "merge space mismatch: weighted_sum takes 'a' and 'b' in one merge space, but &0 (a "
        "model) is in weight space and &2 (the result of subtract) in delta space",
    ),
    "model configs": (
        'model "a" model_config="sdxl-sgm"\nmodel "b" model_config="sd1-ldm"\n'
        'merge "weighted_sum" &0 &1',
        "model config mismatch in weighted_sum: &0 (a model) is sdxl-sgm but &1 (a model) is "
        "sd1-ldm",
    ),
    "conversion input": (
        'model "a" model_config="sd1-ldm"\nmerge "convert_\'sdxl-sgm\'_to_\'sdxl-kohya\'" &0',
        "'sgm_sd' of convert_'sdxl-sgm'_to_'sdxl-kohya' takes a sdxl-sgm model, but &0 (a "
        "model) is sd1-ldm",
    ),
    "unknown model config": ('model "a" model_config="sdxl"', "unknown model config 'sdxl'"),
    "unknown merge space": ('model "a" merge_space="weights"', "unknown merge space 'weights'"),
    "config is a string": ('model "a" model_config=1', "a model config is a string or null"),
    "MIR id": ('model "mir:info.unet.SDXL"', "MIR identifiers are lowercase"),
    "component of the config": (
        'model "a" model_config="sdxl-sgm"\nmerge "pick_component" &0 "ema"',
        "model config sdxl-sgm has no component 'ema'",
    ),
    "component of no config": (
        'model "a"\nmerge "omit_component" &0 component="unet"',
        "no model config has a component 'unet'",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_kind_of_problem(case: str) -> None:
    text, message = CASES[case]
    found = errors(text)
    assert len(found) == 1, found
    assert found[0].startswith(message), found[0]


NOTES = {
    'model "a"\nmerge "wieghted_sum" &0 &0': "did you mean 'weighted_sum' or 'ties_sum'?",
    'model "a" merge_space="weights"': "did you mean 'weight'?",
    MODELS + 'merge "weighted_sum" &0 &1 alpah=1': "did you mean 'alpha'?",
    MODELS + 'merge "add_difference" &0 &1': "a delta is a difference of two models: "
    'merge "subtract" &A &B',
    'model "a"\nmerge "pick_component" &0 "clip"': "did you mean 'clip_l' or 'clip_g'?",
    MODELS + 'merge "pick_component" &0 "text"': "known: clip_l, clip_g, vae, diffuser, scheduler",
}


@pytest.mark.parametrize(("text", "note"), NOTES.items())
def test_notes_help(text: str, note: str) -> None:
    [diagnostic] = [d for d in check(text) if d.is_error]
    assert diagnostic.notes == (note,)


def test_what_sd_mecha_allows_passes() -> None:
    text = (
        MODELS + 'model "c" model_config="sdxl-kohya" merge_space="weight"\n'
        "dict BASE=0.5 IN00=1\n"
        'literal &3 model_config="sdxl-supermerger_blocks"\n'
        'merge "weighted_sum" &0 &2 alpha=&4\n'  # kohya converts to sgm; blocks too
        'merge "subtract" &5 &1\n'
        'merge "ties_sum" &6 &6 k=1 vote_sgn=true\n'
        'merge "add_difference" &0 &7 alpha=0.5\n'
        'merge "cast" &8 dtype="float16" device=null\n'
        'merge "clamp" &9 &0 &1 stiffness=0'
    )
    assert check(text) == []


def test_every_problem_is_reported_errors_first_in_line_order() -> None:
    text = (
        'model "a"\nmerge "nope" &0\nmerge "subtract" &0 &9\nmodel "b" merge_space="x"\n'
        'merge "scale" &0'
    )
    found = check(text)
    assert [(d.severity.value, d.span.line) for d in found if d.span] == [
        ("error", 2),
        ("error", 3),
        ("error", 4),
        ("warning", 2),
        ("warning", 3),
        ("warning", 4),
    ]


def test_unused_expressions_and_sd_mecha_quirks_are_warnings() -> None:
    found = check('model "a=1.safetensors"\nmodel "b"\nmerge "scale" &1')
    assert [d.message for d in found] == [
        "&0 is never used; only the last expression is the output",
        "sd-mecha 1.1.8 cannot read '=' inside a positional string",
    ]
    assert not any(d.is_error for d in found)


def test_mir_id_errors_point_into_the_string() -> None:
    [diagnostic] = check('model   "mir:info.unet.SDXL"')
    lines = render_text(diagnostic).splitlines()
    assert lines[0] == "t.mecha:1:24: error: MIR identifiers are lowercase"
    assert lines[2].index("^") == lines[1].index("SDXL")


def test_mir_ids_resolve_through_a_hook() -> None:
    def resolver(mir: MirId) -> ResolvedModel | None:
        if mir.series == "stable-diffusion-xl":
            return ResolvedModel("/models/sdxl.safetensors", "sdxl-sgm")
        return None

    text = (
        'model "mir:info.unet.stable-diffusion-xl"\nmodel "b" model_config="sd1-ldm"\n'
        'merge "weighted_sum" &0 &1\nmodel "mir:info.unet.unknown"\nmerge "scale" &3'
    )
    found = check_recipe(parse_recipe(text), resolver=resolver)
    assert [d.message for d in found if d.is_error] == [
        "model config mismatch in weighted_sum: &0 (a model) is sdxl-sgm but &1 (a model) is "
        "sd1-ldm",
        "no model in the registry has the id mir:info.unet.unknown",
    ]
    assert not [d for d in check(text) if d.is_error]  # without a registry: syntax only


@settings(max_examples=100, deadline=None)
@given(recipes())
def test_checking_never_raises(recipe: object) -> None:
    found = check_recipe(recipe)  # type: ignore[arg-type]
    assert all(d.span is not None for d in found)
