"""The training-script plan: buckets, block rules, ModelSpec metadata, which variants get a
script, and the context being finished plain data."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from compiler.diagnostics import Span
from compiler.ir import Backend, Fingerprint, Series, Training, Variant
from compiler.lang.mir import parse_mir
from compiler.plan import plan_variant
from compiler.plan.trainer import (
    block_prefixes,
    buckets,
    modelspec,
    plan_training_files,
    trainable_variants,
    training_gaps,
)
from compiler.registry import check_registry
from compiler.render import pyliteral, render
from tests.training_support import TINY_SD, make_registry

SPAN = Span("t.yaml", 1, 1)
SD = Backend("diffusers", "StableDiffusionPipeline")


def series(variants: dict[str, Variant], mir: str = "mir:info.unet.toy") -> Series:
    return Series(parse_mir(mir), "series", "models/unet/toy.yaml", SPAN, variants)


def variant(compat: str, **fields: object) -> Variant:
    return Variant(parse_mir("mir:info.unet.toy").with_compat(compat), compat, SPAN, **fields)


def test_buckets_keep_the_area_and_aspect_limits() -> None:
    sizes = buckets(1024).value
    assert [1024, 1024] in sizes and [832, 1216] in sizes and [1216, 832] in sizes
    assert all(w * h <= 1024 * 1024 and w % 64 == 0 and h % 64 == 0 for w, h in sizes)
    assert all(max(w, h) / min(w, h) <= 2 for w, h in sizes)
    assert sizes == sorted(sizes, key=lambda s: (s[0] / s[1], s))
    assert buckets(32).value == [[24, 40], [32, 32], [40, 24]]


def test_block_rules_use_the_fingerprint_table_else_the_module_path() -> None:
    table = Fingerprint("diffusers", {"a": (1,)}, blocks={"IN04": ("down_blocks.1.attentions.0",)})
    toy = series({"base": variant("base", fingerprints=(table,))})
    found = block_prefixes(toy, toy.variants["base"], "unet", "IN04")
    assert found.value == ["down_blocks.1.attentions.0"] and "fingerprint" in found.reason
    path = block_prefixes(toy, toy.variants["base"], "unet", "up_blocks_1_attentions_2")
    assert path.value == ["up_blocks.1.attentions.2"]
    assert block_prefixes(toy, toy.variants["base"], "unet", "mid_block").value == ["mid_block"]


def test_which_variants_get_a_script() -> None:
    training = Training(resolution=64)
    toy = series(
        {
            "base": variant("base", backends=(SD,), training=training),
            "plain": variant("plain"),  # no training section
            "settings": variant("settings", backends=(Backend(None),), training=training),
            "img2img": variant(
                "img2img",
                backends=(Backend("diffusers", "StableDiffusionImg2ImgPipeline"),),
                training=training,
            ),
        }
    )
    assert [v.compat for v in trainable_variants(toy)] == ["base", "settings"]
    [(gap, reason)] = training_gaps(toy)
    assert gap.compat == "img2img" and "StableDiffusionPipeline" in reason


def test_modelspec_names_known_architectures_and_adapters() -> None:
    sdxl = series({"base": variant("base")}, "mir:info.unet.stable-diffusion-xl")
    lora = modelspec(sdxl, sdxl.variants["base"], "lora", "v-prediction", 1024)
    assert lora["modelspec.architecture"] == "stable-diffusion-xl-v1-base/lora"
    assert lora["modelspec.prediction_type"] == "v" and lora["modelspec.resolution"] == "1024x1024"
    toy = series({"turbo": variant("turbo")})
    full = modelspec(toy, toy.variants["turbo"], "full", None, 512)
    assert full["modelspec.architecture"] == "toy-turbo"
    assert "modelspec.prediction_type" not in full  # the script reads it from the scheduler


def test_context_is_plain_data_with_defaults_and_reasons(tmp_path: Path) -> None:
    result = check_registry(make_registry(tmp_path))
    assert result.linked is not None
    linked = result.linked
    toy = linked.series[parse_mir("mir:info.unet.tiny-sdxl")]
    plans = {v.id: plan_variant(linked, v) for v in toy.variants.values()}
    files = plan_training_files(linked, toy, plans)
    assert [f.path for f in files][:2] == [
        "training/unet/tiny_sdxl/cpu.py",
        "training/unet/tiny_sdxl/cpu_2.py",
    ]
    assert all(f.source == "models/unet/tiny-sdxl.yaml" for f in files)
    for planned in files:
        pyliteral(planned.context)  # refuses anything but plain data
    spec = files[0].context["spec"]
    base = spec["variants"]["base"]
    assert base["objective"]["value"] is None and "run time" in base["objective"]["reason"]
    lora = base["methods"]["lora"]
    assert lora["learning_rate"] == {"value": 1e-4, "reason": "the usual lora rate"}
    assert base["hyperparameters"]["length"]["value"] == {"epochs": 10, "max_steps": None}
    assert base["hyperparameters"]["lr_schedule"]["value"] == {
        "name": "constant",
        "warmup_steps": 0,
    }
    assert base["lora"]["target_modules"] == ["to_q", "to_k", "to_v", "to_out.0"]


def test_a_series_without_training_gets_no_files(tmp_path: Path) -> None:
    result = check_registry(make_registry(tmp_path))
    assert result.linked is not None
    empty = series({"base": variant("base", backends=(SD,))})
    assert plan_training_files(result.linked, empty, {}) == []


def test_layer_rules_become_globs_in_order(tmp_path: Path) -> None:
    result = check_registry(make_registry(tmp_path))
    assert result.linked is not None
    linked = result.linked
    toy = linked.series[parse_mir("mir:info.unet.tiny-sd")]
    plans = {v.id: plan_variant(linked, v) for v in toy.variants.values()}
    layers = plan_training_files(linked, toy, plans)[0].context["spec"]["variants"]["base"][
        "layers"
    ]
    assert [(r["globs"], r["lr_scale"], r["freeze"]) for r in layers] == [
        (["up_blocks.*"], 0.5, False),
        (["down_blocks.0.attentions.0.*"], 2.0, False),
        (["*.attn2.to_k.*"], None, True),
    ]
    assert layers[1]["reason"].startswith("block down_blocks_0_attentions_0")


def test_spec_strings_cannot_break_out_of_the_script(tmp_path: Path) -> None:
    """A layer glob and a display name full of quotes, newlines and braces stay data."""
    nasty = "x\"\"\" ''' {y} \r\n\u2028 # f'{__import__(\"os\")}'"
    text = TINY_SD.replace("name: Tiny SD", f"name: {json.dumps(nasty)}").replace(
        'match: "up_blocks.*"', f"match: {json.dumps('up_blocks.*' + nasty)}"
    )
    result = check_registry(make_registry(tmp_path, {"models/unet/tiny-sd.yaml": text}))
    assert result.ok and result.linked is not None, result.diagnostics
    toy = result.linked.series[parse_mir("mir:info.unet.tiny-sd")]
    assert toy.name == nasty
    plans = {v.id: plan_variant(result.linked, v) for v in toy.variants.values()}
    planned = plan_training_files(result.linked, toy, plans)[0]
    tree = ast.parse(render(planned.template, planned.context))
    [spec] = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SPEC"
    ]
    assert spec == planned.context["spec"]
    assert spec["variants"]["base"]["layers"][0]["globs"] == ["up_blocks.*" + nasty]
    title = spec["variants"]["base"]["methods"]["lora"]["metadata"]["modelspec.title"]
    assert title == f"{nasty} base LoRA"
