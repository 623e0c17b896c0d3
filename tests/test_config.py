import pathlib

import pytest

from minijepa.config import Config, apply_overrides, config_from_dict, config_to_dict, load_config

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    # Round trip: the saved (resolved) config gives back the same config.
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_overrides_and_types():
    cfg = load_config(ROOT / "configs" / "cpu_default.yaml", ["optim.epochs=2", "optim.lr=3e-4", "masks.target_scale=[0.1, 0.2]"])
    assert cfg.optim.epochs == 2 and cfg.optim.lr == 3e-4
    assert cfg.masks.target_scale == (0.1, 0.2)
    cfg = config_from_dict({"optim": {"lr": 1}})  # an int where a float is expected is fine
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)


def test_unknown_keys_and_wrong_types_name_the_key():
    with pytest.raises(ValueError, match="unknown config key optim.lrr"):
        config_from_dict({"optim": {"lrr": 1.0}})
    with pytest.raises(ValueError, match="unknown config key modle"):
        config_from_dict({"modle": {}})
    with pytest.raises(ValueError, match="optim.epochs: expected an integer"):
        config_from_dict({"optim": {"epochs": "ten"}})
    with pytest.raises(ValueError, match=r"masks.target_scale: expected a list of 2"):
        config_from_dict({"masks": {"target_scale": 0.2}})
    with pytest.raises(ValueError, match="run.compile: expected true/false"):
        config_from_dict({"run": {"compile": "yes"}})
    with pytest.raises(ValueError, match="section.key"):
        apply_overrides({}, ["epochs=3"])
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config("nope.yaml")


def test_default_recipe_is_the_paper_recipe_plus_documented_changes():
    """configs/cpu_default.yaml = configs/cpu_paper.yaml + the changes its header lists (notebook 06, README)."""
    from pathlib import Path

    from minijepa.config import config_to_dict, load_config

    root = Path(__file__).resolve().parents[1]
    paper = config_to_dict(load_config(root / "configs" / "cpu_paper.yaml"))
    default = config_to_dict(load_config(root / "configs" / "cpu_default.yaml"))
    changed = {(s, k) for s in default for k in default[s] if default[s][k] != paper[s][k]}
    assert changed == {("model", "vc_weight")}
    assert paper["model"]["vc_weight"] == 0 and paper["model"]["loss"] == "l2"
    assert paper["optim"]["ema"] == [0.996, 1.0] and paper["masks"]["num_targets"] == 4
    assert "model.vc_weight" in (root / "configs" / "cpu_default.yaml").read_text().split("model:")[0]


def test_long_run_is_the_default_recipe_for_longer():
    """configs/cpu_long.yaml changes only the budget (images, epochs, warm-up) and the logging of the default."""
    from pathlib import Path

    from minijepa.config import config_to_dict, load_config

    root = Path(__file__).resolve().parents[1]
    default = config_to_dict(load_config(root / "configs" / "cpu_default.yaml"))
    long = config_to_dict(load_config(root / "configs" / "cpu_long.yaml"))
    changed = {(s, k) for s in default for k in default[s] if default[s][k] != long[s][k]}
    assert changed == {("data", "num_images"), ("optim", "epochs"), ("optim", "warmup_epochs"), ("run", "log_every"),
                       ("run", "checkpoint_every"), ("run", "probe_every"), ("run", "ceiling")}
    steps = lambda c: c["data"]["num_images"] // c["optim"]["batch_size"] * c["optim"]["epochs"]  # noqa: E731
    assert steps(long) == 6 * steps(default)
