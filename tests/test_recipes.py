"""The run pipeline: build / train / measure equals run_method; RunCache trains each setting once."""

import pytest
import torch

from ftnotes import peft, recipes
from ftnotes.data import load_task


@pytest.fixture(scope="module")
def task():
    return load_task("digits", labels_per_class=2)


def test_the_three_steps_are_run_method(task, small_source):
    _, whole = recipes.run_method("lora", task, epochs=2, seed=3)
    run = recipes.build_run("lora", task, epochs=2, seed=3)
    assert peft.attached_method(run.model) == "lora" and run.bare is not None
    with pytest.raises(ValueError, match="not trained yet"):
        recipes.measure_run(run)
    recipes.train_run(run)
    with pytest.raises(ValueError, match="trained already"):
        recipes.train_run(run)
    model, split = recipes.measure_run(run, name="LoRA by steps")
    assert split.name == "LoRA by steps"
    assert split.target_acc == whole.target_acc and split.source_acc == whole.source_acc
    assert split.extra["disabled_equals_base"] and split.extra["val_acc"] == whole.extra["val_acc"]
    assert split.checkpoint_bytes == whole.checkpoint_bytes


@pytest.mark.parametrize("method", ["adapter", "prompt", "dora"])
def test_every_peft_method_switches_off_to_the_base(task, small_source, method):
    _, rec = recipes.run_method(method, task, epochs=1)
    assert rec.extra["disabled_equals_base"] is True
    mergeable = peft.CONFIGS[method].mergeable
    assert ("merge_max_abs_diff" in rec.extra) == mergeable
    if mergeable:
        assert rec.extra["merge_max_abs_diff"] < 1e-4


def test_run_cache_trains_each_setting_once(task, small_source, monkeypatch):
    calls = []
    real = recipes.run_method
    monkeypatch.setattr(recipes, "run_method", lambda *a, **k: calls.append(a) or real(*a, **k))
    runs = recipes.RunCache(task, seed=0, epochs=1)
    first = runs("linear_probe")
    assert runs("linear_probe") is first and len(calls) == 1
    runs("lora", r=2, target_modules=["q_proj"])
    runs("lora", r=2, target_modules=("q_proj",))  # a list and a tuple are the same setting
    assert len(calls) == 2 and len(runs) == 2
    assert [o for _, o, _, _ in runs.items("lora")] == [{"r": 2, "target_modules": ["q_proj"]}]
    assert runs.records() == [first[1], runs.records("lora")[0]]
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        runs("lora", reduction_factor=4)
    assert isinstance(first[0], torch.nn.Module)


def test_every_method_is_scratch_a_strategy_or_a_registered_peft_method():
    kinds = [set(recipes.NO_SOURCE_HEAD), set(recipes.STRATEGY_METHODS), set(recipes.PEFT_METHODS)]
    assert set().union(*kinds) == set(recipes.METHODS)
    assert sum(len(k) for k in kinds) == len(recipes.METHODS)  # each in exactly one
    for method in recipes.PEFT_METHODS:  # the method's own numbers are its config's defaults
        config = peft.CONFIGS[method]()
        recipe = recipes.get_recipe(method)
        for key, value in config.to_dict().items():
            if key != "modules_to_save" and value is not None:
                assert recipe[key] == value, (method, key)


@pytest.mark.parametrize(
    "method", [m for m, c in sorted(peft.CONFIGS.items()) if "target_modules" in c.__dataclass_fields__]
)
def test_a_target_that_is_not_a_list_names_the_field(method):
    with pytest.raises(ValueError, match=r"Config\.target_modules must be a list"):
        peft.CONFIGS[method](target_modules=3)


def test_run_cache_knows_an_override_equal_to_the_recipe(task, small_source):
    runs = recipes.RunCache(task, seed=0, epochs=1)
    first = runs("linear_probe")
    assert runs("linear_probe", lr=recipes.get_recipe("linear_probe")["lr"]) is first
    assert len(runs) == 1


def test_retention_on_a_subset_of_the_glyphs(task, small_source):
    _, rec = recipes.run_method("linear_probe", task, epochs=1, source_eval=50)
    assert rec.source_acc is not None and abs(rec.source_acc * 50 - round(rec.source_acc * 50)) < 1e-4
    with pytest.raises(ValueError, match="source_eval must be an int >= 1"):
        recipes.run_method("linear_probe", task, epochs=1, source_eval=0)
