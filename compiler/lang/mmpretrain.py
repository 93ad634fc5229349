"""MMPretrain model names: ``{algorithm}_{module}_{pretrain}_{training}_{data}``.

The grammar (``compiler/grammars/mmpretrain.lark``) fixes the structure: which part is which,
the ``NxbM`` GPUs × batch, the ``-pre`` and ``3rdparty`` markers, the input size. What each
remaining word means (``amp``, ``coslr``, ``300e``, ``openai``, ``in21k`` …) is read afterwards
from the role tables below, in the order the words were written, so that every name formats back
to itself. ``parse_training`` reads the training part alone (``8xb32-amp-coslr-200e``), the
shorthand a spec's training section may use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lark import Token, Tree

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.grammar import parse_or_raise

MAX_LENGTH = 256

# Roles of the recipe words of a training part, first matching pattern wins (whole word).
TRAINING_ROLES: list[tuple[str, str]] = [
    (r"amp|fp16|bf16", "precision"),
    (r"[a-z]*lr", "schedule"),  # coslr, steplr, linearlr, polylr, multisteplr …
    (r"[1-9][0-9]*e", "epochs"),
    (r"[1-9][0-9]*(?:k|kit|kiter|it|iter|iters)", "iterations"),
    (r"autoaug|randaug|trivialaug|mixup|cutmix|lbs|repeataug|ra", "augmentation"),
]

# Roles of the words before "-pre"; a word that is none of these is the pre-training method.
PRETRAIN_ROLES: list[tuple[str, str]] = [
    (r"in[0-9]+k|laion[0-9]+[mb]|coco|cc[0-9]+m|jft[0-9]+m|ig[0-9]+[mb]|lvd[0-9]+m", "dataset"),
    (r"fb|openai|google|ms|microsoft|meta|deepmind|nvidia|timm|baidu|apple", "source"),
    (r"[1-9][0-9]*e", "duration"),
]

# Datasets whose default input size the convention states (ImageNet-1k and -21k: 224×224).
DEFAULT_INPUT_SIZES = {"in1k": 224, "in21k": 224}

# Labelled bad examples (lark's match_examples); tests/test_mmpretrain.py walks these tables.
MODEL_ERRORS: dict[str, list[str]] = {
    "a model name needs {module}_{training}_{data}; expected '_' and the next part": [
        "resnet50",
        "resnet50-x",
    ],
    "expected the training part (e.g. 8xb32 or 3rdparty) or another part": [
        "resnet50_in1k",
        "beit_beit-base_in1k",
    ],
    "expected the training part (e.g. 8xb32 or 3rdparty) after the pretrain part": [
        "vit_clip-pre_in1k",
        "vit_clip-pre",
    ],
    "a pretrain part ends in '-pre'; at most algorithm and module come before it": [
        "mae_vit_resnet_8xb32_in1k",
        "a_b_c_3rdparty_in1k",
    ],
    "expected '_' and the data part (e.g. in1k) after the training part": [
        "resnet50_8xb32",
        "resnet50_8xb32-amp",
    ],
    "expected the data part (e.g. in1k) after '_'": ["resnet50_8xb32_", "resnet50_3rdparty_-"],
    "expected a word after '-'": ["resnet50-_8xb32_in1k", "resnet50_8xb32-_in1k", "a_b-_8xb32_c"],
    "expected a part after '_' (parts are never empty)": ["resnet50__8xb32_in1k", "_resnet50"],
    "expected GPUs × batch after the training type (e.g. ft-8xb32)": ["vit_ft-amp_in1k"],
    "unexpected text after the data part": ["resnet50_8xb32_in1k_x", "resnet50_8xb32_in1k-1-2"],
    "empty model name": [""],
}

TRAINING_ERRORS: dict[str, list[str]] = {
    "a training part starts with GPUs × batch (e.g. 8xb32) or 3rdparty": ["amp", "coslr-300e"],
    "expected GPUs × batch after the training type (e.g. ft-8xb32)": ["ft-amp", "pt-"],
    "expected a word after '-'": ["8xb32-", "8xb32-amp-"],
    "empty training part": [""],
}

# A character no token can start with is worded by its class, whatever the parser state.
CHAR_ERRORS: list[tuple[str, str]] = [
    (r"[A-Z]", "MMPretrain names are lowercase"),
    (r"\s", "whitespace is not allowed in an MMPretrain name"),
    (r".", "MMPretrain names are lowercase letters and digits joined by '-' and '_'"),
]

# The training part alone holds no '_': it is one part of a model name.
TRAINING_CHAR_ERRORS: list[tuple[str, str]] = [
    (r"_", "a training part is one part of a model name; it holds no '_'"),
    *CHAR_ERRORS,
]


def _role(word: str, table: Sequence[tuple[str, str]], default: str) -> str:
    return next((role for pattern, role in table if re.fullmatch(pattern, word)), default)


def _count(word: str) -> int:
    """``300e`` → 300, ``80k`` → 80000, ``5000iter`` → 5000."""
    digits = re.match(r"[0-9]+", word)
    assert digits is not None  # the role patterns only match words that start with digits
    scale = 1000 if word[digits.end() :].startswith("k") else 1
    return int(digits.group()) * scale


@dataclass(frozen=True, slots=True)
class TrainingInfo:
    """The training part: ``[ft-|pt-]{gpus}xb{batch}[-word…]`` or ``3rdparty[-word…]``."""

    gpus: int | None = None
    batch_per_gpu: int | None = None
    mode: str | None = None
    third_party: bool = False
    recipe: tuple[str, ...] = ()

    def __str__(self) -> str:
        head = "3rdparty" if self.third_party else f"{self.gpus}xb{self.batch_per_gpu}"
        return "-".join([*([self.mode] if self.mode else []), head, *self.recipe])

    def _words(self, role: str) -> tuple[str, ...]:
        return tuple(w for w in self.recipe if _role(w, TRAINING_ROLES, "other") == role)

    @property
    def total_batch(self) -> int | None:
        """GPUs × per-GPU batch (None for converted third-party weights)."""
        if self.gpus is None or self.batch_per_gpu is None:
            return None
        return self.gpus * self.batch_per_gpu

    @property
    def amp(self) -> bool:
        """Whether training used automatic mixed precision (``amp``, older names ``fp16``)."""
        return bool(self._words("precision"))

    @property
    def schedule(self) -> str | None:
        return next(iter(self._words("schedule")), None)

    @property
    def epochs(self) -> int | None:
        return next((_count(w) for w in self._words("epochs")), None)

    @property
    def iterations(self) -> int | None:
        return next((_count(w) for w in self._words("iterations")), None)

    @property
    def augmentations(self) -> tuple[str, ...]:
        return self._words("augmentation")

    @property
    def other(self) -> tuple[str, ...]:
        return self._words("other")

    def to_json(self) -> dict[str, object]:
        return {
            "text": str(self),
            "mode": self.mode,
            "gpus": self.gpus,
            "batch_per_gpu": self.batch_per_gpu,
            "total_batch": self.total_batch,
            "third_party": self.third_party,
            "amp": self.amp,
            "schedule": self.schedule,
            "epochs": self.epochs,
            "iterations": self.iterations,
            "augmentations": list(self.augmentations),
            "other": list(self.other),
        }


@dataclass(frozen=True, slots=True)
class PretrainInfo:
    """The pretrain part: words naming source, method, dataset and duration, then ``-pre``."""

    words: tuple[str, ...] = ()
    third_party: bool = False

    def __str__(self) -> str:
        return "-".join([*self.words, "pre", *(["3rdparty"] if self.third_party else [])])

    def _first(self, role: str) -> str | None:
        return next((w for w in self.words if _role(w, PRETRAIN_ROLES, "method") == role), None)

    def to_json(self) -> dict[str, object]:
        duration = self._first("duration")
        return {
            "text": str(self),
            "source": self._first("source"),
            "method": self._first("method"),
            "dataset": self._first("dataset"),
            "epochs": None if duration is None else _count(duration),
            "third_party": self.third_party,
        }


@dataclass(frozen=True, slots=True)
class DataInfo:
    """The data part: a dataset and, optionally, the input size (``in1k-384px``)."""

    dataset: str
    size: int | None = None
    px: bool = True

    def __str__(self) -> str:
        if self.size is None:
            return self.dataset
        return f"{self.dataset}-{self.size}{'px' if self.px else ''}"

    @property
    def input_size(self) -> int | None:
        """The input size written, else the dataset's default (224 for in1k and in21k)."""
        return self.size if self.size is not None else DEFAULT_INPUT_SIZES.get(self.dataset)

    def to_json(self) -> dict[str, object]:
        return {"text": str(self), "dataset": self.dataset, "input_size": self.input_size}


@dataclass(frozen=True, slots=True)
class ModelName:
    """A parsed MMPretrain model name; ``str()`` gives it back as written."""

    module: str
    training: TrainingInfo
    data: DataInfo
    algorithm: str | None = None
    pretrain: PretrainInfo | None = None

    def __str__(self) -> str:
        parts = [self.algorithm, self.module, self.pretrain, self.training, self.data]
        return "_".join(str(part) for part in parts if part is not None)

    def to_json(self) -> dict[str, object]:
        return {
            "name": str(self),
            "algorithm": self.algorithm,
            "module": self.module,
            "pretrain": None if self.pretrain is None else self.pretrain.to_json(),
            "training": self.training.to_json(),
            "data": self.data.to_json(),
        }

    def describe(self) -> str:
        training = self.training
        facts = [f"module={self.module}"]
        if self.algorithm is not None:
            facts.insert(0, f"algorithm={self.algorithm}")
        if self.pretrain is not None:
            facts.append(f"pretrain={self.pretrain}")
        if training.total_batch is not None:
            facts.append(f"batch={training.gpus}x{training.batch_per_gpu}={training.total_batch}")
        if training.third_party:
            facts.append("3rdparty")
        size = self.data.input_size
        facts.append(f"data={self.data.dataset}" + ("" if size is None else f"@{size}px"))
        return f"{self}  {' '.join(facts)}"


def parse_model_name(text: str, file: str = "<arg>") -> ModelName:
    """Parse an MMPretrain model name; a malformed one raises :class:`MircError`."""
    _check_length(text, file, "model name")
    tree = parse_or_raise(
        "mmpretrain",
        text,
        file,
        MODEL_ERRORS,
        "mmpretrain-syntax",
        "model name",
        CHAR_ERRORS,
        start="model_name",
    )
    return model_name_from_tree(tree)


def parse_training(text: str, file: str = "<arg>") -> TrainingInfo:
    """Parse a training part alone (``8xb4-amp-coslr-10e``); total batch is GPUs × batch."""
    _check_length(text, file, "training part")
    tree = parse_or_raise(
        "mmpretrain",
        text,
        file,
        TRAINING_ERRORS,
        "mmpretrain-syntax",
        "training part",
        TRAINING_CHAR_ERRORS,
        start="training",
    )
    return _training(tree)


def _check_length(text: str, file: str, what: str) -> None:
    if len(text) > MAX_LENGTH:
        span = Span.at_offset(file, text, MAX_LENGTH)
        message = f"{what} is {len(text)} characters long; at most {MAX_LENGTH} allowed"
        raise MircError([Diagnostic.error("mmpretrain-too-long", message, span)])


def _tokens(tree: Tree[Token]) -> list[Token]:
    return list(tree.scan_values(lambda value: isinstance(value, Token)))


def model_name_from_tree(tree: Tree[Token]) -> ModelName:
    """The :class:`ModelName` of a ``model_name`` parse tree (also used for checkpoints)."""
    subtrees = [child for child in tree.children if isinstance(child, Tree)]
    parts = {str(child.data): child for child in subtrees}
    heads = ["-".join(_tokens(child)) for child in subtrees if child.data == "words"]
    pretrain = parts.get("pretrain")
    return ModelName(
        module=heads[-1],
        training=_training(parts["training"]),
        data=_data(parts["data"]),
        algorithm=heads[0] if len(heads) == 2 else None,
        pretrain=None if pretrain is None else _pretrain(pretrain),
    )


def _training(tree: Tree[Token]) -> TrainingInfo:
    tokens = _tokens(tree)
    mode = str(tokens.pop(0)) if tokens[0].type == "MODE" else None
    head = tokens.pop(0)
    recipe = tuple(str(token) for token in tokens)
    if head.type == "THIRDPARTY":
        return TrainingInfo(mode=mode, third_party=True, recipe=recipe)
    gpus, batch = (int(n) for n in str(head).split("xb"))
    return TrainingInfo(gpus, batch, mode, False, recipe)


def _pretrain(tree: Tree[Token]) -> PretrainInfo:
    tokens = _tokens(tree)
    third_party = tokens[-1].type == "THIRDPARTY"
    return PretrainInfo(tuple(str(t) for t in tokens if t.type == "WORD"), third_party)


def _data(tree: Tree[Token]) -> DataInfo:
    tokens = _tokens(tree)
    if tokens[-1].type != "SIZE":
        return DataInfo("-".join(tokens))
    size = str(tokens[-1])
    return DataInfo("-".join(tokens[:-1]), int(size.removesuffix("px")), size.endswith("px"))
