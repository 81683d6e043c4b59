"""Message ids the code builds at run time (``t(f"web.status.{status}", locale)``, ``_("web.role." ~ role)``).

Babel's extraction finds only literal ids; each id built from a code or a key is declared here with ``N_``, so
`make messages` keeps it in the catalogues and tests/relicflow/test_messages.py counts it as used. Add the id
here when you add a status, role, outcome or column; `relicflow --help` texts (``cli.help.*``) come from the
command tree itself (relicflow/cli_help.py) and need no declaration.
"""

from __future__ import annotations

from relicflow.i18n import N_

DYNAMIC_MESSAGE_IDS: tuple[str, ...] = (
    # item statuses: f"web.status.{status}" (review_ui, relicflow/cli_items.py, templates)
    N_("web.status.approved"), N_("web.status.awaiting_review"), N_("web.status.batched"), N_("web.status.failed"),
    N_("web.status.minted"), N_("web.status.processed"), N_("web.status.quarantined"), N_("web.status.received"),
    N_("web.status.rejected"), N_("web.status.resubmitted"), N_("web.status.sent_back"),
    N_("web.status.superseded"),
    # account roles: web.role.{role} (base.html, relicflow/cli_users.py)
    N_("web.role.admin"), N_("web.role.auditor"), N_("web.role.digitiser"), N_("web.role.reviewer"),
    N_("web.role.senior_reviewer"),
    # what a role may not do, by action: web.action.{action} (review_ui/access.py; relicflow/roles.py Action)
    N_("web.action.audit.export"), N_("web.action.audit.read"), N_("web.action.fixity.read"),
    N_("web.action.item.decide"), N_("web.action.item.read"), N_("web.action.item.reopen"), N_("web.action.item.retry"),
    N_("web.action.item.second_approval"), N_("web.action.quarantine.read"), N_("web.action.queue.read"),
    # why bulk approval leaves an item out: web.bulk.refused.{code} (relicflow/catalogue/bulk_approval.py)
    N_("web.bulk.refused.duplicate_candidates"), N_("web.bulk.refused.needs_second_approver"),
    N_("web.bulk.refused.not_awaiting_review"), N_("web.bulk.refused.not_found"), N_("web.bulk.refused.not_recorded"),
    N_("web.bulk.refused.object_changed"), N_("web.bulk.refused.own_item"), N_("web.bulk.refused.unresolved_warnings"),
    # the queue's filter chips, sort orders and refused queries: web.queue.chip.{key}, web.queue.sort.{sort},
    # web.queue.invalid.{code} (review_ui/views.py, queue.html, review_ui/routes.py and api.py; QueueQueryInvalid codes)
    N_("web.queue.chip.awaiting_review"), N_("web.queue.chip.duplicates"), N_("web.queue.chip.mine"),
    N_("web.queue.chip.record_incomplete"), N_("web.queue.chip.resubmitted"), N_("web.queue.chip.second"),
    N_("web.queue.chip.two_approvals"), N_("web.queue.chip.undecided"), N_("web.queue.chip.warnings"),
    N_("web.queue.sort.accession"), N_("web.queue.sort.newest"), N_("web.queue.sort.oldest"), N_("web.queue.sort.run"),
    N_("web.queue.invalid.approval"), N_("web.queue.invalid.compliance"), N_("web.queue.invalid.cursor"),
    N_("web.queue.invalid.duplicates"), N_("web.queue.invalid.grade"), N_("web.queue.invalid.limit"),
    N_("web.queue.invalid.search"), N_("web.queue.invalid.sort"), N_("web.queue.invalid.status"),
    N_("web.queue.invalid.warnings"),
    # messages after a decision, chosen by code (review_ui/routes.py)
    N_("web.flash.approval_recorded"), N_("web.flash.approved"), N_("web.flash.rejected"),
    N_("web.flash.reopened"), N_("web.flash.retried"), N_("web.flash.sent_back"),
    # decisions in the history table: web.decision.{decision} (review_ui/views.py)
    N_("web.decision.approve"), N_("web.decision.reject"), N_("web.decision.send_back"),
    # why an administrator may not reopen: web.reopen.refused.{code} (review_ui)
    N_("web.reopen.refused.batched"), N_("web.reopen.refused.minted"), N_("web.reopen.refused.not_admin"),
    N_("web.reopen.refused.not_decided"), N_("web.reopen.refused.reason_required"),
    N_("web.reopen.refused.was_batched"),
    # the confirmation page per action: web.confirm.*.{kind} (confirm.html)
    N_("web.confirm.title.reject"), N_("web.confirm.title.reopen"), N_("web.confirm.title.send_back"),
    N_("web.confirm.question.reject"), N_("web.confirm.question.reopen"), N_("web.confirm.question.send_back"),
    N_("web.confirm.action.reject"), N_("web.confirm.action.reopen"), N_("web.confirm.action.send_back"),
    N_("web.confirm.reason.reject"), N_("web.confirm.reason.reopen"), N_("web.confirm.reason.send_back"),
    N_("web.confirm.button.reject"), N_("web.confirm.button.reopen"), N_("web.confirm.button.send_back"),
    # fixity outcomes, explanations and object kinds (review_ui/views.py, relicflow/cli.py)
    N_("web.fixity.outcome.changed"), N_("web.fixity.outcome.missing"), N_("web.fixity.outcome.ok"),
    N_("web.fixity.outcome.unchecked"), N_("web.fixity.outcome.unreadable"),
    N_("web.fixity.explain.changed"), N_("web.fixity.explain.missing"), N_("web.fixity.explain.unreadable"),
    N_("web.fixity.role.access"), N_("web.fixity.role.metadata"), N_("web.fixity.role.original"),
    N_("web.fixity.role.other"), N_("web.fixity.role.package"), N_("web.fixity.role.thumbnail"),
    # mint batch statuses on the item page: label("web.token.batch_status", ...) (review_ui/views.py)
    N_("web.token.batch_status.failed"), N_("web.token.batch_status.minted"), N_("web.token.batch_status.pending"),
    N_("web.token.batch_status.recovered"), N_("web.token.batch_status.rejected"),
    N_("web.token.batch_status.released"),
    # accession-sheet fields under tasks.enrichment's canonical keys: label("web.field", ...) (review_ui/views.py)
    N_("web.field.accession_number"), N_("web.field.acquisition"), N_("web.field.acquisition_date"),
    N_("web.field.category"), N_("web.field.census_number"), N_("web.field.condition"), N_("web.field.creator"),
    N_("web.field.description"), N_("web.field.dimensions"), N_("web.field.file_name"), N_("web.field.findspot"),
    N_("web.field.grade"), N_("web.field.height_cm"), N_("web.field.length_cm"), N_("web.field.material"),
    N_("web.field.period"), N_("web.field.quantity"), N_("web.field.remarks"), N_("web.field.title"),
    N_("web.field.weight"), N_("web.field.width_cm"),
    # technical metadata of an image: label("web.tech", ...) (review_ui/views.py)
    N_("web.tech.bits_per_sample"), N_("web.tech.camera"), N_("web.tech.captured_at"), N_("web.tech.dpi"),
    N_("web.tech.exif"), N_("web.tech.format"), N_("web.tech.height"), N_("web.tech.icc_profile"),
    N_("web.tech.megapixels"), N_("web.tech.mode"), N_("web.tech.pixels"), N_("web.tech.sha256"),
    N_("web.tech.size_bytes"), N_("web.tech.version"), N_("web.tech.width"),
    # why an inbox entry was skipped: cli.skip.{reason} (relicflow/cli.py, quarantine.html)
    N_("cli.skip.hidden"), N_("cli.skip.not_a_regular_file"), N_("cli.skip.note"), N_("cli.skip.partial_file"),
    N_("cli.skip.sheet_name_unusable"), N_("cli.skip.still_being_copied"), N_("cli.skip.symlink"),
    N_("cli.skip.system_file"), N_("cli.skip.system_folder"), N_("cli.skip.unreadable"),
    N_("cli.skip.unreadable_folder"),
    # column headings and near-duplicate likeness (relicflow/cli_items.py)
    N_("cli.items.col.accession"), N_("cli.items.col.files"), N_("cli.items.col.id"), N_("cli.items.col.notes"),
    N_("cli.items.col.status"), N_("cli.items.col.token"), N_("cli.items.col.updated"),
    N_("cli.items.likeness.resaved"), N_("cli.items.likeness.same"), N_("cli.items.likeness.similar"),
    # column headings (relicflow/cli_users.py)
    N_("cli.users.col.active"), N_("cli.users.col.last_sign_in"), N_("cli.users.col.name"),
    N_("cli.users.col.role"), N_("cli.users.col.sessions"), N_("cli.users.col.user"),
    # column headings and batch statuses (relicflow/cli_issuer.py)
    N_("cli.batches.col.attempts"), N_("cli.batches.col.batch"), N_("cli.batches.col.batched"),
    N_("cli.batches.col.created"), N_("cli.batches.col.error"), N_("cli.batches.col.items"),
    N_("cli.batches.col.status"), N_("cli.batches.col.tokens"),
    N_("cli.batches.status.failed"), N_("cli.batches.status.minted"), N_("cli.batches.status.pending"),
    N_("cli.batches.status.recovered"), N_("cli.batches.status.rejected"), N_("cli.batches.status.released"),
    # audit disagreements and chain breaks by code (relicflow/cli_audit.py)
    N_("cli.audit.code.decision_not_recorded"), N_("cli.audit.code.decision_row_missing"),
    N_("cli.audit.code.record_changed"), N_("cli.audit.code.status_not_recorded"),
    N_("cli.audit.code.transition_not_recorded"),
    N_("cli.audit.why.changed"), N_("cli.audit.why.other_key"), N_("cli.audit.why.unlinked"),
    N_("cli.audit.why.unsealed"),
    # ingest summary lines: cli.ingest.{key} (relicflow/cli.py)
    N_("cli.ingest.resubmitted"), N_("cli.ingest.records_updated"), N_("cli.ingest.additions"),
)
