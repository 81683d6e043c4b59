"""The gettext catalogues: complete in both languages, every message used, placeholders that agree, and the
tooling (`make messages`, tools/messages.py) and template wiring that keep them so."""

from __future__ import annotations

import pytest
from babel.messages.catalog import Catalog

from relicflow.catalogue.fixity import OUTCOMES, ROLES
from relicflow.catalogue.models import ItemStatus, Role
from relicflow.i18n import SUPPORTED_LOCALES, message, t
from relicflow.message_ids import DYNAMIC_MESSAGE_IDS
from review_ui.web import make_templates
from tools.messages import (
    catalogue_problems,
    extracted_ids,
    help_texts,
    import_dicts,
    old_style_dicts,
    read_catalogue,
    text_of,
    update,
    used_ids,
)


def small_catalogues(zh: dict[str, str], en: dict[str, str], fuzzy: tuple[str, ...] = ()) -> dict[str, Catalog]:
    catalogues = {"zh-CN": Catalog(locale="zh_CN", domain="relicflow"), "en": Catalog(locale="en", domain="relicflow")}
    for locale, texts in (("zh-CN", zh), ("en", en)):
        for msgid, text in texts.items():
            catalogues[locale].add(msgid, text, flags=("fuzzy",) if msgid in fuzzy else ())
    return catalogues


def test_the_catalogues_are_complete_consistent_and_every_message_is_used() -> None:
    catalogues = {locale: read_catalogue(locale) for locale in SUPPORTED_LOCALES}
    problems = catalogue_problems(catalogues, used_ids(), help_texts())
    assert not problems, "run `make messages`, then translate (README: Adding a message):\n" + "\n".join(problems)


def test_the_check_reports_missing_unused_empty_fuzzy_and_mismatched_messages() -> None:
    catalogues = small_catalogues(
        zh={"x.ok": "共 %(n)s 件", "x.empty": "", "x.fuzzy": "旧", "x.unused": "无用", "x.places": "%(a)s 与 %(b)s",
            "x.brace": "{n} 件", "x.percent": "完成 100%"},
        en={"x.ok": "%(n)s items", "x.empty": "empty", "x.fuzzy": "old", "x.unused": "unused", "x.places": "%(a)s only",
            "x.brace": "%(n)s items", "x.percent": "100%% done"},
        fuzzy=("x.fuzzy",),
    )
    used = {"x.ok", "x.empty", "x.fuzzy", "x.places", "x.brace", "x.percent", "x.missing"}
    problems = "\n".join(catalogue_problems(catalogues, used, {}))
    assert "zh-CN: missing 'x.missing'" in problems and "en: missing 'x.missing'" in problems
    assert "zh-CN: unused 'x.unused'" in problems and "en: unused 'x.unused'" in problems
    assert "zh-CN: empty translation of 'x.empty'" in problems and "en: empty" not in problems
    assert "zh-CN: fuzzy translation of 'x.fuzzy'" in problems
    assert "placeholders of 'x.places' differ" in problems
    assert "placeholders of 'x.brace' differ" in problems and "'x.brace' has a str.format placeholder" in problems
    assert "zh-CN: 'x.percent' is not a valid %-format" in problems and "en: 'x.percent'" not in problems
    assert "'x.ok'" not in problems


def test_an_english_help_text_that_no_longer_matches_its_definition_is_reported() -> None:
    catalogues = small_catalogues(zh={"cli.help.cmd.demo": "演示"}, en={"cli.help.cmd.demo": "Old words."})
    problems = catalogue_problems(catalogues, {"cli.help.cmd.demo"}, {"cli.help.cmd.demo": "New words."})
    assert problems == ["en: 'cli.help.cmd.demo' differs from the command's own help text; run `make messages`"]


def test_extraction_finds_ids_in_python_calls_templates_and_declarations() -> None:
    found = extracted_ids()
    assert any(w.startswith("review_ui/templates/base.html:") for w in found["web.nav.queue"])  # _() in a template
    assert any(w.startswith("relicflow/cli.py:") for w in found["cli.init.done"])  # the CLI's _t(key, settings)
    assert any(w.startswith("review_ui/routes.py:") for w in found["web.error.csrf"])  # error_page(request, 403, key)
    assert any(w.startswith("review_ui/routes.py:") for w in found["web.flash.bulk_all"])  # N_() where passed on
    assert any(w.startswith("review_ui/deciding.py:") for w in found["web.decision.unknown"])  # Problem(key, ...)
    assert any(w.startswith("review_ui/api.py:") for w in found["web.api.unauthorised"])  # ApiRefused(status, code, key)
    assert "cli.users.active" in found and "cli.users.disabled" in found  # both sides of a conditional
    assert found["web.status.minted"] == [w for w in found["web.status.minted"] if w.startswith("relicflow/message_ids.py:")]
    assert not [msgid for msgid in found if msgid.endswith(".") or not msgid.startswith(("web.", "cli."))]


def test_every_status_role_and_fixity_outcome_has_a_declared_message() -> None:
    expected = ([f"web.status.{s.value}" for s in ItemStatus] + [f"web.role.{r.value}" for r in Role]
                + [f"web.fixity.outcome.{o}" for o in (*OUTCOMES, "unchecked")]
                + [f"web.fixity.explain.{o}" for o in OUTCOMES if o != "ok"] + [f"web.fixity.role.{r}" for r in ROLES])
    assert [msgid for msgid in expected if msgid not in DYNAMIC_MESSAGE_IDS] == []


@pytest.mark.parametrize(("locale", "expected"), [
    ("en", "Item #&lt;b&gt;7|Review queue|not minted yet (waiting for the issuer&#39;s receipt)|Ada (reviewer)"),
    ("zh-CN", "藏品 #&lt;b&gt;7|待审队列|尚未发行（等待发行方回执）|Ada（审核员）"),
])
def test_templates_translate_in_the_page_language_and_escape_values_and_text(locale: str, expected: str) -> None:
    env = make_templates().env
    page = env.from_string('{{ _("web.item.title", id=v) }}|{% trans %}web.nav.queue{% endtrans %}|'
                           '{{ gettext("web.token.not_yet") }}|{{ _("web.nav.signed_in_as", name="Ada", role=_("web.role.reviewer")) }}')
    assert page.render(locale=locale, v="<b>7") == expected


def test_t_fills_placeholders_and_falls_back_to_the_id() -> None:
    assert t("web.item.title", "en", id=7) == "Item #7" and t("web.item.title", "zh-CN", id=7) == "藏品 #7"
    assert t("web.item.title", "fr", id=7) == "藏品 #7"  # an unknown language reads the default
    assert t("web.no.such.message", "en") == "web.no.such.message"
    assert message("web.no.such.message", "en") is None and message("web.nav.queue", "en") == "Review queue"


def test_update_adds_new_ids_empty_drops_unused_ones_and_marks_changed_chinese_help_fuzzy() -> None:
    catalogues = small_catalogues(zh={"x.kept": "留", "x.gone": "去", "cli.help.cmd.demo": "旧的说明"},
                                  en={"x.kept": "kept", "x.gone": "gone", "cli.help.cmd.demo": "Old words."})
    update(catalogues, {"x.kept": ["a.py:1"], "x.new": ["a.py:2"]}, {"cli.help.cmd.demo": "New words."})
    for locale in SUPPORTED_LOCALES:
        assert {m.id for m in catalogues[locale] if m.id} == {"x.kept", "x.new", "cli.help.cmd.demo"}
        assert text_of(catalogues[locale], "x.new") == ""
    assert text_of(catalogues["zh-CN"], "x.kept") == "留"
    assert text_of(catalogues["en"], "cli.help.cmd.demo") == "New words."
    assert catalogues["zh-CN"]["cli.help.cmd.demo"].fuzzy and not catalogues["en"]["cli.help.cmd.demo"].fuzzy


def test_old_style_dict_entries_fill_only_empty_messages_with_percent_placeholders() -> None:
    source = '''
_WEB = {
    "x.new": {"zh-CN": "共 {n} 件（{pct}%）", "en": "{n} items ({pct}%)"},
    "x.kept": {"zh-CN": "别的", "en": "other"},
    "x.not_used": {"zh-CN": "无", "en": "none"},
}
'''
    catalogues = small_catalogues(zh={"x.new": "", "x.kept": "留"}, en={"x.new": "", "x.kept": "kept"})
    import_dicts(catalogues, old_style_dicts(source))
    assert text_of(catalogues["zh-CN"], "x.new") == "共 %(n)s 件（%(pct)s%%）"
    assert text_of(catalogues["en"], "x.new") % {"n": 3, "pct": 50} == "3 items (50%)"
    assert text_of(catalogues["zh-CN"], "x.kept") == "留" and catalogues["en"].get("x.not_used") is None
