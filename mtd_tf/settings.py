"""Settings declared once: a dataclass field carries its default, help text and check.

Configs (`TrainerConfig`, `MTDConfig`) declare each field with `setting(...)`; from those
fields come the absl flags (`define_flags`), the values read back from them
(`values_from_flags`), the range checks (`check_fields`) and the parsing of `key=value`
text (`parse_value`). Adding a setting is one field.
"""

import dataclasses
import math
import types
import typing

from absl import flags

from mtd_tf.errors import ConfigError


def setting(default, help, check=None, choices=None, flag=True):
    """A dataclass field with its help, its check (`value -> error text or None`) and, for
    strings, its allowed values; `flag=False` keeps it out of the generated flags."""
    return dataclasses.field(default=default, metadata={
        "help": help, "check": check, "choices": choices, "flag": flag})


# Checks: each returns what is wrong with a value, or None.

def positive_int(value):
    return None if _is_int(value) and value >= 1 else "must be a positive integer"


def non_negative_int(value):
    return None if _is_int(value) and value >= 0 else "must be an integer >= 0"


def optional_positive_int(value):
    return None if value is None or positive_int(value) is None else (
        "must be a positive integer or unset")


def in_range(low, high, low_open=False, high_open=False):
    """A check for a finite number in [low, high] (`low_open`/`high_open`: excluded)."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"

    def check(value):
        if (not isinstance(value, (int, float)) or isinstance(value, bool)
                or not math.isfinite(value)):
            return f"must be a finite number in {left}{low}, {high}{right}"
        inside = ((value > low if low_open else value >= low)
                  and (value < high if high_open else value <= high))
        return None if inside else f"must be in {left}{low}, {high}{right}"

    return check


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_fields(config):
    """Raises `ConfigError` naming the first field of `config` whose value is not allowed."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        choices = field.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{field.name} must be one of {tuple(choices)}, got {value!r}")
        check = field.metadata.get("check")
        problem = check(value) if check else None
        if problem:
            raise ConfigError(f"{field.name} {problem}, got {value!r}")


def value_type(field):
    """(the Python type of a field's values, whether it may be None)."""
    hint = field.type
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        kinds = [arg for arg in args if arg is not type(None)]
        return kinds[0], type(None) in args
    return hint, False


def parse_value(field, text):
    """The value of `field` written as `text` ("none" unsets an optional field)."""
    kind, optional = value_type(field)
    try:
        if optional and text.strip().lower() in ("none", ""):
            return None
        if kind is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        return kind(text)
    except ValueError:
        raise ConfigError(f"bad value for {field.name}: {text!r}") from None


def flag_fields(*config_classes):
    """The fields that become flags, in declaration order, each name once."""
    seen, fields = set(), []
    for config_class in config_classes:
        for field in dataclasses.fields(config_class):
            if field.metadata.get("flag", False) and field.name not in seen:
                seen.add(field.name)
                fields.append(field)
    return fields


def define_flags(*config_classes, flag_values=flags.FLAGS):
    """Defines an absl flag for every settable field of `config_classes` (already defined
    names, such as the shared --dataset, are left as they are)."""
    for field in flag_fields(*config_classes):
        if field.name not in flag_values:
            _define_flag(field, field.default, field.metadata["help"], flag_values)


def define_choice_flags(named_configs, flag_values=flags.FLAGS):
    """Defines one flag per field name of several configs of which a run uses one (the
    models of `--model`, classes; or the presets of one config, instances). A flag's default
    is None, meaning "the chosen config's own default" (a class's field default, an
    instance's value), and its help lists those defaults; read them with `present_values`."""
    owners = {}  # field name -> [(config name, its default, field)]
    for config_name, config_class in named_configs.items():
        for field in flag_fields(config_class):
            default = getattr(config_class, field.name, field.default)
            owners.setdefault(field.name, []).append((config_name, default, field))
    for name, declared in owners.items():
        if name in flag_values:
            continue
        by_default = {}
        for config_name, default, _ in declared:
            by_default.setdefault(repr(default), []).append(config_name)
        defaults = "; ".join(f"{default} ({', '.join(names)})"
                             for default, names in by_default.items())
        first = declared[0][2]
        _define_flag(first, None, f"{first.metadata['help']} Default: {defaults}.",
                     flag_values)


def present_values(named_configs, flag_values=flags.FLAGS):
    """{field name: parsed value} of the choice flags given on the command line."""
    names = {field.name for config_class in named_configs.values()
             for field in flag_fields(config_class)}
    return {name: flag_values[name].value for name in sorted(names)
            if name in flag_values and flag_values[name].present}


def _define_flag(field, default, help_text, flag_values):
    kind, _ = value_type(field)
    choices = field.metadata.get("choices")
    if choices is not None:
        flags.DEFINE_enum(field.name, default, list(choices), help_text,
                          flag_values=flag_values)
    elif kind is bool:
        flags.DEFINE_bool(field.name, default, help_text, flag_values=flag_values)
    elif kind is int:
        flags.DEFINE_integer(field.name, default, help_text, flag_values=flag_values)
    elif kind is float:
        flags.DEFINE_float(field.name, default, help_text, flag_values=flag_values)
    else:
        flags.DEFINE_string(field.name, default, help_text, flag_values=flag_values)


def values_from_flags(*config_classes, flag_values=flags.FLAGS):
    """{field name: parsed flag value} for every settable field of `config_classes`."""
    return {field.name: flag_values[field.name].value
            for field in flag_fields(*config_classes)}
