"""``mirc merge``: sd-mecha's numbers, static refusals before any read, atomic output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.torch
import torch

from compiler.diagnostics import MircError
from compiler.merge.engine import MergeOptions, merge_recipe
from compiler.merge.methods import METHODS
from compiler.tensorfile import write_sparse
from tests.conftest import run_mirc
from tests.merge_support import (
    PARTS_CONFIG,
    SD_MECHA_CONFIG,
    no_reads,
    parts_family,
    sd_mecha_merge,
    write_models,
)

AB = 'model "a"\nmodel "b"\n'
ABC = AB + 'model "c"\n'
OVERFLOW = 'merge "subtract" &0 &1\nmerge "scale" &2 alpha=2e38\n'
DELTAS = ABC + 'merge "subtract" &1 &0\nmerge "subtract" &2 &0\n'
PER_KEY = "dict blk.0.weight=0.1 blk.0.bias=0.2 blk.1.weight=0.3 norm.scale=0.4\n"
# (recipe, the output's merge space for sd-mecha)
CASES = {
    "weighted_sum": (AB + 'merge "weighted_sum" &0 &1 alpha=0.3', "weight"),
    "weighted_sum_default": (AB + 'merge "weighted_sum" &0 &1', "weight"),
    "add_difference": (
        ABC + 'merge "subtract" &1 &2\nmerge "add_difference" &0 &3 alpha=0.7',
        "weight",
    ),
    "subtract": (AB + 'merge "subtract" &0 &1', "delta"),
    "perpendicular_component": (AB + 'merge "perpendicular_component" &0 &1', "weight"),
    "slerp": (AB + 'merge "slerp" &0 &1 alpha=0.4', "weight"),
    "n_average": (ABC + 'merge "n_average" &0 &1 &2', "weight"),
    "scale": (AB + 'merge "subtract" &0 &1\nmerge "scale" &2 alpha=0.3', "delta"),
    "geometric_sum": (AB + 'merge "geometric_sum" &0 &1 alpha=0.25', "weight"),
    "add_cosine_a": (AB + 'merge "add_cosine_a" &0 &1 alpha=0.2', "weight"),
    "add_cosine_b": (AB + 'merge "add_cosine_b" &0 &1 alpha=0.2', "weight"),
    "clamp": (ABC + 'merge "clamp" &0 &1 &2', "weight"),
    "clamp_stiffness": (ABC + 'merge "clamp" &0 &1 &2 stiffness=0.5', "weight"),
    "tensor_sum": (AB + 'merge "tensor_sum" &0 &1 width=0.5 offset=0.25', "weight"),
    "tensor_sum_inverted": (AB + 'merge "tensor_sum" &0 &1 width=0.7 offset=0.6', "weight"),
    "top_k_tensor_sum": (AB + 'merge "top_k_tensor_sum" &0 &1 width=0.5 offset=0.1', "weight"),
    "train_difference_mask": (ABC + 'merge "train_difference_mask" &0 &1 &2', "param"),
    "add_opposite_mask": (ABC + 'merge "add_opposite_mask" &0 &1 &2 alpha=0.5', "param"),
    "add_strict_opposite_mask": (ABC + 'merge "add_strict_opposite_mask" &0 &1 &2', "param"),
    "cast": (AB + 'merge "cast" &0 dtype="bfloat16"', "weight"),
    "crossover": (AB + 'merge "crossover" &0 &1 alpha=0.3 tilt=0.4', "weight"),
    "crossover_sharp": (AB + 'merge "crossover" &0 &1 alpha=0.6', "weight"),
    "ties_sum": (
        ABC + 'merge "subtract" &1 &0\nmerge "subtract" &2 &0\nmerge "ties_sum" &3 &4 k=0.5',
        "delta",
    ),
    "ties_sum_extended": (
        ABC + 'merge "subtract" &1 &0\nmerge "subtract" &2 &0\nmerge "ties_sum_extended" &3 &4',
        "delta",
    ),
    "ties_sum_extended_median": (
        ABC
        + 'merge "subtract" &1 &0\nmerge "subtract" &2 &0\n'
        + 'merge "ties_sum_extended" &3 &4 apply_median=true vote_sgn=true',
        "delta",
    ),
    "model_stock": (
        ABC + 'merge "subtract" &1 &0\nmerge "subtract" &2 &0\nmerge "model_stock" &3 &4',
        "delta",
    ),
    "dropout": (
        ABC + 'merge "subtract" &1 &0\nmerge "subtract" &2 &0\nmerge "dropout" &3 &4 seed=42',
        "delta",
    ),
    "dropout_rescaled": (
        ABC
        + 'merge "subtract" &1 &0\nmerge "subtract" &2 &0\n'
        + 'merge "dropout" &3 &4 probability=0.5 rescale=0.5 seed=7',
        "delta",
    ),
    "geometric_median": (ABC + 'merge "geometric_median" &0 &1 &2', "weight"),
    "omit_non_finite": (AB + 'merge "omit_non_finite" &0', "weight"),
    # 2e38 overflows float32 in some keys, not in others
    "fallback": (AB + OVERFLOW + 'merge "omit_non_finite" &3\nmerge "fallback" &4 &2', "delta"),
    "truncate_rank": (
        AB + 'merge "subtract" &0 &1\nmerge "truncate_rank" &2 rank=2 approximate_basis_seed=3',
        "delta",
    ),
    "truncate_rank_exact": (
        AB + 'merge "subtract" &0 &1\nmerge "truncate_rank" &2 rank=1 use_approximate_basis=false',
        "delta",
    ),
    "rotate": (AB + 'merge "rotate" &0 &1', "weight"),
    "rotate_fractional": (AB + 'merge "rotate" &0 &1 alignment=0.5 alpha=0.3', "weight"),
    "rotate_integer_centred": (
        AB + 'merge "rotate" &0 &1 alignment=2 alpha=0.6 centralization=0.5',
        "weight",
    ),
    "multiply_quotient": (ABC + 'merge "multiply_quotient" &0 &1 &2 alpha=0.5', "weight"),
    "dropout_even_overlap": (DELTAS + 'merge "dropout" &3 &4 overlap=2 seed=3', "delta"),
    "dropout_fractional_overlap": (
        DELTAS + 'merge "dropout" &3 &4 probability=0.4 overlap=0.3 seed=4',
        "delta",
    ),
    "dropout_overlap_emphasis": (
        DELTAS + 'merge "dropout" &3 &4 &3 overlap=0.7 overlap_emphasis=0.5 seed=5',
        "delta",
    ),
    "ties_sum_with_dropout": (DELTAS + 'merge "ties_sum_with_dropout" &3 &4 seed=3', "delta"),
    # no seed: torch's generator starts from its fixed default seed, in sd-mecha as in mirc
    "ties_sum_with_dropout_unseeded": (
        DELTAS + 'merge "ties_sum_with_dropout" &3 &4 probability=0.3',
        "delta",
    ),
    "ties_sum_with_dropout_della": (
        DELTAS
        + 'merge "ties_sum_with_dropout" &3 &4 probability=0.5 della_eps=0.3 rescale=false '
        + "k=0.5 vote_sgn=true apply_stock=true seed=11",
        "delta",
    ),
    "ties_sum_with_dropout_median": (
        DELTAS + 'merge "ties_sum_with_dropout" &3 &4 &3 apply_median=true seed=2',
        "delta",
    ),
    "ties_sum_with_dropout_keep_none": (
        DELTAS + 'merge "ties_sum_with_dropout" &3 &4 probability=1.0',
        "delta",
    ),
    "stack": (ABC + 'merge "stack" &0 &1 &2', "weight"),
    "pick_component": (AB + 'merge "pick_component" &0 "vae"', "weight"),
    "omit_component": (
        AB + 'merge "weighted_sum" &0 &1\nmerge "omit_component" &2 component="vae"',
        "weight",
    ),
    "literal_per_key": (AB + PER_KEY + 'literal &2\nmerge "weighted_sum" &0 &1 alpha=&3', "weight"),
    # a literal without a value for a key gives the key no value: it is left out
    "literal_some_keys": (
        AB + 'dict blk.0.weight=0.1 norm.scale=0.4\nliteral &2 merge_space="param"\n'
        'merge "weighted_sum" &0 &1 alpha=&3',
        "weight",
    ),
    # numbers as the output: one 0-d tensor per key, as sd-mecha writes them
    "literal_output": (
        AB + 'dict blk.0.weight=0.1 norm.scale=0.4\nliteral &2\nmerge "fallback" &3 &1',
        "weight",
    ),
    "literal_of_models": (
        AB + "dict blk.0.weight=&0 blk.0.bias=&1 blk.1.weight=&0 norm.scale=&1\nliteral &2",
        "weight",
    ),
    "literal_of_strings": (
        AB + 'dict blk.0.weight="float16" blk.0.bias="bfloat16" blk.1.weight="float64" '
        'norm.scale="int8"\nliteral &2\nmerge "cast" &0 dtype=&3',
        "weight",
    ),
}
# cases on the tiny models split into components (sd-mecha's config; mirc's registry family)
COMPONENT_CASES = {"pick_component", "omit_component"}
# sd-mecha 1.1.8 passes numpy arrays to torch.lerp for any overlap but an odd integer, and fails
OVERLAP_CASES = {"dropout_even_overlap", "dropout_fractional_overlap", "dropout_overlap_emphasis"}


def _merge(folder: Path, text: str, **options: object) -> dict[str, torch.Tensor]:
    recipe = folder / "recipe.mecha"
    recipe.write_text(text, encoding="utf-8")
    out = folder / "out.safetensors"
    merge_recipe(MergeOptions(recipe, out, dtype="fp32", **options))  # type: ignore[arg-type]
    return safetensors.torch.load_file(str(out))


def test_every_method_has_a_conformance_case() -> None:
    merges = [text for text, _ in CASES.values() if 'merge "' in text]
    covered = {text.rsplit('merge "', 1)[1].split('"')[0] for text in merges}
    assert covered | {"subtract", "add_difference"} == set(METHODS)
    assert any(text.endswith("literal &2") for text, _ in CASES.values())


def _numpy_tolerant_lerp(
    original: Callable[..., torch.Tensor],
) -> Callable[..., torch.Tensor]:
    """``torch.lerp`` that takes numpy arrays as float64 tensors: the one change that lets
    sd-mecha 1.1.8's ``overlapping_sets_pmf`` run."""

    def lerp(start: object, end: object, weight: object) -> torch.Tensor:
        start, end = (
            torch.from_numpy(np.asarray(v, dtype=np.float64)) if isinstance(v, np.ndarray) else v
            for v in (start, end)
        )
        return original(start, end, weight)

    return lerp


@pytest.mark.parametrize("case", sorted(CASES))
def test_method_matches_sd_mecha(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, space = CASES[case]
    write_models(tmp_path)
    parts = case in COMPONENT_CASES
    ours = _merge(tmp_path, text, threads=2, family=lambda header: parts_family())
    if case in OVERLAP_CASES:
        monkeypatch.setattr(torch, "lerp", _numpy_tolerant_lerp(torch.lerp))
    config = PARTS_CONFIG if parts else SD_MECHA_CONFIG
    theirs = sd_mecha_merge(text, tmp_path, space, config)
    assert sorted(ours) == sorted(theirs)
    for key, value in ours.items():
        # sd-mecha's model stock turns a 0-d tensor into shape [1], and a ties_sum_with_dropout
        # that keeps nothing returns the number 0; mirc keeps the input's shape
        expected = theirs[key].reshape(value.shape) if theirs[key].dim() else theirs[key]
        expected = expected.expand(value.shape)
        torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-6, msg=key)


def test_output_is_deterministic_and_carries_metadata(tmp_path: Path) -> None:
    write_models(tmp_path)
    text = CASES["weighted_sum"][0]
    _merge(tmp_path, text, threads=1)
    first = (tmp_path / "out.safetensors").read_bytes()
    _merge(tmp_path, text, threads=4)
    assert (tmp_path / "out.safetensors").read_bytes() == first
    with safetensors.safe_open(str(tmp_path / "out.safetensors"), "pt") as handle:
        metadata = handle.metadata()
    assert metadata["mecha_recipe"].startswith('version 0.1.0\nmodel "a"')
    assert metadata["modelspec.sai_model_spec"] == "1.0.0"
    assert json.loads(metadata["mirc.merge_inputs"]) == ["a.safetensors", "b.safetensors"]
    assert set(json.loads(metadata["mirc.input_layouts"])) == {"a.safetensors", "b.safetensors"}


SD1 = {
    "model.diffusion_model.input_blocks.0.0.weight": ("F16", (320, 4, 3, 3)),
    "model.diffusion_model.input_blocks.1.1.proj_in.weight": ("F16", (320, 320, 1, 1)),
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (
        "F16",
        (49408, 768),
    ),
}
SDXL = {
    "model.diffusion_model.input_blocks.0.0.weight": ("F16", (320, 4, 3, 3)),
    "model.diffusion_model.input_blocks.4.1.proj_in.weight": ("F16", (640, 640)),
    "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (
        "F16",
        (49408, 768),
    ),
    "model.diffusion_model.input_blocks.1.1.proj_in.weight": ("F16", (320, 320)),
}


def test_a_key_without_a_value_is_an_error_unless_fallback(tmp_path: Path) -> None:
    write_models(tmp_path, "ab")
    text = AB + OVERFLOW + 'merge "omit_non_finite" &3'
    with pytest.raises(MircError, match=r"no value for 'blk\."):
        _merge(tmp_path, text)
    merged = _merge(tmp_path, text, missing="fallback")
    a = safetensors.torch.load_file(str(tmp_path / "a.safetensors"))
    assert torch.equal(merged["blk.0.weight"], a["blk.0.weight"].float())
    assert not torch.equal(merged["norm.scale"], a["norm.scale"].float())


def test_sd1_and_sdxl_are_refused_before_any_tensor_is_read(tmp_path: Path) -> None:
    write_sparse(tmp_path / "a.safetensors", SD1)
    write_sparse(tmp_path / "b.safetensors", SDXL)
    (tmp_path / "r.mecha").write_text(CASES["weighted_sum"][0], encoding="utf-8")
    with no_reads() as reads, pytest.raises(MircError) as caught:
        merge_recipe(MergeOptions(tmp_path / "r.mecha", tmp_path / "out.safetensors"))
    assert reads == []
    message = caught.value.diagnostics[0].message
    assert "a.safetensors" in message and "b.safetensors" in message
    assert "input_blocks.1.1.proj_in.weight" in message and "[320, 320, 1, 1]" in message
    assert not (tmp_path / "out.safetensors").exists()


def test_missing_keys_are_an_error_unless_fallback(tmp_path: Path) -> None:
    write_models(tmp_path, "a")
    tensors = safetensors.torch.load_file(str(tmp_path / "a.safetensors"))
    del tensors["norm.scale"]
    safetensors.torch.save_file(tensors, str(tmp_path / "b.safetensors"))
    text = CASES["weighted_sum"][0]
    with pytest.raises(MircError, match=r"no key 'norm\.scale'"):
        _merge(tmp_path, text)
    merged = _merge(tmp_path, text, missing="fallback")
    a = safetensors.torch.load_file(str(tmp_path / "a.safetensors"))
    torch.testing.assert_close(merged["norm.scale"], a["norm.scale"].float())


def test_cli_reports_a_missing_model_and_an_unsupported_method(tmp_path: Path) -> None:
    (tmp_path / "r.mecha").write_text('model "nowhere"\nmerge "exchange_ema" &0')
    run = run_mirc("merge", str(tmp_path / "r.mecha"), "-o", str(tmp_path / "o.st"))
    assert run.status == 1
    assert "cannot execute 'exchange_ema'" in run.err
    (tmp_path / "r.mecha").write_text(CASES["weighted_sum"][0])
    run = run_mirc("merge", str(tmp_path / "r.mecha"), "-o", str(tmp_path / "o.st"))
    assert run.status == 1 and "cannot find the model 'a'" in run.err
    assert run.err.splitlines()[0].startswith(f"{tmp_path / 'r.mecha'}:1:7: error:")


def test_a_mir_id_needs_a_model_dir(tmp_path: Path) -> None:
    write_models(tmp_path, "a")
    os.rename(tmp_path / "a.safetensors", tmp_path / "stable-diffusion-v1.safetensors")
    text = 'model "mir:info.unet.stable-diffusion-v1"\nmerge "scale" &0 alpha=0.5'
    (tmp_path / "r.mecha").write_text(text)
    run = run_mirc("merge", str(tmp_path / "r.mecha"), "-o", str(tmp_path / "o.st"))
    assert run.status == 1 and "--model-dir" in run.err


def test_a_killed_merge_leaves_no_output(tmp_path: Path) -> None:
    big = {f"k{i}": torch.zeros(512, 1024, dtype=torch.float16) for i in range(24)}
    for name in "ab":
        safetensors.torch.save_file(big, str(tmp_path / f"{name}.safetensors"))
    (tmp_path / "r.mecha").write_text(AB + 'merge "slerp" &0 &1 alpha=0.3')
    out = tmp_path / "out.safetensors"
    argv = [sys.executable, "-m", "compiler", "merge", "r.mecha", "-o", out.name, "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen(argv, cwd=tmp_path, env=env)
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".out.safetensors.*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()
    write_models(tmp_path, "ab")
    _merge(tmp_path, AB + 'merge "weighted_sum" &0 &1')
    assert out.exists()
    assert not list(tmp_path.glob(".out.safetensors.*"))


def test_the_command_line_offers_the_engine_choices() -> None:
    from compiler.cli import merge_cmd
    from compiler.merge import engine, inputs

    assert tuple(engine.OUTPUT_DTYPES) == merge_cmd.OUTPUT_DTYPES
    assert merge_cmd.MISSING_POLICIES == inputs.MISSING_POLICIES


SD1_FINGERPRINT = {
    "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
    "model.diffusion_model.input_blocks.1.1.proj_in.weight": (320, 320, 1, 1),
    "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
    "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight": (1280, 768),
    "model.diffusion_model.output_blocks.11.0.skip_connection.weight": (320, 640, 1, 1),
    "model.diffusion_model.out.2.weight": (4, 320, 3, 3),
}


def test_per_block_values_follow_the_registry_blocks_table(tmp_path: Path) -> None:
    from compiler.merge.blocks import registry_matcher
    from compiler.registry import check_registry
    from compiler.resources import default_spec_dir

    models = write_models(tmp_path, "ab", seed=1, shapes=SD1_FINGERPRINT)
    text = AB + "dict IN00=0.0 OUT11=1\n" + 'merge "weighted_sum" &0 &1 alpha=&2'
    matcher = registry_matcher(lambda: check_registry(default_spec_dir()).linked)
    merged = _merge(tmp_path, text, family=matcher)
    prefix = "model.diffusion_model."
    a, b = models["a"], models["b"]
    first, last = (
        prefix + "input_blocks.0.0.weight",
        prefix + "output_blocks.11.0.skip_connection.weight",
    )
    middle = prefix + "middle_block.1.transformer_blocks.0.attn2.to_k.weight"
    assert torch.equal(merged[first], a[first].float())
    assert torch.equal(merged[last], b[last].float())
    torch.testing.assert_close(
        merged[middle], torch.lerp(a[middle].float(), b[middle].float(), 0.5)
    )
    with safetensors.safe_open(str(tmp_path / "out.safetensors"), "pt") as handle:
        assert handle.metadata()["mir_id"].startswith("mir:info.unet.stable-diffusion-v1")


def test_per_block_values_need_a_known_layout(tmp_path: Path) -> None:
    write_models(tmp_path, "ab")
    text = AB + "dict IN00=0.0\n" + 'merge "weighted_sum" &0 &1 alpha=&2'
    with pytest.raises(MircError, match="per-block values need a model whose layout"):
        _merge(tmp_path, text, family=lambda header: None)
