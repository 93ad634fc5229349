"""The method catalogue: equal to what the installed sd-mecha reports, and bound like Python."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import subprocess
import sys
from types import ModuleType

import pytest
import sd_mecha
from hypothesis import given, settings
from hypothesis import strategies as st
from sd_mecha.extensions import merge_methods

from compiler.lang.mecha.binding import bind
from compiler.lang.mecha.catalogue import load_catalogue
from tests.conftest import ROOT

GENERATOR = ROOT / "tools" / "gen_mecha_catalogue.py"
CATALOGUE = ROOT / "compiler" / "lang" / "mecha" / "methods.json"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_mecha_catalogue", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_catalogue_is_what_sd_mecha_reports() -> None:
    # In a fresh interpreter: other tests register model configs with sd-mecha (test_merge),
    # which would otherwise show up here depending on the order tests run in.
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_mecha_catalogue.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, "methods.json is stale; run python3 tools/gen_mecha_catalogue.py"


def test_catalogue_lists_every_method_conversions_included() -> None:
    catalogue = load_catalogue()
    assert set(catalogue.methods) == {m.identifier for m in merge_methods.get_all()}
    assert catalogue.methods["convert_singleton"].conversion
    assert catalogue.methods["convert_'sdxl-sgm'_to_'sdxl-kohya'"].conversion
    assert catalogue.methods["exchange_ema"].implementations == ("exchange_ema_'sd1-ldm'",)
    assert catalogue.sd_mecha_version == "1.1.8"
    assert catalogue.merge_spaces == ("delta", "param", "weight")
    assert "sdxl-sgm" in catalogue.model_configs


def test_a_method_in_detail() -> None:
    method = load_catalogue().methods["add_difference"]
    a, b, alpha = method.params
    assert (a.name, a.kind, a.type, a.state_dict) == ("a", "positional", "Tensor", True)
    assert a.space_symbol is not None and a.space_symbol == method.returns.space_symbol
    assert b.merge_spaces == {"delta"} and b.space_symbol is None
    assert (alpha.type, alpha.merge_spaces, alpha.default) == ("Tensor", {"param"}, 1.0)
    ties = load_catalogue().methods["ties_sum"]
    assert [(p.name, p.kind) for p in ties.params] == [
        ("models", "varargs"),
        ("k", "keyword"),
        ("vote_sgn", "keyword"),
    ]
    assert ties.returns.merge_spaces == {"delta"} and ties.returns.space_symbol is None


def test_no_compiler_module_imports_sd_mecha() -> None:
    """sd-mecha is a test dependency: mirc reads the catalogue, never sd-mecha itself."""
    for path in (ROOT / "compiler").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "sd_mecha" for n in names), path


METHOD_NAMES = sorted(load_catalogue().methods)
KEYWORD_NAMES = sorted(
    {p.name for m in load_catalogue().methods.values() for p in m.params} | {"nope", "kwargs"}
)


@settings(max_examples=300)
@given(
    st.sampled_from(METHOD_NAMES),
    st.integers(0, 5),
    st.lists(st.sampled_from(KEYWORD_NAMES), max_size=4, unique=True),
)
def test_binding_agrees_with_python(name: str, count: int, keywords: list[str]) -> None:
    """mirc's binder accepts exactly the calls sd-mecha's own signature accepts, except that
    ``**kwargs`` (sd-mecha's runtime context) cannot be set from a recipe."""
    method = load_catalogue().methods[name]
    ours = bind(method, list(range(count)), [(k, 0) for k in keywords])
    signature = merge_methods.resolve(name).get_signature()
    params = [p for p in signature.parameters.values() if p.kind != p.VAR_KEYWORD]
    try:
        inspect.Signature(params).bind(*range(count), **dict.fromkeys(keywords, 0))
        python_accepts = True
    except TypeError:
        python_accepts = False
    assert (not ours.problems) == python_accepts


def test_binding_problems_are_worded() -> None:
    method = load_catalogue().methods["weighted_sum"]
    problems = bind(method, [1, 2, 3, 4], [("alpah", 0), ("a", 0)]).problems
    assert [p.message for p in problems] == [
        "weighted_sum takes 3 positional arguments but 4 were given",
        "weighted_sum has no parameter 'alpah'",
        "'a' of weighted_sum is given twice",
    ]
    assert problems[1].notes == ("did you mean 'alpha'?",)
    missing = bind(method, [1], []).problems
    assert [p.message for p in missing] == ["weighted_sum is missing its argument 'b'"]


@pytest.mark.parametrize("name", ["weighted_sum", "ties_sum", "clamp", "cast"])
def test_defaults_match_sd_mecha(name: str) -> None:
    method = load_catalogue().methods[name]
    signature = sd_mecha.extensions.merge_methods.resolve(name).get_signature()
    for param in method.params:
        default = signature.parameters[param.name].default
        assert param.has_default == (default is not inspect.Parameter.empty)
        if param.has_default:
            assert json.dumps(param.default) == json.dumps(default)
