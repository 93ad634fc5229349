"""``model "mir:…"`` lines: the file found by name, else the one file that identifies as the id."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

from compiler.diagnostics import MircError
from compiler.identify import registry_identifier
from compiler.lang.mir import parse_mir
from compiler.link import LinkedRegistry
from compiler.merge.engine import MergeOptions, MergePlan, plan_merge
from compiler.merge.locate import Identifier
from compiler.registry import check_registry
from compiler.resources import default_spec_dir
from compiler.tensorfile import write_sparse
from tests.conftest import run_mirc

SD1 = "mir:info.unet.stable-diffusion-v1"
SDXL = "mir:info.unet.stable-diffusion-xl"
SD1_LORA = "mir:info.lora.lora:stable-diffusion-v1"
RECIPE = f'model "{SD1}"\nmerge "scale" &0 alpha=0.5\n'


@functools.cache
def linked() -> LinkedRegistry:
    registry = check_registry(default_spec_dir()).linked
    assert registry is not None
    return registry


@pytest.fixture(scope="module")
def identify() -> Identifier:
    return registry_identifier(linked)


def write_family(path: Path, mir: str, file_format: str) -> Path:
    """A header-only file with the keys and shapes of a registry fingerprint (sizes it leaves
    open set to 4)."""
    variant = linked().variants[parse_mir(mir if ":" in mir[4:] else mir + ":base")]
    fingerprint = next(f for f in variant.fingerprints if f.format == file_format)
    shapes = {k: ("F16", [s or 4 for s in shape]) for k, shape in fingerprint.required.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_sparse(path, shapes)
    return path


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """A recipe folder and a model folder holding an SD1 checkpoint (in a subfolder), an SDXL
    one and an SD1 LoRA."""
    recipe_dir, model_dir = tmp_path / "recipes", tmp_path / "models"
    recipe_dir.mkdir()
    write_family(model_dir / "sd15" / "dreamy.safetensors", SD1, "ldm")
    write_family(model_dir / "xl.safetensors", SDXL, "sgm")
    write_family(model_dir / "detail-lora.safetensors", SD1_LORA, "kohya-lora")
    (recipe_dir / "r.mecha").write_text(RECIPE, encoding="utf-8")
    return recipe_dir, model_dir


def plan(
    recipe_dir: Path, model_dir: Path | None, identify: Identifier, **extra: object
) -> MergePlan:
    options = MergeOptions(
        recipe_dir / "r.mecha",
        recipe_dir / "out.safetensors",
        model_dir=model_dir,
        identify=identify,
        **extra,  # type: ignore[arg-type]
    )
    return plan_merge(options)


def test_the_file_that_identifies_as_the_id_is_taken(folders, identify) -> None:
    recipe_dir, model_dir = folders
    (found,) = plan(recipe_dir, model_dir, identify).inputs.values()
    assert found.header.path == str(model_dir / "sd15" / "dreamy.safetensors")
    assert found.mir == SD1
    # the base variant spelled out
    (recipe_dir / "r.mecha").write_text(RECIPE.replace(SD1, SD1 + ":base"), encoding="utf-8")
    (found,) = plan(recipe_dir, model_dir, identify).inputs.values()
    assert found.header.path.endswith("dreamy.safetensors")


def test_the_recipe_folder_is_searched_too(folders, identify) -> None:
    recipe_dir, model_dir = folders
    shutil.move(model_dir / "sd15" / "dreamy.safetensors", recipe_dir / "dreamy.safetensors")
    (found,) = plan(recipe_dir, None, identify).inputs.values()
    assert found.header.path == str(recipe_dir / "dreamy.safetensors")


def test_several_matches_are_refused_listing_them(folders, identify) -> None:
    recipe_dir, model_dir = folders
    write_family(recipe_dir / "another.safetensors", SD1, "ldm")
    with pytest.raises(MircError) as caught:
        plan(recipe_dir, model_dir, identify)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.message.startswith(f"2 files identify as {SD1}: ")
    assert "dreamy.safetensors" in diagnostic.message
    assert "another.safetensors" in diagnostic.message
    assert "name one in the model line instead" in diagnostic.notes[0]
    assert diagnostic.span is not None and (diagnostic.span.line, diagnostic.span.col) == (1, 7)


def test_no_match_is_refused_naming_the_nearest(folders, identify) -> None:
    recipe_dir, model_dir = folders
    (model_dir / "sd15" / "dreamy.safetensors").unlink()
    (model_dir / "notes.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(MircError) as caught:
        plan(recipe_dir, model_dir, identify)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.message == f"no file in {model_dir} and {recipe_dir} identifies as {SD1}"
    nearest = diagnostic.notes[0]
    # the same architecture first, then the rest, then a file that is no safetensors at all
    assert nearest.index(f"xl.safetensors ({SDXL})") < nearest.index("detail-lora.safetensors")
    assert "notes.safetensors (not a readable safetensors file)" in nearest


def test_a_file_named_after_the_id_comes_first(folders, identify) -> None:
    recipe_dir, model_dir = folders
    # unknown to identification: the name is the user's word for it
    write_sparse(model_dir / "stable-diffusion-v1.safetensors", {"w": ("F16", [4, 4])})
    (found,) = plan(recipe_dir, model_dir, identify).inputs.values()
    assert found.header.path == str(model_dir / "stable-diffusion-v1.safetensors")


def test_a_file_named_after_the_id_that_is_something_else_is_refused(folders, identify) -> None:
    recipe_dir, model_dir = folders
    shutil.copy(model_dir / "xl.safetensors", model_dir / "stable-diffusion-v1.safetensors")
    with pytest.raises(MircError, match=f"named after {SD1} but identifies as {SDXL}"):
        plan(recipe_dir, model_dir, identify)


def test_the_output_is_never_an_input(folders, identify) -> None:
    recipe_dir, model_dir = folders
    write_family(recipe_dir / "out.safetensors", SD1, "ldm")  # an earlier merge's output
    (found,) = plan(recipe_dir, model_dir, identify).inputs.values()
    assert found.header.path.endswith("dreamy.safetensors")


def test_without_identification_only_the_name_finds_it(folders) -> None:
    recipe_dir, model_dir = folders
    with pytest.raises(MircError, match="cannot find the model") as caught:
        plan(recipe_dir, model_dir, None)
    assert caught.value.diagnostics[0].notes == (
        "give --model-dir DIR holding stable-diffusion-v1.safetensors",
    )


def test_cli_merges_a_mir_id_and_reports_ambiguity(folders) -> None:
    recipe_dir, model_dir = folders
    out = recipe_dir / "out.safetensors"
    args = ("merge", str(recipe_dir / "r.mecha"), "-o", str(out), "--model-dir", str(model_dir))
    run = run_mirc(*args)
    assert run.status == 0, run.err
    assert out.exists()
    write_family(model_dir / "copy.safetensors", SD1, "ldm")
    run = run_mirc(*args)
    assert run.status == 1
    assert run.err.startswith(f"{recipe_dir / 'r.mecha'}:1:7: error: 2 files identify as {SD1}")
