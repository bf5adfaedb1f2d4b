"""Config: presets load, flags override, unknown or invalid fields are named."""
import pytest

from model.settings import ConfigError
from stream.jobs.config import CutoutConfig, LiveConfig, load_config, load_live_config, preset_names
from stream.stages.guided_filter import UPSAMPLERS
from stream.stages.matting import MattingStage


@pytest.mark.parametrize("preset", preset_names())
def test_every_cutout_preset_loads(preset):
    assert isinstance(load_config(preset), CutoutConfig)


@pytest.mark.parametrize("preset", LiveConfig.presets())
def test_every_live_preset_loads(preset):
    assert isinstance(load_live_config(preset), LiveConfig)


def test_each_command_lists_its_own_presets():
    assert preset_names() == ["offline_cutout", "transparent_overlay"]
    assert LiveConfig.presets() == ["virtual_background"]
    with pytest.raises(ConfigError) as e:
        load_config("nope")
    assert "offline_cutout, transparent_overlay)" in e.value.hint and "virtual_background" not in e.value.hint


def test_a_live_preset_gives_cutout_its_shared_fields_and_ignores_live_ones(caplog):
    with caplog.at_level("DEBUG", logger="stream.jobs.config"):
        c = load_config("virtual_background")
    assert (c.infer_size, c.background, c.preset) == (384, "blur:25", "ultrafast")
    assert "alpha_wait_ms" in caplog.text and "camera_backend" in caplog.text      # reported at debug only


def test_a_cutout_preset_in_live_ignores_offline_only_fields(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("command: cutout\nrefine: true\ncrf: 30\n")
    assert load_live_config(f).crf == 30
    f.write_text("refine: true\ncrf: 30\n")          # without `command: cutout` it is for live: refused
    with pytest.raises(ConfigError, match="refine"):
        load_live_config(f)


def test_a_field_neither_command_knows_is_still_refused(tmp_path):
    f = tmp_path / "live.yaml"
    f.write_text("command: live\nalpha_wait_ms: 20\nbogus: 1\n")
    with pytest.raises(ConfigError, match="bogus"):
        load_config(f)


def test_a_training_preset_is_refused_by_the_video_commands():
    with pytest.raises(ConfigError, match="p3m train"):
        load_config("train_p3m10k")


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
