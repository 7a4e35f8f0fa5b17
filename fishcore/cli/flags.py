"""Flags generated from the configs: one `train` flag per setting (its help, limits and choices from the setting's
Rule in fishcore.config), one augmentation flag per entry of AUGMENT_SPEC. The CLI can never drift from them."""

from __future__ import annotations

import argparse

from fishcore.config import AUGMENT_SPEC, AugmentConfig, DataConfig, Rule, TrainConfig
from fishcore.models.config import ModelConfig
from fishcore.training.run import TRAIN_SETTINGS

# Names whose flag is not simply --<name-with-dashes> (besides a Rule's off_flag).
_FLAGS = {"n": "-n", "class_name": "--class"}


def flag_of(name: str) -> str:
    """The command-line flag of a setting or option, for error messages."""
    setting = TRAIN_SETTINGS.get(name)
    if setting is not None and setting.rule.off_flag:
        return setting.rule.off_flag
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def _typed(rule: Rule):
    """argparse's type for a setting: a number in the words the config's own checks use."""
    if rule.kind is int:
        words, convert = "a whole number", int
    elif rule.kind is float:
        words, convert = "a number", float
    else:
        return str

    def parse(text: str):
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {words}") from None

    parse.__name__ = rule.kind.__name__
    return parse


def _default_words(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_setting_flags(p: argparse.ArgumentParser, settings=None) -> None:
    """One flag per setting of ``settings`` (default: DataConfig, ModelConfig and TrainConfig's, then the augmentation
    flags; `serve` gives the field server's).

    Every flag defaults to None (not given): the config's own default applies, and `train` can tell what a
    user set (auto mode's note on --epochs). A setting whose default is None says in its help what that means.
    """
    for name, setting in (TRAIN_SETTINGS if settings is None else settings).items():
        rule, default = setting.rule, setting.default
        said = "" if default is None else f" (default: {_default_words(default)})"
        if rule.off_flag:
            words = rule.help.split(" (")[0]  # the help's first part: what the flag turns off
            p.add_argument(rule.off_flag, dest=name, action="store_false", default=None, help=f"do not {words}")
        elif rule.kind is bool:
            p.add_argument(flag_of(name), dest=name, action=argparse.BooleanOptionalAction, default=None, help=rule.help + said)
        elif rule.choices:
            p.add_argument(flag_of(name), dest=name, choices=rule.choices, default=None, help=rule.help + said)
        else:
            metavar = {int: "N", float: "X"}.get(rule.kind, name.upper())
            p.add_argument(flag_of(name), dest=name, type=_typed(rule), default=None, metavar=metavar, help=rule.help + said)
    if settings is None:
        add_augment_flags(p)


def configs_from_flags(args: argparse.Namespace) -> tuple[DataConfig, ModelConfig, TrainConfig]:
    """The three configs from the flags given (each checks its values); a flag not given leaves the config's default."""
    given = {name: getattr(args, name) for name in TRAIN_SETTINGS if getattr(args, name) is not None}

    def build(cls, **extra):
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in given.items() if k in names}, **extra)

    return build(DataConfig), build(ModelConfig), build(TrainConfig, augment=augment_config(args))


def add_augment_flags(p: argparse.ArgumentParser) -> None:
    """One flag per entry of the augmentation spec."""
    defaults = AugmentConfig()
    g = p.add_argument_group(
        "augmentation (defaults: the paper's, plus mild colour jitter; jitters at 0 give exactly the paper's)"
    )
    for spec in AUGMENT_SPEC:
        flag = "--" + spec.name.replace("_", "-")
        default = getattr(defaults, spec.name)
        if spec.kind == "bool":
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=f"{spec.help} (default: {default})")
        elif spec.kind == "range":
            g.add_argument(flag, type=float, nargs=2, metavar=("MIN", "MAX"), default=list(default),
                           help=f"{spec.help} (default: {default[0]} {default[1]})")  # fmt: skip
        else:
            g.add_argument(flag, type=float, default=default, help=f"{spec.help} (default: {default})")


def augment_config(args: argparse.Namespace) -> AugmentConfig:
    values = {}
    for spec in AUGMENT_SPEC:
        v = getattr(args, spec.name)
        values[spec.name] = tuple(v) if spec.kind == "range" else v
    return AugmentConfig(**values)
