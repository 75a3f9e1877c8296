from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from semiasr.config import ExperimentConfig, available_configs, load_config, to_yaml
from semiasr.errors import ConfigError

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "configs"


def test_defaults_are_the_schema() -> None:
    cfg = load_config()
    assert OmegaConf.to_object(cfg) == ExperimentConfig()


def test_override_applies_and_is_typed() -> None:
    cfg = load_config("demo", ["model.d_model=256", "optim.lr=3e-4", "data.train=[a,b]"])
    assert cfg.model.d_model == 256 and isinstance(cfg.model.d_model, int)
    assert cfg.optim.lr == pytest.approx(3e-4)
    assert list(cfg.data.train) == ["a", "b"]


def test_file_values_win_over_defaults_and_overrides_win_over_file() -> None:
    assert load_config("fsdd").data.features.sample_rate == 8000
    cfg = load_config("fsdd", ["data.features.sample_rate=16000"])
    assert cfg.data.features.sample_rate == 16000


def test_typo_names_key_and_suggests_closest() -> None:
    with pytest.raises(ConfigError) as e:
        load_config("demo", ["modle.d_model=1"])
    assert e.value.key == "modle"
    assert e.value.suggestion == "model"
    assert "modle" in str(e.value) and "'model'" in str(e.value)


def test_nested_typo_names_full_place() -> None:
    with pytest.raises(ConfigError) as e:
        load_config(None, ["data.features.num_mel_bin=40"])
    assert e.value.key == "data.features.num_mel_bin"
    assert e.value.suggestion == "data.features.num_mel_bins"


def test_wrong_type_names_key_and_type() -> None:
    with pytest.raises(ConfigError) as e:
        load_config("demo", ["model.d_model=abc"])
    assert e.value.key == "model.d_model"
    assert "int" in str(e.value) and "abc" in str(e.value)


def test_typo_in_yaml_file_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("model:\n  d_modle: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert str(f) in str(e.value) and e.value.suggestion == "model.d_model"


def test_wrong_type_in_yaml_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("train:\n  max_steps: lots\n")
    with pytest.raises(ConfigError, match=r"train\.max_steps"):
        load_config(f)


def test_section_set_as_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="section"):
        load_config(None, ["model=3"])


def test_malformed_override() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["model.d_model"])


def test_unknown_config_name_suggests() -> None:
    with pytest.raises(ConfigError) as e:
        load_config("dmeo")
    assert e.value.suggestion == "demo"


@pytest.mark.parametrize("name", available_configs())
def test_shipped_config_matches_golden(name: str, update_golden: bool) -> None:
    """The resolved text of each shipped config is checked in, so any drift shows in review.
    Regenerate with `pytest tests/unit/config --update-golden`."""
    text = to_yaml(load_config(name))
    golden = GOLDEN / f"{name}.yaml"
    if update_golden:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.is_file(), f"no golden file for {name}; run pytest --update-golden"
    assert text == golden.read_text(), f"{name} drifted from {golden}; review and --update-golden"


def test_every_shipped_config_has_a_golden() -> None:
    names = set(available_configs())
    goldens = {p.stem for p in GOLDEN.glob("*.yaml")}
    assert names == goldens, f"configs without golden or goldens without config: {names ^ goldens}"


def test_dict_valued_key_accepts_mapping_and_reports_bad_values() -> None:
    cfg = load_config(None, ["data.domains={a: 3, b: 4}"])
    assert dict(cfg.data.domains) == {"a": 3, "b": 4}
    with pytest.raises(ConfigError, match=r"data\.domains"):
        load_config(None, ["data.domains={a: x}"])
