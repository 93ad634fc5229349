"""Kohya LoRAs in recipes: sd-mecha's numbers and key names, refusals before any tensor is read."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import safetensors.torch
import torch

from compiler.diagnostics import MircError
from compiler.merge.engine import MergeOptions, merge_recipe
from compiler.merge.lora import namings
from compiler.tensorfile import SafetensorsHeader
from tests.conftest import ROOT, run_mirc

Shapes = Mapping[str, tuple[int, ...]]
RANK = 4

UNET = "model.diffusion_model."
SD1_BASE: Shapes = {
    UNET + "input_blocks.1.1.proj_in.weight": (320, 320, 1, 1),
    UNET + "input_blocks.1.1.proj_in.bias": (320,),
    UNET + "input_blocks.1.0.in_layers.0.weight": (320,),
    UNET + "input_blocks.1.0.in_layers.2.weight": (320, 320, 3, 3),
    UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
    UNET + "output_blocks.11.0.skip_connection.weight": (320, 640, 1, 1),
    "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight": (768, 768),
}
# module -> (lora_up, lora_down, lora_mid or None, alpha or None): a 1x1 convolution, a 3x3 one
# (LoCon), a linear layer without alpha, a Tucker core, the text encoder
SD1_LORA = {
    "lora_unet_down_blocks_0_attentions_0_proj_in": (
        (320, RANK, 1, 1),
        (RANK, 320, 1, 1),
        None,
        2.0,
    ),
    "lora_unet_down_blocks_0_resnets_0_conv1": ((320, RANK, 1, 1), (RANK, 320, 3, 3), None, 8.0),
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k": (
        (320, RANK),
        (RANK, 768),
        None,
        None,
    ),
    "lora_unet_up_blocks_3_resnets_2_conv_shortcut": (
        (320, RANK, 1, 1),
        (RANK, 640, 1, 1),
        (RANK, RANK, 1, 1),
        4.0,
    ),
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj": ((768, RANK), (RANK, 768), None, 1.0),
}

TE2 = "conditioner.embedders.1.model."
SDXL_BASE: Shapes = {
    UNET + "input_blocks.4.1.proj_in.weight": (640, 640),
    UNET + "input_blocks.4.1.proj_in.bias": (640,),
    UNET + "input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight": (640, 640),
    "conditioner.embedders.0.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight": (
        768,
        768,
    ),
    TE2 + "transformer.resblocks.0.attn.in_proj_weight": (3840, 1280),
    TE2 + "text_projection": (1280, 1280),
}


def _sdxl_lora(unet: str) -> dict[str, tuple[object, ...]]:
    """An SDXL LoRA with the UNet named ``unet`` (sgm or diffusers), both text encoders; the
    OpenCLIP attention's q, k and v stack into one key, its projection is transposed."""
    te2 = "lora_te2_text_model_encoder_layers_0_self_attn_"
    return {
        f"lora_unet_{unet}_proj_in": ((640, RANK), (RANK, 640), None, 3.0),
        f"lora_unet_{unet}_transformer_blocks_0_attn1_to_q": ((640, RANK), (RANK, 640), None, 8.0),
        "lora_te1_text_model_encoder_layers_0_self_attn_q_proj": (
            (768, RANK),
            (RANK, 768),
            None,
            1.0,
        ),
        **{f"{te2}{p}_proj": ((1280, RANK), (RANK, 1280), None, 2.0) for p in "qkv"},
        "lora_te2_text_projection": ((1280, RANK), (RANK, 1280), None, 4.0),
    }


SD1_RECIPE = """version 0.1.0
model "base.safetensors" model_config="sd1-ldm" merge_space="weight"
model "lora.safetensors" model_config="sd1-kohya_kohya_lora" merge_space="weight"
merge "convert_'sd1-kohya_kohya_lora'_to_base" &1
merge "convert_'sd1-kohya'_to_'sd1-ldm'" &2
merge "add_difference" &0 &3 alpha=0.7
merge "fallback" &4 &0
"""


def _sdxl_recipe(kohya: str) -> str:
    return f"""version 0.1.0
model "base.safetensors" model_config="sdxl-sgm" merge_space="weight"
model "lora.safetensors" model_config="{kohya}_kohya_lora" merge_space="weight"
merge "convert_'{kohya}_kohya_lora'_to_base" &1
merge "convert_'{kohya}'_to_'sdxl-sgm'" &2
merge "add_difference" &0 &3 alpha=0.6
merge "fallback" &4 &0
"""


def write_base(path: Path, shapes: Shapes, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    tensors = {k: torch.randn(s, generator=generator).to(torch.float16) for k, s in shapes.items()}
    safetensors.torch.save_file(tensors, str(path))
    return tensors


def write_lora(path: Path, modules: Mapping[str, tuple[object, ...]], seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for stem, (up, down, mid, alpha) in modules.items():
        for suffix, shape in (("lora_up", up), ("lora_down", down), ("lora_mid", mid)):
            if shape is not None:
                value = torch.randn(shape, generator=generator) / 10  # type: ignore[call-overload]
                tensors[f"{stem}.{suffix}.weight"] = value.to(torch.float16)
        if alpha is not None:
            tensors[f"{stem}.alpha"] = torch.tensor(alpha, dtype=torch.float16)
    safetensors.torch.save_file(tensors, str(path))


@contextlib.contextmanager
def reads() -> Iterator[list[str]]:
    """The tensors read (by name), wherever the merge reads them from."""
    from compiler.merge import evaluate, keyed

    seen: list[str] = []
    original = evaluate.read_tensor

    def spy(fd: int, header: SafetensorsHeader, key: str) -> torch.Tensor:
        seen.append(key)
        return original(fd, header, key)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate, "read_tensor", spy)
        patch.setattr(keyed, "read_tensor", spy)
        yield seen


@pytest.fixture
def sd_mecha_sd1_conversion(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """sd-mecha 1.1.8's ``convert_'sd1-kohya'_to_'sd1-ldm'`` reads ``relation["kohya_sd"]``,
    which its ``RealizedKeyRelation`` cannot answer (its SDXL conversions read
    ``relation.inputs[…]``): every SD1 LoRA applied to an ldm checkpoint fails there. The
    method's intent is plain; this gives the relation that subscript for the comparison."""
    from sd_mecha.keys_map import RealizedKeyRelation

    monkeypatch.setattr(
        RealizedKeyRelation, "__getitem__", lambda self, name: self.inputs[name], raising=False
    )
    yield


def sd_mecha_merge(text: str, folder: Path) -> dict[str, torch.Tensor]:
    import sd_mecha

    from tests.merge_support import _Quiet

    for name in ("base", "lora"):
        text = text.replace(f'"{name}.safetensors"', f'"{folder / name}.safetensors"')
    merged = sd_mecha.merge(
        sd_mecha.deserialize(text.splitlines()),
        output_dtype=torch.float32,
        strict_merge_space="weight",
        check_extra_keys=False,
        threads=0,
        tqdm=_Quiet,
    )
    assert isinstance(merged, dict)
    return {k: v for k, v in merged.items() if isinstance(v, torch.Tensor)}


def mirc_merge(folder: Path, text: str, **options: object) -> dict[str, torch.Tensor]:
    recipe = folder / "recipe.mecha"
    recipe.write_text(text, encoding="utf-8")
    out = folder / "out.safetensors"
    merge_recipe(MergeOptions(recipe, out, dtype="fp32", **options))  # type: ignore[arg-type]
    return safetensors.torch.load_file(str(out))


def assert_same(ours: Mapping[str, torch.Tensor], theirs: Mapping[str, torch.Tensor]) -> None:
    assert sorted(ours) == sorted(theirs)
    for key, value in ours.items():
        torch.testing.assert_close(value, theirs[key], rtol=1e-6, atol=1e-6, msg=key)


@pytest.mark.usefixtures("sd_mecha_sd1_conversion")
def test_sd1_lora_matches_sd_mecha(tmp_path: Path) -> None:
    base = write_base(tmp_path / "base.safetensors", SD1_BASE)
    write_lora(tmp_path / "lora.safetensors", SD1_LORA)
    ours = mirc_merge(tmp_path, SD1_RECIPE, threads=2)
    assert_same(ours, sd_mecha_merge(SD1_RECIPE, tmp_path))
    untouched = UNET + "input_blocks.1.1.proj_in.bias"
    assert torch.equal(ours[untouched], base[untouched].float())
    changed = UNET + "output_blocks.11.0.skip_connection.weight"
    assert not torch.equal(ours[changed], base[changed].float())


@pytest.mark.parametrize(
    ("kohya", "unet"),
    [
        ("sdxl-kohya", "input_blocks_4_1"),
        ("sdxl-kohya_but_diffusers", "down_blocks_1_attentions_0"),
    ],
)
def test_sdxl_lora_matches_sd_mecha(kohya: str, unet: str, tmp_path: Path) -> None:
    write_base(tmp_path / "base.safetensors", SDXL_BASE)
    write_lora(tmp_path / "lora.safetensors", _sdxl_lora(unet))
    text = _sdxl_recipe(kohya)
    assert_same(mirc_merge(tmp_path, text), sd_mecha_merge(text, tmp_path))


def test_the_delta_is_up_at_down_times_alpha_over_rank(tmp_path: Path) -> None:
    base = write_base(tmp_path / "base.safetensors", SD1_BASE)
    write_lora(tmp_path / "lora.safetensors", SD1_LORA)
    lora = safetensors.torch.load_file(str(tmp_path / "lora.safetensors"))
    text = 'model "base"\nmodel "lora"\ncall "add_difference" &0 &1 alpha=0.5'
    merged = mirc_merge(tmp_path, text, missing="fallback")
    stem = "lora_unet_down_blocks_0_resnets_0_conv1"
    up, down = (lora[f"{stem}.lora_{p}.weight"].float() for p in ("up", "down"))
    delta = (up.reshape(320, RANK) @ down.reshape(RANK, -1)) * (8.0 / RANK)
    key = UNET + "input_blocks.1.0.in_layers.2.weight"
    expected = base[key].float() + 0.5 * delta.reshape(320, 320, 3, 3)
    torch.testing.assert_close(merged[key], expected, rtol=1e-5, atol=1e-5)


def test_each_lora_tensor_is_read_once_with_its_key(tmp_path: Path) -> None:
    write_base(tmp_path / "base.safetensors", SD1_BASE)
    write_lora(tmp_path / "lora.safetensors", SD1_LORA)
    with reads() as seen:
        mirc_merge(tmp_path, SD1_RECIPE, threads=1)
    lora = safetensors.torch.load_file(str(tmp_path / "lora.safetensors"))
    assert sorted(k for k in seen if k.startswith("lora_")) == sorted(lora)
    # streaming: a key's LoRA tensors are read right after that key's base tensor
    at = seen.index(UNET + "input_blocks.1.0.in_layers.2.weight")
    conv = "lora_unet_down_blocks_0_resnets_0_conv1"
    assert set(seen[at + 1 : at + 4]) == {
        f"{conv}.{s}" for s in ("lora_down.weight", "alpha", "lora_up.weight")
    }


def test_a_lora_of_another_family_is_refused_before_any_read(tmp_path: Path) -> None:
    write_base(tmp_path / "base.safetensors", SD1_BASE)
    write_lora(tmp_path / "lora.safetensors", _sdxl_lora("input_blocks_4_1"))
    text = 'model "base"\nmodel "lora"\ncall "add_difference" &0 &1'
    with reads() as seen, pytest.raises(MircError) as caught:
        mirc_merge(tmp_path, text, missing="fallback")
    assert seen == []
    (diagnostic,) = caught.value.diagnostics
    assert "'lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight'" in (
        diagnostic.message
    )
    assert "names no key of the base model" in diagnostic.message
    assert diagnostic.span is not None and diagnostic.span.line == 2
    assert not (tmp_path / "out.safetensors").exists()


def test_an_unmapped_key_is_named(tmp_path: Path) -> None:
    write_base(tmp_path / "base.safetensors", SD1_BASE)
    modules = dict(SD1_LORA)
    modules["lora_unet_down_blocks_9_nowhere"] = ((320, RANK), (RANK, 320), None, 1.0)
    write_lora(tmp_path / "lora.safetensors", modules)
    with reads() as seen, pytest.raises(MircError, match="lora_unet_down_blocks_9_nowhere"):
        mirc_merge(tmp_path, SD1_RECIPE)
    assert seen == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lora_te_x.hada_w1_a": ((2, 2),)}, "'lora_te_x.hada_w1_a' is not a kohya LoRA key"),
        ("drop-down", "has no 'lora_down.weight'"),
        ("wrong-rank", "have different ranks"),
        ("wrong-size", "does not fit"),
    ],
)
def test_malformed_loras_are_refused_before_any_read(
    change: object, message: str, tmp_path: Path
) -> None:
    write_base(tmp_path / "base.safetensors", SD1_BASE)
    write_lora(tmp_path / "lora.safetensors", SD1_LORA)
    tensors = safetensors.torch.load_file(str(tmp_path / "lora.safetensors"))
    stem = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    if isinstance(change, dict):
        tensors |= {k: torch.zeros(v[0]) for k, v in change.items()}
    elif change == "drop-down":
        del tensors[f"{stem}.lora_down.weight"]
    elif change == "wrong-rank":
        tensors[f"{stem}.lora_down.weight"] = torch.zeros(RANK + 1, 768)
    else:
        tensors[f"{stem}.lora_down.weight"] = torch.zeros(RANK, 700)
    safetensors.torch.save_file(tensors, str(tmp_path / "lora.safetensors"))
    with reads() as seen, pytest.raises(MircError, match=message):
        mirc_merge(tmp_path, SD1_RECIPE)
    assert seen == []


def test_keys_the_lora_does_not_train_need_a_fallback(tmp_path: Path) -> None:
    write_base(tmp_path / "base.safetensors", SD1_BASE)
    write_lora(tmp_path / "lora.safetensors", SD1_LORA)
    text = 'model "base"\nmodel "lora"\ncall "add_difference" &0 &1'
    with reads() as seen, pytest.raises(MircError) as caught:
        mirc_merge(tmp_path, text)
    assert seen == []
    (diagnostic,) = caught.value.diagnostics
    assert "does not train it" in diagnostic.message
    assert 'merge "fallback" &2 &0' in diagnostic.notes[0]
    mirc_merge(tmp_path, text + '\ncall "fallback" &2 &0')  # as the note says


def test_a_conversion_of_a_full_model_is_refused(tmp_path: Path) -> None:
    write_base(tmp_path / "base.safetensors", SD1_BASE)
    text = "model \"base\"\nmerge \"convert_'sd1-ldm'_to_'sd1-kohya'\" &0"
    with reads() as seen, pytest.raises(MircError, match="only on a kohya LoRA"):
        mirc_merge(tmp_path, text)
    assert seen == []


def test_cli_applies_a_lora(tmp_path: Path) -> None:
    base = write_base(tmp_path / "base.safetensors", SD1_BASE)
    write_lora(tmp_path / "lora.safetensors", SD1_LORA)
    (tmp_path / "r.mecha").write_text(
        'model "base"\nmodel "lora"\ncall "add_difference" &0 &1 alpha=0.8\ncall "fallback" &2 &0\n'
    )
    out = tmp_path / "merged.safetensors"
    run = run_mirc("merge", str(tmp_path / "r.mecha"), "-o", str(out), "--dtype", "fp32")
    assert run.status == 0, run.err
    merged = safetensors.torch.load_file(str(out))
    assert sorted(merged) == sorted(base)
    key = "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged[key], base[key].float())
    bias = UNET + "input_blocks.1.1.proj_in.bias"
    assert torch.equal(merged[bias], base[bias].float())
    (tmp_path / "bad.mecha").write_text('model "base"\nmodel "lora"\ncall "add_difference" &0 &1\n')
    run = run_mirc("merge", str(tmp_path / "bad.mecha"), "-o", str(out))
    assert run.status == 1
    assert run.err.startswith(f"{tmp_path / 'bad.mecha'}:2:7: error: the recipe gives no value")


def test_names_are_what_sd_mecha_reports() -> None:
    # in a fresh interpreter: other tests register model configs with sd-mecha
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_kohya_names.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, "kohya_names.json is stale; run python3 tools/gen_kohya_names.py"


def test_names_give_sd_mechas_key_for_every_trainable_key() -> None:
    from sd_mecha.extensions import merge_methods, model_configs

    for naming in namings():
        lora = model_configs.resolve(naming.lora_config)
        (to_original,) = (c for c in naming.conversions if not c.endswith("_to_base"))
        original = model_configs.resolve(to_original.rsplit("_to_", 1)[1].strip("'"))
        method = merge_methods.resolve(to_original)
        lora_keys = set(lora.keys())
        checked = 0
        for relation in method.build_key_map([lora.base_config], {}, original):
            (clause,) = relation.clauses
            (kohya,) = clause.by_param.values()
            for key in relation.outputs:
                stems = {naming.stem(part) for part in kohya}
                if any(f"{stem}.lora_up.weight" in lora_keys for stem in stems):
                    assert naming.kohya_keys(key)[0] == tuple(kohya), key
                    checked += 1
        assert checked > 400, naming.lora_config


def test_two_loras_in_any_order_apply_to_the_full_model(tmp_path: Path) -> None:
    base = write_base(tmp_path / "base.safetensors", SD1_BASE)
    write_lora(tmp_path / "one.safetensors", SD1_LORA, seed=1)
    write_lora(tmp_path / "two.safetensors", SD1_LORA, seed=2)
    text = (
        'model "one"\nmodel "base"\nmodel "two"\n'
        'merge "add_difference" &1 &0 alpha=0.5\nmerge "add_difference" &3 &2 alpha=0.25\n'
        'merge "fallback" &4 &1\n'
    )
    merged = mirc_merge(tmp_path, text)
    key = "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight"
    stem = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    deltas = []
    for name in ("one", "two"):
        lora = safetensors.torch.load_file(str(tmp_path / f"{name}.safetensors"))
        up, down = (lora[f"{stem}.lora_{p}.weight"].float() for p in ("up", "down"))
        deltas.append((up @ down) * (lora[f"{stem}.alpha"].float() / RANK))
    expected = base[key].float() + 0.5 * deltas[0] + 0.25 * deltas[1]
    torch.testing.assert_close(merged[key], expected, rtol=1e-5, atol=1e-5)
