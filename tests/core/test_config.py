"""Config files, includes, overrides and validation."""

from pathlib import Path

import pytest
import yaml

from utrack.config import CONFIG_DIR, Config, load_config, parse_override, save_config
from utrack.errors import ConfigError


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults_are_the_paper_defaults():
    cfg = Config()
    assert cfg.model.backbone == "dla34" and cfg.data.input_size == [1088, 608]
    assert cfg.loss.wh_weight == 0.1 and cfg.loss.s_det == -1.85 and cfg.loss.s_id == -1.05
    assert cfg.train.lr == 1e-4 and cfg.train.epochs == 30 and cfg.train.lr_step == [20]
    assert cfg.data.pair_window == 20 and cfg.data.neg_ratio == 0.25
    assert cfg.occlusion.tau == 0.7 and cfg.occlusion.weight == 0.5 and cfg.occlusion.tau_o == 0.7


def test_base_include_and_override_order(tmp_path):
    write(tmp_path / "base.yaml", {"train": {"lr": 0.1, "epochs": 3}, "model": {"backbone": "resnet18"}})
    write(tmp_path / "child.yaml", {"base": "base.yaml", "train": {"epochs": 5}})
    cfg = load_config([tmp_path / "child.yaml"], ["train.batch_size=2", "train.lr_step=[1,2]"],
                      extra={"train": {"lr": 0.2}})
    assert cfg.train.lr == 0.2  # tool flag beats files
    assert cfg.train.epochs == 5  # child beats base
    assert cfg.model.backbone == "resnet18"  # inherited
    assert cfg.train.batch_size == 2 and cfg.train.lr_step == [1, 2]  # --set wins last


def test_unknown_key_suggests_nearest(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'train.eopchs'.*did you mean 'train.epochs'"):
        load_config([], ["train.eopchs=3"])
    write(tmp_path / "bad.yaml", {"tracker": {"conf_thresh": 0.5}})
    with pytest.raises(ConfigError, match=r"tracker.conf_thresh.*did you mean 'tracker.conf_thres'"):
        load_config([tmp_path / "bad.yaml"])
    with pytest.raises(ConfigError, match=r"unknown config key 'modle'.*did you mean 'model'"):
        load_config([], ["modle.backbone=dla34"])
    # a key at the wrong level: no near name there, so the full path of the field is suggested
    with pytest.raises(ConfigError, match=r"unknown config key 'augment'.*did you mean 'data.augment'"):
        load_config([], ["augment.pair_jitter=0.2"])
    with pytest.raises(ConfigError, match=r"'tracker.pair_jitter'.*did you mean 'data.augment.pair_jitter'"):
        load_config([], ["tracker.pair_jitter=0.2"])


def test_types_and_choices_are_checked():
    with pytest.raises(ConfigError, match="train.epochs: expected an integer"):
        load_config([], ["train.epochs=ten"])
    with pytest.raises(ConfigError, match=r"reid.mode: 'unsupervisd' is not one of.*did you mean 'unsupervised'"):
        load_config([], ["reid.mode=unsupervisd"])
    with pytest.raises(ConfigError, match="expected true or false"):
        load_config([], ["occlusion.enabled=maybe"])
    with pytest.raises(ConfigError, match="train.cpu_bf16: expected true, false or auto, got 'fast'"):
        load_config([], ["train.cpu_bf16=fast"])
    assert load_config([], ["train.cpu_bf16=auto"]).train.cpu_bf16 == "auto"
    assert load_config([], ["train.cpu_bf16=true"]).train.cpu_bf16 is True
    cfg = load_config([], ["reid.matching.temperature=5", "train.init=null"])
    assert cfg.reid.matching.temperature == 5.0 and isinstance(cfg.reid.matching.temperature, float)
    assert cfg.train.init is None
    assert load_config([], []).reid.matching.temperature == "adaptive"
    assert load_config([], ["train.lr=1e-3"]).train.lr == 1e-3  # YAML 1.1 reads 1e-3 as a string


def test_circular_base_and_missing_file(tmp_path):
    write(tmp_path / "a.yaml", {"base": "b.yaml"})
    write(tmp_path / "b.yaml", {"base": "a.yaml"})
    with pytest.raises(ConfigError, match="circular"):
        load_config([tmp_path / "a.yaml"])
    with pytest.raises(ConfigError, match="not found"):
        load_config([tmp_path / "missing.yaml"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("train.lr")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config([], ["train.epochs=7", "data.roots=[a, b]"])
    path = save_config(cfg, tmp_path)
    assert path.name == "config.yaml"
    again = load_config([path])
    assert again == cfg


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIG_DIR.glob("*.yaml")))
def test_shipped_configs_validate(name):
    load_config([CONFIG_DIR / name])
