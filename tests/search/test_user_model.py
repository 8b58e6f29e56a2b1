"""``--model package.module:function``: a builder of the user's own, through the real CLI,
with early stopping, storage, resume, the test split and export unchanged."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import optuna
import pytest

from search.testing import HPSEARCH

pytestmark = pytest.mark.slow

BUILDERS = """
import keras


def build(params, spec):
    model = keras.Sequential([keras.Input(shape=spec.input_shape), keras.layers.Flatten()])
    for _ in range(params["blocks"]):
        model.add(keras.layers.Dense(params["width"], activation=params["act"]))
    model.add(keras.layers.Dense(spec.classes, activation="softmax"))
    model.compile(
        optimizer=keras.optimizers.Adam(params["lr"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def three_outputs(params, spec):
    model = keras.Sequential([keras.Input(shape=spec.input_shape), keras.layers.Dense(3)])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def one_output(params, spec):
    model = keras.Sequential([keras.Input(shape=spec.input_shape), keras.layers.Dense(1)])
    model.compile(loss="mse")
    return model


def not_compiled(params, spec):
    return keras.Sequential([keras.Input(shape=spec.input_shape), keras.layers.Dense(1)])


NOT_A_FUNCTION = 3


def no_params():
    return None
"""
SPACE = """name: mine
params:
  width: {type: int, low: 8, high: 32, log: true}
  blocks: {type: int, low: 1, high: 2}
  act: {type: categorical, choices: [relu, tanh]}
  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
  batch_size: 64
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "my_models.py").write_text(BUILDERS)
    (tmp_path / "mine.yaml").write_text(SPACE)
    return tmp_path


def hp(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HPSEARCH, *args], cwd=folder, capture_output=True, text=True, timeout=600
    )


def test_a_builder_of_ones_own_searches_resumes_and_exports(folder: Path) -> None:
    import keras

    import search

    url = f"sqlite:///{folder / 's.db'}"
    run = hp(folder, "run", "--data", "digits", "--model", "my_models:build", "--space",
             "mine.yaml", "--trials", "3", "--epochs", "3", "--test-split", "0.2",
             "--storage", url, "--study", "u", "-q", "--no-report")  # fmt: skip
    assert run.returncode == 0, run.stderr
    study = optuna.load_study(study_name="u", storage=url)
    assert study.user_attrs["hpsearch"]["model"] == "my_models:build"
    assert {t.state.name for t in study.trials} <= {"COMPLETE", "PRUNED"}
    assert set(study.trials[0].params) == {"width", "blocks", "act", "lr"}
    assert study.trials[0].user_attrs["params"]["batch_size"] == 64
    # From a folder without the builder's module: one line, and the new target not stored.
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    lost = hp(elsewhere, "resume", "u", "--trials", "9", "--storage", url, "-q", "--no-report")
    assert lost.returncode == 2, lost.stderr
    assert "no module 'my_models' here" in lost.stderr and "Traceback" not in lost.stderr
    assert optuna.load_study(study_name="u", storage=url).user_attrs["hpsearch"]["trials"] == 3
    # resume and worker need only the name: the study says which builder to import
    again = hp(folder, "resume", "u", "--trials", "4", "--storage", url, "-q", "--no-report")
    assert again.returncode == 0, again.stderr
    assert len(optuna.load_study(study_name="u", storage=url).trials) == 4
    best = json.loads(hp(folder, "best", "u", "--storage", url, "--format", "json").stdout)
    assert best["builder"] == "my_models:build"
    page = folder / "u.html"
    assert hp(folder, "report", "u", "--storage", url, "-o", str(page)).returncode == 0
    assert "<th>model builder</th><td>my_models:build</td>" in page.read_text()
    out = folder / "u.keras"
    exported = hp(folder, "export", "u", "-o", str(out), "--storage", url)
    assert exported.returncode == 0, exported.stderr
    data = search.load_dataset("digits", test_split=0.2)
    scores = keras.models.load_model(out).evaluate(
        data.x_test, data.y_test, verbose=0, return_dict=True
    )
    # the resumed search reached its target and scored its best trial
    assert best["trial"] == optuna.load_study(study_name="u", storage=url).best_trial.number
    assert scores["accuracy"] == pytest.approx(best["test_metrics"]["test_accuracy"], abs=1e-6)


def test_the_space_of_ones_own_builder_is_not_held_to_the_dense_vocabulary(
    folder: Path,
) -> None:
    url = f"sqlite:///{folder / 's.db'}"
    dense = hp(folder, "run", "--data", "digits", "--space", "mine.yaml", "--trials", "1",
               "--storage", url)  # fmt: skip
    assert dense.returncode == 2
    assert "mine.yaml: parameter 'width': unknown parameter 'width'; expected one of:" in (
        dense.stderr
    )
    # `spaces validate` checks it as `run` would: for the Dense builder, or for one's own.
    validate = hp(folder, "spaces", "validate", "mine.yaml")
    assert validate.returncode == 2 and "unknown parameter 'width'" in validate.stderr
    mine = hp(folder, "spaces", "validate", "mine.yaml", "--model", "my_models:build")
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout.startswith("mine.yaml: valid space") and mine.stderr == ""
    missing = hp(folder, "spaces", "validate", "mine.yaml", "--model", "my_models:nothere")
    assert missing.returncode == 2 and "module 'my_models' has no 'nothere'" in missing.stderr
    # With --data it builds one model, as a trial would: a builder that cannot make one for
    # this data is found before a search.
    built = hp(folder, "spaces", "validate", "mine.yaml", "--model", "my_models:build",
               "--data", "digits")  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert "; its model for digits builds (" in built.stdout
    assert "at {'width': 8, 'blocks': 1, 'act': 'relu', 'lr': 0.001, 'batch_size': 64})" in (
        built.stdout
    )
    for function, said in (
        ("three_outputs", "returned a model with 3 output(s) per sample; a multiclass task"),
        ("not_compiled", "not a compiled keras.Model"),
    ):
        broken = hp(folder, "spaces", "validate", "mine.yaml", "--model",
                    f"my_models:{function}", "--data", "digits")  # fmt: skip
        assert broken.returncode == 2 and said in broken.stderr, broken.stderr
        assert len(broken.stderr.strip().splitlines()) == 1, broken.stderr


@pytest.mark.parametrize(
    ("model", "space", "code", "line"),
    [
        ("my_models:nothere", "mine.yaml", 2, "module 'my_models' has no 'nothere'"),
        ("my_models:NOT_A_FUNCTION", "mine.yaml", 2, "'NOT_A_FUNCTION' is of type int, not a"),
        ("my_models:no_params", "mine.yaml", 2, "no_params() cannot be called with (params, "),
        ("my-models", "mine.yaml", 2, "expected package.module:function"),
        ("my_models.py:build", "mine.yaml", 2, "not its file: --model my_models:build."),
        ("nowhere:build", "mine.yaml", 2, "no module 'nowhere' here"),
        ("my_models:build", None, 2, "give --space too"),
        (
            "my_models:not_compiled",
            "mine.yaml",
            1,
            "not a compiled keras.Model (call model.compile(",
        ),
        (
            "my_models:three_outputs",
            "mine.yaml",
            1,
            "returned a model with 3 output(s) per sample; a multiclass task needs 10 (one "
            "per class)",
        ),
        (
            "my_models:one_output",  # mse on class numbers: it would train, and be scored
            "mine.yaml",
            1,
            "returned a model with 1 output(s) per sample; a multiclass task needs 10",
        ),
    ],
)
def test_a_builder_that_cannot_be_used_is_one_line(
    folder: Path, model: str, space: str | None, code: int, line: str
) -> None:
    url = f"sqlite:///{folder / 's.db'}"
    args = ["run", "--data", "digits", "--model", model, "--trials", "1", "--epochs", "1",
            "--max-failures", "1", "--storage", url, "--study", "x", "-q",
            "--no-report"]  # fmt: skip
    if space:
        args += ["--space", space]
    proc = hp(folder, *args)
    assert proc.returncode == code, proc.stderr
    assert line in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    # One line (TensorFlow's graph errors carry a stack of frames in their message).
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    if code == 1:  # the builder is imported afresh on resume: fix it and resume
        assert f"The model builder fails: fix {model}" in proc.stderr
        assert "hpsearch resume x" in proc.stderr


def test_an_existing_study_keeps_its_builder(folder: Path) -> None:
    url = f"sqlite:///{folder / 's.db'}"
    first = hp(folder, "run", "--data", "digits", "--model", "my_models:build", "--space",
               "mine.yaml", "--trials", "1", "--epochs", "1", "--storage", url, "--study",
               "k", "-q", "--no-report")  # fmt: skip
    assert first.returncode == 0, first.stderr
    other = hp(folder, "run", "--study", "k", "--model", "my_models:not_compiled", "--storage",
               url, "-q")  # fmt: skip
    assert other.returncode == 2
    assert "--model 'my_models:not_compiled' (the study has 'my_models:build')" in other.stderr
