"""Config: presets load, flags override, unknown or invalid fields are named."""
import pytest

from model.settings import ConfigError
from stream.jobs.config import CutoutConfig, LiveConfig, load_config, load_live_config, preset_names
from stream.stages.guided_filter import UPSAMPLERS
from stream.stages.matting import MattingStage

LIVE_PRESETS = {"virtual_background"}


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_loads(preset):
    if preset in LIVE_PRESETS:
        assert isinstance(load_live_config(preset), LiveConfig)
    else:
        assert isinstance(load_config(preset), CutoutConfig)


def test_presets_differ_from_defaults():
    assert load_config("transparent_overlay").background == "transparent"
    assert load_live_config("virtual_background").queue_size == 2


def test_flags_override_the_file_and_none_means_unset(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("crf: 30\nbackground: blur\n")
    c = load_config(f, crf=20, background=None)
    assert (c.crf, c.background) == (20, "blur")


@pytest.mark.parametrize("text, field", [
    ("bogus: 1\n", "bogus"),
    ("crf: 99\n", "crf"),
    ("infer_size: 5000\n", "infer_size"),
    ("smoothing: maybe\n", "smoothing"),
    ("device: tpu\n", "device"),
    ("infer-size: 17\n", "infer_size"),
])
def test_bad_fields_are_named_with_the_file(tmp_path, text, field):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert field in str(e.value) and "bad.yaml" in str(e.value)


def test_the_upsample_choices_are_the_matting_stages():
    assert CutoutConfig.CHOICES["upsample"] is MattingStage.UPSAMPLERS is UPSAMPLERS


def test_the_size_step_is_the_models_to_check_not_the_configs():
    # MediaPipe takes any size, P3M-Net steps of 32: the matting stage checks against the model it runs.
    assert load_config(infer_size=500).infer_size == 500
    assert load_live_config(infer_size=100).infer_size == 100


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(tmp_path / "broken.yaml")
