"""MMPretrain model names and training parts: fixtures, error tables, properties, the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.diagnostics import MircError
from compiler.lang.mmpretrain import (
    MODEL_ERRORS,
    TRAINING_ERRORS,
    DataInfo,
    ModelName,
    PretrainInfo,
    TrainingInfo,
    parse_model_name,
    parse_training,
)
from tests.conftest import check_snapshot, run_mirc

FIXTURES = Path(__file__).parent / "fixtures" / "mmpretrain"


def fixture_lines(name: str) -> list[str]:
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize("text", fixture_lines("models.txt"))
def test_canonical_names_format_to_themselves(text: str) -> None:
    assert str(parse_model_name(text)) == text


def test_five_part_layout_of_the_seed() -> None:
    name = parse_model_name("mae_vit-base-p16_in21k-pre_8xb512-amp-coslr-1600e_in1k-384px")
    assert (name.algorithm, name.module) == ("mae", "vit-base-p16")
    assert name.pretrain == PretrainInfo(("in21k",))
    assert name.training == TrainingInfo(8, 512, None, False, ("amp", "coslr", "1600e"))
    assert name.data == DataInfo("in1k", 384, True)


def test_seed_example_clip_pretrain_3rdparty() -> None:
    name = parse_model_name("vit-base-p32_clip-openai-pre_3rdparty_in1k")
    assert name.algorithm is None and name.module == "vit-base-p32"
    assert name.pretrain is not None
    pretrain = name.pretrain.to_json()
    assert (pretrain["method"], pretrain["source"], pretrain["dataset"]) == ("clip", "openai", None)
    assert name.training.third_party and name.training.total_batch is None
    assert name.data.input_size == 224


def test_seed_example_beit_training_fields() -> None:
    training = parse_model_name("beit_beit-base-p16_8xb256-amp-coslr-300e_in1k").training
    assert (training.gpus, training.batch_per_gpu, training.total_batch) == (8, 256, 2048)
    assert training.amp and training.schedule == "coslr" and training.epochs == 300


def test_pretrain_fields() -> None:
    pretrain = parse_model_name("vit-base-p16_mae-300e-pre_8xb2048-linear-coslr-90e_in1k").pretrain
    assert pretrain is not None
    fields = pretrain.to_json()
    assert (fields["method"], fields["epochs"], fields["dataset"]) == ("mae", 300, None)
    assert parse_model_name("vit-large-p16_in21k-pre_3rdparty_in1k-384px").data.input_size == 384


def test_resnet50_three_parts() -> None:
    name = parse_model_name("resnet50_8xb32_in1k")
    assert name == ModelName("resnet50", TrainingInfo(8, 32), DataInfo("in1k"))
    assert name.data.input_size == 224 and name.pretrain is None and name.algorithm is None


TRAINING_CASES = {
    "8xb4-amp-coslr-10e": dict(total_batch=32, amp=True, schedule="coslr", epochs=10),
    "8xb32-autoaug-mixup-lbs-coslr-50e": dict(augmentations=["autoaug", "mixup", "lbs"]),
    "16xb64-steplr-100e": dict(total_batch=1024, amp=False, schedule="steplr", epochs=100),
    "ft-8xb128-linearlr-160k": dict(mode="ft", schedule="linearlr", iterations=160000),
    "pt-64xb64-cutmix-fp16": dict(mode="pt", amp=True, augmentations=["cutmix"]),
    "3rdparty": dict(third_party=True, gpus=None, total_batch=None),
    "8xb256-rsb-a1-600e": dict(other=["rsb", "a1"], epochs=600),
}


@pytest.mark.parametrize(("text", "expected"), TRAINING_CASES.items())
def test_training_shorthand(text: str, expected: dict[str, object]) -> None:
    fields = parse_training(text).to_json()
    assert {key: fields[key] for key in expected} == expected
    assert str(parse_training(text)) == text


@pytest.mark.parametrize(
    ("label", "example"), [(label, ex) for label, exs in MODEL_ERRORS.items() for ex in exs]
)
def test_model_error_table(label: str, example: str) -> None:
    with pytest.raises(MircError) as info:
        parse_model_name(example)
    assert info.value.diagnostics[0].message == label


@pytest.mark.parametrize(
    ("label", "example"), [(label, ex) for label, exs in TRAINING_ERRORS.items() for ex in exs]
)
def test_training_error_table(label: str, example: str) -> None:
    with pytest.raises(MircError) as info:
        parse_training(example)
    assert info.value.diagnostics[0].message == label


CHAR_CASES = {
    "ResNet50_8xb32_in1k": ("MMPretrain names are lowercase", 1),
    "resnet50_8xb32_in1k ": ("whitespace is not allowed in an MMPretrain name", 20),
    "resnet50_8xb32_in1k.py": (
        "MMPretrain names are lowercase letters and digits joined by '-' and '_'",
        20,
    ),
}


@pytest.mark.parametrize(("text", "expected"), CHAR_CASES.items())
def test_bad_characters_are_named_with_their_column(text: str, expected: tuple[str, int]) -> None:
    with pytest.raises(MircError) as info:
        parse_model_name(text)
    diagnostic = info.value.diagnostics[0]
    assert (diagnostic.message, diagnostic.span.col) == expected  # type: ignore[union-attr]


def test_training_part_alone_holds_no_underscore() -> None:
    with pytest.raises(MircError) as info:
        parse_training("8xb32_in1k")
    diagnostic = info.value.diagnostics[0]
    assert diagnostic.message.endswith("it holds no '_'") and diagnostic.span is not None
    assert diagnostic.span.col == 6


def test_length_cap() -> None:
    with pytest.raises(MircError) as info:
        parse_model_name("r" * 300 + "_8xb32_in1k")
    assert "at most 256" in info.value.diagnostics[0].message


# Words the grammar reserves as markers, which a free word therefore never is.
RESERVED = re.compile(r"pre|3rdparty|ft|pt|[1-9][0-9]*xb[1-9][0-9]*|[1-9][0-9]*(?:px)?")
WORD = st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True).filter(lambda w: not RESERVED.fullmatch(w))
WORDS = st.lists(WORD, min_size=1, max_size=3).map("-".join)
TRAININGS = st.one_of(
    st.builds(
        TrainingInfo,
        st.integers(1, 128),
        st.integers(1, 4096),
        st.sampled_from([None, "ft", "pt"]),
        st.just(False),
        st.lists(WORD, max_size=4).map(tuple),
    ),
    st.builds(
        TrainingInfo,
        mode=st.sampled_from([None, "ft", "pt"]),
        third_party=st.just(True),
        recipe=st.lists(WORD, max_size=3).map(tuple),
    ),
)
PRETRAINS = st.builds(PretrainInfo, st.lists(WORD, max_size=3).map(tuple), st.booleans())
DATAS = st.builds(DataInfo, WORDS) | st.builds(DataInfo, WORDS, st.integers(1, 2048), st.booleans())
MODELS = st.builds(ModelName, WORDS, TRAININGS, DATAS, st.none() | WORDS, st.none() | PRETRAINS)


@given(MODELS)
def test_format_then_parse_is_identity(name: ModelName) -> None:
    assert parse_model_name(str(name)) == name


@given(TRAININGS)
def test_training_format_then_parse_is_identity(training: TrainingInfo) -> None:
    assert parse_training(str(training)) == training


@given(st.text(alphabet="resnt58_xb32-amp.pre3rdparty in1kA", max_size=40) | st.text(max_size=40))
def test_only_mirc_errors_escape(text: str) -> None:
    for parse in (parse_model_name, parse_training):
        try:
            parse(text)
        except MircError as exc:
            assert exc.diagnostics and exc.diagnostics[0].span is not None


def test_cli_json_prints_structured_fields() -> None:
    run = run_mirc("parse", "--kind", "mmpretrain", "resnet50_8xb32_in1k", "--json")
    assert run.status == 0 and run.err == ""
    [fields] = json.loads(run.out)
    assert fields["module"] == "resnet50" and fields["training"]["total_batch"] == 256
    assert fields["data"] == {"text": "in1k", "dataset": "in1k", "input_size": 224}


def test_cli_bad_model_name_snapshot() -> None:
    run = run_mirc("parse", "--kind", "mmpretrain", "resnet50_in1k")
    assert run.status == 1 and run.out == ""
    check_snapshot("cli/parse-mmpretrain-bad.txt", run.err)
