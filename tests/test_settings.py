"""Settings declared once: flags, their help, parsing and checks come from the fields."""

import dataclasses

from absl import flags
import pytest

from mtd_tf import settings
from mtd_tf.errors import ConfigError
from mtd_tf.models.mtd_config import MTDConfig
from mtd_tf.training.config import FIELDS
from mtd_tf.training.config import TrainerConfig


@pytest.fixture
def flag_values():
    values = flags.FlagValues()
    settings.define_flags(TrainerConfig, MTDConfig, flag_values=values)
    return values


def test_every_settable_field_is_a_flag_with_its_default_and_help(flag_values):
    for field in settings.flag_fields(TrainerConfig, MTDConfig):
        flag = flag_values[field.name]
        assert flag.default == field.default, field.name
        assert flag.help.endswith(field.metadata["help"])  # enums lead with their choices
    for hidden in ("dataset", "data_dir", "seed"):  # the shared CLI flags define these
        assert hidden not in flag_values


def test_flags_parse_to_typed_values(flag_values):
    flag_values(["prog", "--variant=va", "--lr=0.01", "--frequency=3", "--noaggregation_product",
                 "--graph_writeback=rescale", "--max_train_batches=5"])
    values = settings.values_from_flags(TrainerConfig, MTDConfig, flag_values=flag_values)
    assert values["variant"] == "va" and values["lr"] == 0.01 and values["frequency"] == 3
    assert values["aggregation_product"] is False and values["max_train_batches"] == 5
    assert values["graph_writeback"] == "rescale" and values["session_encoder"] is None
    with pytest.raises(flags.IllegalFlagValueError):
        flag_values(["prog", "--graph_writeback=merge"])


@pytest.mark.parametrize("name, text, value", [
    ("lr", "0.5", 0.5), ("epochs", "3", 3), ("frequency", "none", None), ("frequency", "2", 2),
    ("aggregation_product", "true", True), ("aggregation_product", "False", False),
    ("graph_writeback", "rescale", "rescale"),
])
def test_parse_value_follows_the_field_type(name, text, value):
    assert settings.parse_value(FIELDS[name], text) == value


@pytest.mark.parametrize("name, text", [("epochs", "2.5"), ("aggregation_product", "yes"),
                                        ("lr", "fast")])
def test_parse_value_refuses_what_the_type_cannot_hold(name, text):
    with pytest.raises(ConfigError, match=f"bad value for {name}"):
        settings.parse_value(FIELDS[name], text)


def test_checks_name_the_field_and_the_range():
    @dataclasses.dataclass(frozen=True)
    class Example:
        share: float = settings.setting(0.5, "A share.", settings.in_range(0, 1, low_open=True))
        count: int = settings.setting(1, "A count.", settings.positive_int)

    settings.check_fields(Example())
    with pytest.raises(ConfigError, match=r"share must be in \(0, 1\], got 0"):
        settings.check_fields(Example(share=0))
    with pytest.raises(ConfigError, match="count must be a positive integer, got True"):
        settings.check_fields(Example(count=True))


@dataclasses.dataclass(frozen=True)
class _First:
    width: int = settings.setting(100, "Width.", settings.positive_int)
    rate: float = settings.setting(0.2, "Rate.")
    kind: str = settings.setting("a", "Kind.", choices=("a", "b"))


@dataclasses.dataclass(frozen=True)
class _Second:
    width: int = settings.setting(100, "Width (second).", settings.positive_int)
    rate: float = settings.setting(0.5, "Rate.")


def test_choice_flags_are_one_per_name_and_report_only_what_was_given():
    values = flags.FlagValues()
    named = {"first": _First, "second": _Second}
    settings.define_choice_flags(named, flag_values=values)
    assert [name for name in ("width", "rate", "kind") if name in values] == [
        "width", "rate", "kind"]
    assert values["rate"].default is None  # the chosen config's own default applies
    assert values["rate"].help == "Rate. Default: 0.2 (first); 0.5 (second)."
    assert values["width"].help == "Width. Default: 100 (first, second)."
    values(["prog", "--rate=0.3"])
    assert settings.present_values(named, flag_values=values) == {"rate": 0.3}
    values(["prog", "--kind=b", "--width=7"])
    assert settings.present_values(named, flag_values=values) == {
        "kind": "b", "rate": 0.3, "width": 7}
