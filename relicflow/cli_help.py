"""`relicflow --help` in the chosen language.

Typer turns docstrings and ``help=`` into click objects when the app is called, before any command runs
and before settings are loaded. So the root group (:class:`LocalisedGroup`) decides the language from the
command line, ``RELICFLOW_LOCALE`` and the TOML file first (the same order as :mod:`relicflow.settings`),
then puts the Chinese texts of ``cli.help.*`` (the zh_CN catalogue, relicflow/locale) on every command and option of the
tree it is about to run. English is the text written at each definition; one app, one set of commands. The en catalogue holds a copy
of it that `make messages` keeps equal to the definitions (tests/relicflow/test_messages.py checks), so the
catalogues are complete for translators' tools and a changed English help marks its Chinese fuzzy.

Keys: ``cli.help.cmd.<path>`` for a command's description and ``cli.help.opt.<path>.<param>`` for an
option or argument, where ``<path>`` is the command path without the program (``items``, ``users.add``;
``relicflow`` for the root), and ``<param>`` the parameter's Python name.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from typer.core import TyperGroup

from relicflow.i18n import DEFAULT_LOCALE, message, normalise_locale

log = logging.getLogger("relicflow.cli")

ROOT = "relicflow"
# typer's default panel titles, named per language through rich_help_panel (a public Typer feature)
_PANELS = {"zh-CN": {"options": "选项", "arguments": "参数", "commands": "命令"}}


def early_locale(args: Sequence[str], environ: Mapping[str, str] | None = None) -> str:
    """The language the settings will choose, known before they are loaded: --lang, RELICFLOW_LOCALE, TOML.

    A value that is not a language falls back to the default here; the settings then refuse it with a
    clear message, so help never fails because of it.
    """
    env = os.environ if environ is None else environ
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--lang" and i + 1 < len(args):
            return _known(args[i + 1])
        if arg.startswith("--lang="):
            return _known(arg.removeprefix("--lang="))
    if env.get("RELICFLOW_LOCALE"):
        return _known(env["RELICFLOW_LOCALE"])
    toml_path = Path(env.get("RELICFLOW_CONFIG", "relicflow.toml"))
    try:
        with toml_path.open("rb") as f:
            value = tomllib.load(f).get("locale")
    except FileNotFoundError:
        return DEFAULT_LOCALE
    except (OSError, tomllib.TOMLDecodeError) as exc:  # the settings report it properly when a command runs
        log.debug("help language: cannot read %s: %s", toml_path, exc)
        return DEFAULT_LOCALE
    return _known(value) if isinstance(value, str) else DEFAULT_LOCALE


def _known(value: str) -> str:
    return normalise_locale(value) or DEFAULT_LOCALE


def walk_commands(command: Any, path: str = ROOT) -> Iterator[tuple[str, Any]]:
    """Every command of the tree with its key path: ("relicflow", root), ("items", …), ("users.add", …)."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk_commands(sub, name if path == ROOT else f"{path}.{name}")


def help_keys(command: Any) -> dict[str, str]:
    """Key -> English help of every described command and parameter (what the Chinese table must cover)."""
    keys: dict[str, str] = {}
    for path, cmd in walk_commands(command):
        if cmd.help:
            keys[f"cli.help.cmd.{path}"] = cmd.help
        for param in cmd.params:
            if getattr(param, "help", None):
                keys[f"cli.help.opt.{path}.{param.name}"] = param.help
    return keys


def localise_help(command: Any, locale: str) -> None:
    """Put ``locale``'s help texts on every command and parameter under ``command`` (English: as written)."""
    if locale == "en":
        return
    panels = _PANELS[locale]
    for path, cmd in walk_commands(command):
        text = _text(f"cli.help.cmd.{path}", locale)
        if text is not None:
            cmd.help = text
            cmd.short_help = None
        if not getattr(cmd, "rich_help_panel", None):  # None, or typer's falsy DefaultPlaceholder
            cmd.rich_help_panel = panels["commands"]
        for param in cmd.params:
            text = _text(f"cli.help.opt.{path}.{param.name}", locale)
            if text is not None:
                param.help = text
            if not getattr(param, "rich_help_panel", None):
                param.rich_help_panel = panels["arguments" if param.param_type_name == "argument" else "options"]
        help_option = cmd.get_help_option(_bare_context(cmd))  # created once and cached by click
        if help_option is not None:
            help_option.help = _text("cli.help.option.help", locale) or help_option.help
            help_option.rich_help_panel = panels["options"]


def _bare_context(cmd: Any) -> Any:
    from typer import _click

    return _click.Context(cmd, **(cmd.context_settings or {}))  # the help option names the real context will use


def _text(key: str, locale: str) -> str | None:
    return message(key, locale)


class LocalisedGroup(TyperGroup):
    """The root `relicflow` group: localises the whole command tree once, before parsing the command line."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        if parent is None:
            localise_help(self, early_locale(args))
        return super().make_context(info_name, args, parent=parent, **extra)
