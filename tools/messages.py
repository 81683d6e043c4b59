"""The gettext catalogues' upkeep: `make messages` (extract + update), checks, and importing old-style dicts.

    python -m tools.messages update         extract ids from the code and templates (babel.cfg), add new ids
                                            to both .po files with empty text, drop ids nothing uses, keep the
                                            en catalogue's `--help` texts equal to the command definitions
    python -m tools.messages check          list what tests/relicflow/test_messages.py would fail on
    python -m tools.messages import-dicts FILE.py
                                            fill empty entries from {"id": {"zh-CN": ..., "en": ...}} dicts in a
                                            Python file (the format of relicflow/i18n.py before the catalogues;
                                            for branches written against it), turning {name} into %(name)s

Message ids are symbolic (``web.queue.title``); both catalogues carry the full text. Ids the code builds at run
time are declared in relicflow/message_ids.py; `relicflow --help` texts come from the command tree.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from relicflow.i18n import DOMAIN, GETTEXT_NAMES, SUPPORTED_LOCALES, catalogue_path

ROOT = Path(__file__).resolve().parent.parent
MAPPING = ROOT / "babel.cfg"
# Babel's own keywords (_, gettext, ngettext, N_, pgettext, ...) plus relicflow's lookups: t(key, locale),
# the CLI's _t(key, settings) / say(key) / _say(settings, key), cli_help's _text(key, locale), and the review
# app's error_page(request, status, key), a decision's Problem(key, ...) and the API's ApiRefused(status, code,
# key) / api_error(status, code, key).
KEYWORDS: dict[str, tuple[int, ...] | None] = {
    "_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "pgettext": ((1, "c"), 2),  # type: ignore[dict-item]
    "t": (1,), "_t": (1,), "say": (1,), "_say": (2,), "_text": (1,), "error_page": (3,),
    "Problem": (1,), "ApiRefused": (3,), "api_error": (3,),
}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdrif]")
FORMAT_BRACE = re.compile(r"\{\w+\}")
WRITE_OPTIONS = {"width": 120, "no_location": True, "sort_output": True, "ignore_obsolete": True}
HELP_OPTION_ID = "cli.help.option.help"


def extracted_ids() -> dict[str, list[str]]:
    """Every literal message id in the code and templates (Babel's extraction over babel.cfg) -> where."""
    with MAPPING.open() as f:
        method_map, options_map = parse_mapping_cfg(f, str(MAPPING))
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def help_texts() -> dict[str, str]:
    """``cli.help.*`` id -> the English help written at each command's and option's definition."""
    import click
    import typer

    from relicflow.cli import app
    from relicflow.cli_help import help_keys

    root = typer.main.get_command(app)
    texts = help_keys(root)
    help_option = root.get_help_option(click.Context(root))
    texts[HELP_OPTION_ID] = help_option.help if help_option is not None and help_option.help else "Show this message and exit."
    return texts


def used_ids() -> set[str]:
    return set(extracted_ids()) | set(help_texts())


def read_catalogue(locale: str, path: Path | None = None) -> Catalog:
    """A fresh read of ``locale``'s .po file (relicflow.i18n caches its own copy for the running app)."""
    with (path or catalogue_path(locale)).open("rb") as f:
        return read_po(f, locale=GETTEXT_NAMES[locale], domain=DOMAIN)


def write_catalogue(catalogue: Catalog, locale: str, path: Path | None = None) -> None:
    with (path or catalogue_path(locale)).open("wb") as f:
        write_po(f, catalogue, **WRITE_OPTIONS)  # type: ignore[arg-type]


def text_of(catalogue: Catalog, msgid: str) -> str:
    entry = catalogue.get(msgid)
    if entry is None or not entry.string:
        return ""
    return entry.string if isinstance(entry.string, str) else entry.string[0]


def catalogue_problems(catalogues: Mapping[str, Catalog], used: Iterable[str],
                       english_help: Mapping[str, str] | None = None) -> list[str]:
    """Everything that makes the catalogues wrong, one line each: ids used but missing, empty or fuzzy texts,
    placeholders that differ between the languages or that gettext cannot fill, ids nothing uses, and
    en `--help` texts that no longer match the command definitions."""
    used = set(used)
    problems: list[str] = []
    ids: dict[str, set[str]] = {locale: {m.id for m in cat if m.id} for locale, cat in catalogues.items()}
    for locale, cat in catalogues.items():
        for msgid in sorted(used - ids[locale]):
            problems.append(f"{locale}: missing {msgid!r} (used in the code; run `make messages` and translate it)")
        for msgid in sorted(ids[locale] - used):
            problems.append(f"{locale}: unused {msgid!r} (nothing uses it; `make messages` drops it, or declare a "
                            "built id in relicflow/message_ids.py)")
        for m in cat:
            if not m.id:
                continue
            text = text_of(cat, m.id)
            if not text:
                problems.append(f"{locale}: empty translation of {m.id!r}")
            if m.fuzzy:
                problems.append(f"{locale}: fuzzy translation of {m.id!r} (check it, then remove the fuzzy flag)")
            if FORMAT_BRACE.search(text):
                problems.append(f"{locale}: {m.id!r} has a str.format placeholder; write %(name)s")
            try:
                text % {name: "x" for name in PLACEHOLDER.findall(text)}
            except (ValueError, TypeError, KeyError) as exc:
                problems.append(f"{locale}: {m.id!r} is not a valid %-format ({exc}); write a literal % as %%")
    locales = list(catalogues)
    for msgid in sorted(set.intersection(*ids.values())) if ids else []:
        names = {locale: set(PLACEHOLDER.findall(text_of(catalogues[locale], msgid))) for locale in locales}
        if len({frozenset(n) for n in names.values()}) > 1:
            shown = ", ".join(f"{locale} {sorted(n)}" for locale, n in names.items())
            problems.append(f"placeholders of {msgid!r} differ: {shown}")
    if english_help and "en" in catalogues:
        for msgid, english in sorted(english_help.items()):
            if msgid in ids["en"] and text_of(catalogues["en"], msgid) != english:
                problems.append(f"en: {msgid!r} differs from the command's own help text; run `make messages`")
    return problems


def update(catalogues: dict[str, Catalog], found: Mapping[str, list[str]], english_help: Mapping[str, str]) -> list[str]:
    """Bring ``catalogues`` in line with the code: new ids added empty, unused ids dropped, en help copied
    from the definitions (its Chinese marked fuzzy when the English changed). Returns what it did."""
    template = Catalog(domain=DOMAIN, project="relicflow")
    for msgid, where in found.items():
        template.add(msgid, locations=[(w.rsplit(":", 1)[0], int(w.rsplit(":", 1)[1])) for w in where])
    for msgid, english in english_help.items():
        template.add(msgid, auto_comments=[f"English (the definition): {english}"])
    report: list[str] = []
    changed_help = {msgid for msgid, english in english_help.items()
                    if (old := text_of(catalogues["en"], msgid)) and old != english}
    for locale, cat in catalogues.items():
        before = {m.id for m in cat if m.id}
        template.creation_date = cat.creation_date  # no date churn in the files when nothing changed
        cat.update(template, no_fuzzy_matching=True, update_header_comment=False)
        after = {m.id for m in cat if m.id}
        report += [f"{locale}: added {msgid} (empty: translate it)" for msgid in sorted(after - before)]
        report += [f"{locale}: dropped {msgid} (unused)" for msgid in sorted(before - after)]
        cat.obsolete.clear()
        if locale == "en":
            for msgid, english in english_help.items():
                cat[msgid].string = english
                cat[msgid].auto_comments = []  # the text itself is the English
        else:
            for msgid in sorted(changed_help):
                cat[msgid].flags.add("fuzzy")
                report.append(f"{locale}: {msgid} marked fuzzy: its English help changed")
    return report


def old_style_dicts(source: str) -> dict[str, dict[str, str]]:
    """``{"id": {"zh-CN": "...", "en": "..."}}`` entries written as literals anywhere in a Python file."""
    entries: dict[str, dict[str, str]] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Dict):
            continue
        for key, value in zip(node.keys, node.values):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str) and isinstance(value, ast.Dict)):
                continue
            try:
                texts = ast.literal_eval(value)
            except ValueError:
                continue
            if isinstance(texts, dict) and set(texts) & set(SUPPORTED_LOCALES) and all(isinstance(v, str) for v in texts.values()):
                entries[key.value] = texts
    return entries


def import_dicts(catalogues: Mapping[str, Catalog], entries: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Fill the catalogues' empty entries from old-style dict entries ({name} becomes %(name)s); an entry
    that already has a text is left as it is. Ids the code does not use yet are skipped (run update first)."""
    report: list[str] = []
    for msgid, texts in sorted(entries.items()):
        for locale, cat in catalogues.items():
            entry = cat.get(msgid)
            text = texts.get(locale)
            if entry is None or not text or text_of(cat, msgid):
                continue
            entry.string = FORMAT_BRACE.sub(lambda m: f"%({m.group(0)[1:-1]})s", text.replace("%", "%%"))
            report.append(f"{locale}: {msgid} filled")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.messages", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("update")
    sub.add_parser("check")
    imported = sub.add_parser("import-dicts")
    imported.add_argument("source", type=Path)
    args = parser.parse_args(argv)
    catalogues = {locale: read_catalogue(locale) for locale in SUPPORTED_LOCALES}
    if args.command == "check":
        problems = catalogue_problems(catalogues, used_ids(), help_texts())
        print("\n".join(problems) or "catalogues complete")
        return 1 if problems else 0
    if args.command == "update":
        report = update(catalogues, extracted_ids(), help_texts())
    else:
        report = import_dicts(catalogues, old_style_dicts(args.source.read_text(encoding="utf-8")))
    for locale, cat in catalogues.items():
        write_catalogue(cat, locale)
    print("\n".join(report) or "nothing to change")
    problems = catalogue_problems(catalogues, used_ids(), help_texts())
    if problems:
        print(f"\n{len(problems)} problem(s) left:\n" + "\n".join(problems))
    return 0


if __name__ == "__main__":
    sys.exit(main())
