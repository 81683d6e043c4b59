"""User-facing text in Simplified Chinese (the default) and English, from gettext catalogues.

The catalogues are ``relicflow/locale/<zh_CN|en>/LC_MESSAGES/relicflow.po``, one domain for the review app
(``web.*`` ids) and the command line (``cli.*``). Message ids are symbolic, so both catalogues are complete
translations and a call site names a message, not its English wording. Placeholders are Python's
``%(name)s`` (gettext's python-format, what Jinja2's i18n extension formats with): ``t("web.item.title",
"en", id=7)``. The .po files are read at run time through Babel and compiled in memory, so a fresh clone
needs no compile step and no .mo file exists to go stale. README "Adding a message" says how to add one.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

log = logging.getLogger("relicflow.i18n")

DEFAULT_LOCALE = "zh-CN"
SUPPORTED_LOCALES = ("zh-CN", "en")
DOMAIN = "relicflow"
LOCALE_DIR = Path(__file__).parent / "locale"

# Names of the languages in themselves, for the language switch.
LOCALE_NAMES = {"zh-CN": "中文", "en": "English"}

# The product's locale names (BCP 47, as in settings and the lang cookie) and gettext's directory names.
GETTEXT_NAMES = {"zh-CN": "zh_CN", "en": "en"}


def N_(message_id: str) -> str:
    """Marks a message id for extraction where the text is looked up later (gettext_noop)."""
    return message_id


def catalogue_path(locale: str) -> Path:
    return LOCALE_DIR / GETTEXT_NAMES[locale] / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=None)
def catalogue(locale: str) -> Catalog:
    """``locale``'s .po file as Babel reads it (ids, translations, fuzzy flags)."""
    with catalogue_path(locale).open("rb") as f:
        return read_po(f, locale=GETTEXT_NAMES[locale], domain=DOMAIN)


@lru_cache(maxsize=None)
def translations(locale: str) -> Translations:
    """Standard gettext translations for ``locale``, compiled in memory from its .po file.

    Fuzzy and empty entries are left out (as msgfmt does); a message missing in English falls back to the
    Chinese, and one missing in both comes back as its id, so a page never fails over a missing text.
    """
    buffer = BytesIO()
    write_mo(buffer, catalogue(locale), use_fuzzy=False)
    buffer.seek(0)
    compiled = Translations(buffer, domain=DOMAIN)
    if locale != DEFAULT_LOCALE:
        compiled.add_fallback(translations(DEFAULT_LOCALE))
    return compiled


def known_locale(locale: str) -> str:
    return locale if locale in GETTEXT_NAMES else DEFAULT_LOCALE


def t(key: str, locale: str, **kwargs: object) -> str:
    """The message ``key`` in ``locale`` with ``kwargs`` filled in; falls back to zh-CN, then to the key."""
    text = translations(known_locale(locale)).gettext(key)
    return text % kwargs if kwargs else text


def message(key: str, locale: str) -> str | None:
    """The text of ``key`` in exactly ``locale``'s catalogue (no fallback), or None when it has none."""
    entry = catalogue(known_locale(locale)).get(key)
    if entry is None or not entry.string or entry.fuzzy:
        return None
    return entry.string if isinstance(entry.string, str) else entry.string[0]


def has_message(key: str) -> bool:
    return message(key, DEFAULT_LOCALE) is not None


def normalise_locale(value: str | None) -> str | None:
    """A supported locale for a language tag (``zh``, ``zh-Hans-CN``, ``en-GB`` ...), or None."""
    if not value:
        return None
    tag = value.strip().replace("_", "-").lower()
    if tag in ("zh-cn", "zh", "zh-hans", "zh-sg") or tag.startswith(("zh-cn-", "zh-hans")):
        return "zh-CN"
    if tag.startswith("zh-"):  # zh-TW, zh-HK, zh-Hant: Simplified Chinese still reads better than English
        return "zh-CN"
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return None


def _accept_language(header: str) -> list[str]:
    """Language tags of an Accept-Language header, most preferred first (q=0 dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate_locale(query_lang: str | None, cookie_lang: str | None, accept_language: str | None, default: str) -> str:
    """The page language: an explicit ``?lang=``, then the ``lang`` cookie, then the browser's
    Accept-Language, then the configured default (zh-CN unless settings say otherwise)."""
    for choice in (query_lang, cookie_lang):
        locale = normalise_locale(choice)
        if locale is not None:
            return locale
    for tag in _accept_language(accept_language or ""):
        locale = normalise_locale(tag)
        if locale is not None:
            return locale
    return default if default in SUPPORTED_LOCALES else DEFAULT_LOCALE
