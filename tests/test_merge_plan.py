"""``mirc merge`` plans every key before reading one: components, literals, ``stack`` shapes.

sd-mecha's numbers for these methods are in ``test_merge.py``'s conformance test; here are the
registry's component tables, the refusals that come before any tensor is read (each at its place
in the recipe), and the pieces of the seeded methods that stand in for scipy.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.torch
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.diagnostics import MircError, render_text
from compiler.merge.blocks import Family, FamilyMatcher, registry_matcher
from compiler.merge.dropout import _binomial_subset_pmf, _ordinal_ranks, overlapping_sets_pmf
from compiler.merge.engine import MergeOptions, merge_recipe
from compiler.registry import check_registry
from compiler.resources import default_spec_dir
from tests.conftest import run_mirc
from tests.merge_support import no_reads, parts_family, write_models

AB = 'model "a"\nmodel "b"\n'
SD1_KEYS = {
    "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
    "model.diffusion_model.input_blocks.1.1.proj_in.weight": (320, 320, 1, 1),
    "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
    "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight": (1280, 768),
    "model.diffusion_model.output_blocks.11.0.skip_connection.weight": (320, 640, 1, 1),
    "model.diffusion_model.out.2.weight": (4, 320, 3, 3),
    "cond_stage_model.transformer.text_model.final_layer_norm.weight": (768,),
    "first_stage_model.post_quant_conv.bias": (4,),
    "model_ema.decay": (),
    "alphas_cumprod": (1000,),
}


@functools.cache
def _registry_matcher() -> FamilyMatcher:
    return registry_matcher(lambda: check_registry(default_spec_dir()).linked)


def _merge(folder: Path, text: str, **options: object) -> dict[str, torch.Tensor]:
    recipe = folder / "r.mecha"
    recipe.write_text(text, encoding="utf-8")
    out = folder / "out.safetensors"
    merge_recipe(MergeOptions(recipe, out, dtype="fp32", **options))  # type: ignore[arg-type]
    return safetensors.torch.load_file(str(out))


def _refused(folder: Path, text: str, **options: object) -> str:
    """The rendered diagnostics of a merge refused before any tensor is read."""
    with no_reads() as reads, pytest.raises(MircError) as caught:
        _merge(folder, text, **options)
    assert reads == []
    assert not (folder / "out.safetensors").exists()
    return "\n".join(render_text(d) for d in caught.value.diagnostics)


def _sd1_models(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    return write_models(folder, "ab", seed=3, shapes=SD1_KEYS)


# ---- components ---------------------------------------------------------------------------


def test_the_registry_gives_sd_mecha_s_components_for_sd1_and_sdxl() -> None:
    linked = check_registry(default_spec_dir()).linked
    assert linked is not None
    tables = {
        str(mir): fingerprint.components
        for mir, variant in linked.variants.items()
        for fingerprint in variant.fingerprints
        if fingerprint.components
    }
    sd1 = next(t for mir, t in tables.items() if "stable-diffusion-v1" in mir)
    sdxl = next(t for mir, t in tables.items() if "stable-diffusion-xl" in mir)
    # sd-mecha's sd1-ldm and sdxl-sgm component names, in their order
    assert tuple(sd1) == ("clip_l", "vae", "diffuser", "ema", "scheduler")
    assert tuple(sdxl) == ("clip_l", "clip_g", "vae", "diffuser", "scheduler")
    family = Family("mir:x", {}, sdxl)
    assert family.component_of("conditioner.embedders.1.model.text_projection") == "clip_g"
    assert family.component_of("conditioner.embedders.0.transformer.x") == "clip_l"
    assert family.component_of("model.diffusion_model.out.2.weight") == "diffuser"
    assert family.component_of("alphas_cumprod_prev") == "scheduler"
    assert family.component_of("something.else") is None


def test_pick_and_omit_component_follow_the_registry(tmp_path: Path) -> None:
    models = _sd1_models(tmp_path)
    matcher = _registry_matcher()
    picked = _merge(tmp_path, AB + 'merge "pick_component" &0 "clip_l"', family=matcher)
    clip = "cond_stage_model.transformer.text_model.final_layer_norm.weight"
    assert list(picked) == [clip]
    assert torch.equal(picked[clip], models["a"][clip].float())
    text = AB + 'merge "weighted_sum" &0 &1\nmerge "omit_component" &2 "vae"'
    kept = _merge(tmp_path, text, family=matcher)
    assert set(kept) == set(SD1_KEYS) - {"first_stage_model.post_quant_conv.bias"}
    text = AB + 'merge "pick_component" &0 "ema"\nmerge "fallback" &2 &1'
    mixed = _merge(tmp_path, text, family=matcher)
    assert torch.equal(mixed["model_ema.decay"], models["a"]["model_ema.decay"].float())
    assert torch.equal(mixed["alphas_cumprod"], models["b"]["alphas_cumprod"].float())


def test_a_component_the_layout_lacks_is_refused_at_its_place(tmp_path: Path) -> None:
    write_models(tmp_path, "ab")
    text = AB + 'merge "pick_component" &1 component="clip_g"'
    rendered = _refused(tmp_path, text, family=lambda header: parts_family())
    assert "r.mecha:3:37: error: the layout of mir:info.test.tiny has no component 'clip_g'" in (
        rendered
    )
    assert "^^^^^^^^" in rendered and "known: diffuser, vae" in rendered
    rendered = _refused(tmp_path, text, family=lambda header: None)
    assert "pick_component needs a model whose layout the registry knows" in rendered


def test_the_checker_knows_sd_mecha_s_component_names(tmp_path: Path) -> None:
    (tmp_path / "r.mecha").write_text(
        'model "a" model_config="sd1-ldm"\nmerge "omit_component" &0 "clip"'
    )
    run = run_mirc("recipe", "check", str(tmp_path / "r.mecha"))
    assert run.status == 1
    assert "r.mecha:2:27: error: model config sd1-ldm has no component 'clip'" in run.err
    assert "did you mean 'clip_l'?" in run.err


# ---- literals -----------------------------------------------------------------------------


def test_a_literal_key_no_input_has_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    write_models(tmp_path, "ab")
    text = AB + 'dict blk.0.weigth=0.5\nliteral &2\nmerge "weighted_sum" &0 &1 alpha=&3'
    rendered = _refused(tmp_path, text)
    assert "r.mecha:3:6: error: the literal's key 'blk.0.weigth' is neither a key of an input" in (
        rendered
    )
    assert "did you mean 'blk.0.weight'" in rendered


def test_a_literal_of_strings_is_not_an_output(tmp_path: Path) -> None:
    write_models(tmp_path, "ab")
    text = AB + 'dict blk.0.weight="x"\nliteral &2\nmerge "fallback" &3 &0'
    assert "output for 'blk.0.weight' is a string or a boolean" in _refused(tmp_path, text)


def test_a_literal_null_is_refused(tmp_path: Path) -> None:
    write_models(tmp_path, "ab")
    text = AB + 'dict blk.0.weight=null\nliteral &2\nmerge "fallback" &3 &0'
    assert "literal values that are numbers, strings, booleans" in _refused(tmp_path, text)


def test_a_blocks_literal_gives_values_by_block_and_none_elsewhere(tmp_path: Path) -> None:
    models = _sd1_models(tmp_path)
    text = (
        AB + "dict IN00=0 OUT11=1\n"
        'literal &2 model_config="sd1-supermerger_blocks" merge_space="param"\n'
        'merge "weighted_sum" &0 &1 alpha=&3'
    )
    merged = _merge(tmp_path, text, family=_registry_matcher())
    first = "model.diffusion_model.input_blocks.0.0.weight"
    last = "model.diffusion_model.out.2.weight"
    assert set(merged) == {
        first,
        last,
        "model.diffusion_model.output_blocks.11.0.skip_connection.weight",
    }
    assert torch.equal(merged[first], models["a"][first].float())
    assert torch.equal(merged[last], models["b"][last].float())


# ---- stack --------------------------------------------------------------------------------


def test_stack_shapes_are_planned_and_mismatches_refused(tmp_path: Path) -> None:
    write_models(tmp_path, "ab")
    merged = _merge(tmp_path, AB + 'merge "stack" &0 &1 &0')
    assert merged["blk.0.weight"].shape == (3, 6, 4)
    assert merged["norm.scale"].shape == (3,)
    (tmp_path / "out.safetensors").unlink()
    rendered = _refused(tmp_path, AB + 'merge "stack" &0 0.5')
    assert "r.mecha:3:1: error: cannot plan 'blk.0.bias': stack takes values of one shape" in (
        rendered
    )
    text = AB + 'merge "stack"\nmerge "fallback" &2 &0'
    assert "stack needs at least one value" in _refused(tmp_path, text)


# ---- the seeded methods -------------------------------------------------------------------


def test_a_dropout_overlap_sd_mecha_cannot_draw_is_reported(tmp_path: Path) -> None:
    write_models(tmp_path, "abc")
    text = (
        'model "a"\nmodel "b"\nmodel "c"\nmerge "subtract" &1 &0\nmerge "subtract" &2 &0\n'
        'merge "dropout" &3 &4 &3 overlap=2.5 overlap_emphasis=0.2 seed=1'
    )
    with pytest.raises(MircError) as caught:
        _merge(tmp_path, text)
    rendered = "\n".join(render_text(d) for d in caught.value.diagnostics)
    assert "r.mecha:6:1: error: dropout cannot merge" in rendered
    assert "negative subset probabilities" in rendered
    assert not (tmp_path / "out.safetensors").exists()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=40))
def test_ordinal_ranks_are_scipy_s(values: list[int]) -> None:
    from scipy.stats import rankdata

    tensor = torch.tensor(values, dtype=torch.float32)
    expected = rankdata(tensor.numpy(), method="ordinal")
    assert _ordinal_ranks(tensor).tolist() == expected.tolist()


@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_subset_weights_are_scipy_s_binomial(n: int, p: float) -> None:
    from scipy.stats import binom

    sizes = [bin(i).count("1") for i in range(1, 2**n)]
    by_size = binom.pmf(np.arange(1, n + 1), n, p)
    expected = np.array([by_size[k - 1] / math.comb(n, k) for k in sizes])
    expected /= expected.sum()
    np.testing.assert_allclose(_binomial_subset_pmf(n, p).numpy(), expected, rtol=1e-12)
    pmf = overlapping_sets_pmf(n, p, 0.3, 0.5)
    assert pmf.shape == (2**n,) and pmf[0] == p and np.isclose(pmf.sum(), 1)
