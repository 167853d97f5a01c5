"""`twgrpo train`: recipes parse into valid configs, launcher files, algorithm settings, a real tiny run."""

import json
from pathlib import Path

import pytest
import yaml

from twgrpo_lib.train import grpo as training
from twgrpo_lib.train.grpo import ALGOS, RECIPES_DIR, make_config, resolve_settings

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def test_shipped_recipes():
    assert set(RECIPES) == {"tiny_cpu", "paper_7b", "lora_single_gpu"}


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_parses_into_a_valid_config(name, tmp_path):
    settings = resolve_settings(name)
    config = make_config(settings, tmp_path)
    assert config.output_dir == str(tmp_path)
    # every key of the file reached the config (or is a run key)
    raw = yaml.safe_load(training.recipe_path(name).read_text())
    for key, value in raw.items():
        if key not in training.RUN_KEYS and key not in ("bf16", "gradient_checkpointing", "model_init_kwargs"):
            assert getattr(config, key) == value, key  # bf16 & co. depend on the device (TWGRPOConfig)
    # the algorithm of the paper, whatever the scale
    assert (config.token_weighting, config.loss_type, config.alpha) == (True, "bnpo", 1.7)
    assert config.beta == 0.0 and config.temperature == 1.0 and config.freeze_vision_tower
    assert config.num_generations == 8
    assert config.video_fps == 2.0 and config.video_max_frames == 16
    # one optimizer step per rollout batch, each group on one process
    local = config.per_device_train_batch_size * config.steps_per_generation
    assert local % config.num_generations == 0
    assert config.steps_per_generation == config.gradient_accumulation_steps
    assert config.save_strategy == "steps" and config.logging_steps == 1
    import torch

    if not torch.cuda.is_available():  # the same recipe runs on CPU: float32, no autocast, no checkpointing
        assert not config.bf16 and not config.gradient_checkpointing
        assert (config.model_init_kwargs or {}).get("dtype", "float32") == "float32"


def test_paper_recipe_matches_method_section_5():
    s = resolve_settings("paper_7b")
    assert s["max_steps"] == 500 and s["learning_rate"] == 1e-6 and s["max_completion_length"] == 4096
    assert s["video_max_pixels"] == 196 * 28 * 28
    assert s["bf16"] and s["gradient_checkpointing"] and s["model_init_kwargs"]["dtype"] == "bfloat16"
    launcher = yaml.safe_load((RECIPES_DIR / "accelerate" / "deepspeed_zero3_offload.yaml").read_text())
    prompts_per_step = s["per_device_train_batch_size"] * launcher["num_processes"] // s["num_generations"]
    assert prompts_per_step == 2  # 500 steps x 2 prompts x G = 8


def test_lora_recipe_is_lora_without_vision():
    s = resolve_settings("lora_single_gpu")
    assert s["lora"] and s["lora_r"] > 0
    peft_config = training.lora_config(s)
    assert peft_config.exclude_modules == r".*visual.*"
    assert set(peft_config.target_modules) >= {"q_proj", "v_proj"}


def test_accelerate_and_deepspeed_files():
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils.deepspeed import HfDeepSpeedConfig

    path = RECIPES_DIR / "accelerate" / "deepspeed_zero3_offload.yaml"
    cluster = load_config_from_file(str(path))  # accelerate's own reader
    assert cluster.num_processes == 2 and cluster.num_machines == 1
    assert cluster.distributed_type.value == "DEEPSPEED"
    ds_file = ROOT / cluster.deepspeed_config["deepspeed_config_file"]  # relative to the repository root
    assert ds_file == RECIPES_DIR / "deepspeed" / "zero3_offload.json"
    raw = json.loads(ds_file.read_text())
    assert raw["zero_optimization"]["stage"] == 3
    assert raw["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert raw["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert raw["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True  # full model at the end
    ds = HfDeepSpeedConfig(str(ds_file))
    assert ds.is_zero3() and ds.is_offload()


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_algo_fixes_weighting_and_aggregation(algo, tmp_path):
    config = make_config(resolve_settings("tiny_cpu", algo=algo), tmp_path)
    expected = {"tw-grpo": (True, "bnpo", 1.7), "grpo": (False, "grpo", 1.0), "bnpo": (False, "bnpo", 1.0)}[algo]
    assert (config.token_weighting, config.loss_type, config.alpha) == expected


def test_precedence_and_errors(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("max_steps: 7\nnum_generations: 4\n")
    s = resolve_settings("tiny_cpu", config_file=extra, num_generations=2, alpha=None)
    assert (s["max_steps"], s["num_generations"], s["alpha"]) == (7, 2, 1.7)  # file over recipe, argument over file
    assert resolve_settings("tiny_cpu", algo="tw-grpo", alpha=1.4)["alpha"] == 1.4
    with pytest.raises(ValueError, match="alpha"):
        resolve_settings("tiny_cpu", algo="grpo", alpha=1.7)
    assert make_config(resolve_settings("tiny_cpu", weight_fill="alive"), tmp_path).weight_fill == "alive"
    assert make_config(resolve_settings("tiny_cpu"), tmp_path).weight_fill == "uniform"  # the paper's by default
    with pytest.raises(ValueError, match="weight_fill = 'alive' has no effect with algo 'bnpo'"):
        resolve_settings("tiny_cpu", algo="bnpo", weight_fill="alive")
    with pytest.raises(ValueError, match="reward"):
        resolve_settings("tiny_cpu", reward="fuzzy")
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_stepz: 3\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*max_stepz"):
        resolve_settings("tiny_cpu", config_file=bad)
    with pytest.raises(FileNotFoundError, match="tiny_cpu"):
        resolve_settings("no_such_recipe")


def test_template_selects_items():
    items = [{"solution": "<answer>A</answer>"}, {"solution": "<answer>A,C</answer>"},
             {"solution": "<answer>B</answer>"}]
    assert training.select_items(items, "single") == [items[0], items[2]]
    assert training.select_items(items, "multi") == [items[1]]
    assert training.select_items(items, "mixed", max_items=2) == items[:2]


def test_data_location(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.json"):
        training.data_location(tmp_path, None)
    (tmp_path / "train.json").write_text("[]")
    assert training.data_location(tmp_path, None) == (tmp_path / "train.json", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="missing.json"):
        training.data_location(tmp_path / "missing.json", None)


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    from twgrpo_lib.data.synthetic.build import build_dataset
    from twgrpo_lib.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("train")
    build_dataset(root / "data", 3, workers=1)
    return build_tiny(root / "tiny"), root / "data"


def run_cli(*argv) -> int:
    from twgrpo_lib.cli import main

    return main(["train", *map(str, argv)])


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_cli_trains_saves_and_the_result_evaluates(tiny_setup, tmp_path):
    from transformers import AutoModelForImageTextToText

    from twgrpo_lib.models.qwen import load_model

    tiny, data = tiny_setup
    common = ["--model", tiny, "--data", data, "--max-steps", 2, "--num-generations", 2,
              "--per-device-train-batch-size", 4, "--max-completion-length", 8, "--save-steps", 1, "--quiet"]
    assert run_cli(*common, "--out", tmp_path / "tw", "--algo", "tw-grpo") == 0
    assert run_cli(*common, "--out", tmp_path / "grpo", "--algo", "grpo", "--reward", "binary",
                   "--template", "single") == 0
    tw, grpo = metrics(tmp_path / "tw"), metrics(tmp_path / "grpo")
    assert [r["step"] for r in training.step_metrics(tmp_path / "tw")] == [1, 2]  # the summary line left out
    assert [r["step"] for r in tw if "loss" in r] == [1, 2]
    assert all("token_weights/mean" in r for r in tw if "loss" in r)
    assert not any("token_weights/mean" in r for r in grpo)  # weights off: no weight pass at all
    assert "rewards/accuracy_reward/mean" in tw[0] and "rewards/binary_accuracy_reward/mean" in grpo[0]
    for run in ("tw", "grpo"):
        out = tmp_path / run
        assert (out / "checkpoint-1" / "model.safetensors").exists()
        assert (out / "checkpoint-2" / "model.safetensors").exists()
        model, processor = load_model(str(out))  # what `twgrpo evaluate --model OUT` loads
        assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration" and model.device.type == "cpu"
    settings = json.loads((tmp_path / "grpo" / "train_settings.json").read_text())
    assert settings["config"]["loss_type"] == "grpo" and settings["settings"]["template"] == "single"
    items = json.loads((data / "train.json").read_text())
    single = sum(1 for item in items if "," not in item["solution"])
    assert settings["items_loaded"] == len(items) and settings["items"] == single < len(items)
    # the final folder holds the trained weights: the last checkpoint's
    final = AutoModelForImageTextToText.from_pretrained(tmp_path / "tw")
    last = AutoModelForImageTextToText.from_pretrained(tmp_path / "tw" / "checkpoint-2")
    for (name, a), (_, b) in zip(final.state_dict().items(), last.state_dict().items()):
        assert (a == b).all(), name


def test_lora_run_saves_a_merged_model_and_the_adapter(tiny_setup, tmp_path):
    from transformers import AutoModelForImageTextToText

    tiny, data = tiny_setup
    out = training.train(tiny, data, tmp_path / "lora", recipe="lora_single_gpu", progress=False, max_steps=1,
                         num_generations=2, per_device_train_batch_size=2, gradient_accumulation_steps=1,
                         max_completion_length=8, cpu_threads=1, video_max_pixels=112 * 112, lora_r=4,
                         lora_alpha=8, save_strategy="no")
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["exclude_modules"] == r".*visual.*"
    model = AutoModelForImageTextToText.from_pretrained(out)
    assert not any("lora" in name for name in model.state_dict())


def test_warm_start_without_steps_copies_the_base(tiny_setup, tmp_path):
    tiny, data = tiny_setup
    report = training.warm_start(tiny, data / "train.json", tmp_path / "sft", 0)
    assert "no warm start" in report
    assert (tmp_path / "sft" / "model.safetensors").read_bytes() == (tiny / "model.safetensors").read_bytes()
