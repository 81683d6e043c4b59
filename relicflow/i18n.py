"""User-facing text in Simplified Chinese (the default) and English.

One flat dict keyed by message id; ids are grouped by prefix (``web.`` for the review app, ``cli.`` for
the command line) so each part can add its own keys without touching the others. Placeholders use
``str.format`` names: ``t("web.item.title", "en", id=7)``.
"""

from __future__ import annotations

from relicflow.cli_text import CLI_MESSAGES
from relicflow.cli_users_text import USERS_CLI_MESSAGES

DEFAULT_LOCALE = "zh-CN"
SUPPORTED_LOCALES = ("zh-CN", "en")

# Names of the languages in themselves, for the language switch.
LOCALE_NAMES = {"zh-CN": "中文", "en": "English"}

_WEB: dict[str, dict[str, str]] = {
    # layout
    "web.app.name": {"zh-CN": "文物数字藏品审核", "en": "Relic review"},
    "web.nav.queue": {"zh-CN": "待审队列", "en": "Review queue"},
    "web.nav.quarantine": {"zh-CN": "隔离文件", "en": "Quarantine"},
    "web.nav.fixity": {"zh-CN": "存储完整性", "en": "Storage fixity"},
    "web.nav.logout": {"zh-CN": "退出登录", "en": "Sign out"},
    "web.nav.signed_in_as": {"zh-CN": "{name}（{role}）", "en": "{name} ({role})"},
    "web.nav.language": {"zh-CN": "语言", "en": "Language"},
    "web.record.broken": {"zh-CN": "审核记录未通过校验：记录已被改动或删减，铸造已停止。请运行 relicflow audit verify 查看完整报告。",
                          "en": "The review record failed verification: it was altered or cut back, and minting has stopped. Run relicflow audit verify for the whole report."},
    "web.footer.audit": {"zh-CN": "所有审核操作均记入审计日志。", "en": "Every review action is recorded in the audit log."},
    "web.role.admin": {"zh-CN": "管理员", "en": "administrator"},
    "web.role.reviewer": {"zh-CN": "审核员", "en": "reviewer"},
    "web.role.digitiser": {"zh-CN": "数字化人员", "en": "digitisation staff"},
    # login
    "web.login.title": {"zh-CN": "登录", "en": "Sign in"},
    "web.login.intro": {"zh-CN": "仅限授权人员使用。", "en": "For authorised staff only."},
    "web.login.username": {"zh-CN": "用户名", "en": "User name"},
    "web.login.password": {"zh-CN": "密码", "en": "Password"},
    "web.login.submit": {"zh-CN": "登录", "en": "Sign in"},
    "web.login.failed": {"zh-CN": "用户名或密码不正确。", "en": "The user name or password is not correct."},
    "web.login.form_expired": {
        "zh-CN": "登录表单已过期或并非来自本站，请重新输入后登录。",
        "en": "The sign-in form has expired or did not come from this site. Please enter your details again.",
    },
    "web.login.throttled": {
        "zh-CN": "登录失败次数过多，已暂停登录。请 {minutes} 分钟后再试，或联系管理员。",
        "en": "Too many failed sign-ins: signing in is paused. Try again in {minutes} minutes, or ask an administrator.",
    },
    "web.login.logged_out": {"zh-CN": "您已退出登录。", "en": "You have signed out."},
    "web.login.session_expired": {"zh-CN": "请先登录。", "en": "Please sign in first."},
    # statuses
    "web.status.received": {"zh-CN": "已接收", "en": "received"},
    "web.status.quarantined": {"zh-CN": "已隔离", "en": "quarantined"},
    "web.status.processed": {"zh-CN": "已处理", "en": "processed"},
    "web.status.awaiting_review": {"zh-CN": "待审核", "en": "awaiting review"},
    "web.status.approved": {"zh-CN": "已通过", "en": "approved"},
    "web.status.rejected": {"zh-CN": "已驳回", "en": "rejected"},
    "web.status.sent_back": {"zh-CN": "已退回", "en": "sent back"},
    "web.status.resubmitted": {"zh-CN": "已重新提交", "en": "resubmitted"},
    "web.status.batched": {"zh-CN": "已打包", "en": "batched"},
    "web.status.minted": {"zh-CN": "已发行", "en": "minted"},
    "web.status.failed": {"zh-CN": "处理失败", "en": "failed"},
    "web.status.superseded": {"zh-CN": "已被取代", "en": "superseded"},
    # queue
    "web.queue.title": {"zh-CN": "待审藏品", "en": "Items awaiting review"},
    "web.queue.empty": {"zh-CN": "目前没有待审藏品。", "en": "Nothing is awaiting review."},
    "web.queue.counts": {"zh-CN": "各状态藏品数", "en": "Items by status"},
    "web.queue.total": {"zh-CN": "合计", "en": "total"},
    "web.queue.col.image": {"zh-CN": "图像", "en": "Image"},
    "web.queue.col.accession": {"zh-CN": "总登记号", "en": "Accession no."},
    "web.queue.col.title": {"zh-CN": "藏品名称", "en": "Title"},
    "web.queue.col.files": {"zh-CN": "文件名", "en": "Files"},
    "web.queue.col.checks": {"zh-CN": "提示", "en": "Checks"},
    "web.queue.col.approvals": {"zh-CN": "通过数", "en": "Approvals"},
    "web.queue.review": {"zh-CN": "审核", "en": "Review"},
    "web.queue.quarantine_link": {
        "zh-CN": "另有 {n} 个文件被隔离，未进入审核",
        "en": "{n} files were quarantined and did not reach review",
    },
    "web.badge.warnings": {"zh-CN": "{n} 条质量提示", "en": "{n} quality warning(s)"},
    "web.badge.duplicates": {"zh-CN": "{n} 件疑似重复", "en": "{n} possible duplicate(s)"},
    "web.badge.four_eyes": {"zh-CN": "需 {n} 人通过", "en": "needs {n} approvals"},
    "web.badge.approved_by_you": {"zh-CN": "您已通过", "en": "you approved"},
    "web.approvals.count": {"zh-CN": "{have} / {need}", "en": "{have} of {need}"},
    "web.untitled": {"zh-CN": "（无名称）", "en": "(untitled)"},
    "web.none": {"zh-CN": "—", "en": "—"},
    # quarantine
    "web.quarantine.title": {"zh-CN": "隔离文件", "en": "Quarantined files"},
    "web.quarantine.intro": {
        "zh-CN": "以下文件未能入库，原件已保留。请按原因修正后重新放入收件箱。",
        "en": "These files could not be ingested; the originals are kept. Fix what each reason says and drop the file into the inbox again.",
    },
    "web.quarantine.empty": {"zh-CN": "没有被隔离的文件。", "en": "No files are quarantined."},
    "web.sent_back.title": {"zh-CN": "退回重拍", "en": "Sent back for rescan"},
    "web.sent_back.intro": {
        "zh-CN": "审核员退回的藏品及其说明。请按说明重新拍摄或修正后，再放入收件箱。",
        "en": "Items reviewers sent back, with their notes. Rescan or correct them as the note says, then drop them into the inbox again.",
    },
    "web.sent_back.empty": {"zh-CN": "没有被退回的藏品。", "en": "No items have been sent back."},
    "web.sent_back.col.note": {"zh-CN": "审核说明", "en": "Reviewer's note"},
    "web.sent_back.col.reviewer": {"zh-CN": "审核员", "en": "Reviewer"},
    "web.quarantine.col.item": {"zh-CN": "编号", "en": "Item"},
    "web.quarantine.col.files": {"zh-CN": "文件名", "en": "File"},
    "web.quarantine.col.code": {"zh-CN": "原因代码", "en": "Code"},
    "web.quarantine.col.reason": {"zh-CN": "原因", "en": "Reason"},
    "web.quarantine.col.when": {"zh-CN": "时间", "en": "When"},
    # item page
    "web.item.title": {"zh-CN": "藏品 #{id}", "en": "Item #{id}"},
    "web.item.back": {"zh-CN": "← 返回待审队列", "en": "← Back to the queue"},
    # keyboard shortcuts (review_ui/static/review-keys.js; listed by _shortcuts.html)
    "web.keys.title": {"zh-CN": "键盘快捷键（按 ? 显示或隐藏）", "en": "Keyboard shortcuts (press ? to show or hide)"},
    "web.keys.note": {"zh-CN": "快捷键只移动、选中或打开；每项决定仍需按 Enter 提交，驳回和退回仍需在确认页确认。",
                      "en": "Keys only move, select or open; every decision still needs Enter to submit, and reject and send back still need their confirmation page."},
    "web.keys.row_down": {"zh-CN": "下一行", "en": "next row"},
    "web.keys.row_up": {"zh-CN": "上一行", "en": "previous row"},
    "web.keys.open": {"zh-CN": "打开选中的藏品", "en": "open the selected item"},
    "web.keys.next_page": {"zh-CN": "下一页", "en": "next page"},
    "web.keys.prev_page": {"zh-CN": "上一页", "en": "previous page"},
    "web.keys.search": {"zh-CN": "搜索", "en": "search"},
    "web.keys.next_item": {"zh-CN": "下一件待审藏品", "en": "next item in the queue"},
    "web.keys.prev_item": {"zh-CN": "上一件待审藏品", "en": "previous item in the queue"},
    "web.keys.queue": {"zh-CN": "返回待审队列", "en": "back to the queue"},
    "web.keys.approve": {"zh-CN": "选中“通过”按钮，再按 Enter 通过", "en": "select Approve; Enter then approves"},
    "web.keys.reject": {"zh-CN": "填写驳回理由", "en": "write a reason to reject"},
    "web.keys.send_back": {"zh-CN": "填写退回说明", "en": "write a note to send back"},
    "web.keys.submit": {"zh-CN": "在理由框中：提交（进入确认页）", "en": "in a reason box: submit (to the confirmation page)"},
    "web.keys.leave_box": {"zh-CN": "离开输入框", "en": "leave the text box"},
    "web.keys.zoom": {"zh-CN": "放大或还原照片", "en": "zoom the photographs in or out"},
    "web.keys.confirm": {"zh-CN": "选中“确认”按钮，再按 Enter 确认", "en": "select Confirm; Enter then confirms"},
    "web.keys.edit": {"zh-CN": "选中“返回修改”", "en": "select Edit"},
    "web.item.status": {"zh-CN": "状态", "en": "Status"},
    "web.item.approvals": {"zh-CN": "审核通过", "en": "Approvals"},
    "web.item.section.image": {"zh-CN": "图像", "en": "Image"},
    "web.item.section.record": {"zh-CN": "藏品著录", "en": "Catalogue record"},
    "web.item.section.technical": {"zh-CN": "技术元数据", "en": "Technical metadata"},
    "web.item.section.warnings": {"zh-CN": "质量提示", "en": "Quality warnings"},
    "web.item.section.duplicates": {"zh-CN": "疑似重复", "en": "Possible duplicates"},
    "web.item.section.history": {"zh-CN": "审核记录", "en": "Decision history"},
    "web.item.section.decision": {"zh-CN": "审核决定", "en": "Decision"},
    "web.item.no_image": {"zh-CN": "没有可显示的图像。", "en": "No image to show."},
    "web.item.open_full": {"zh-CN": "在新窗口查看大图", "en": "Open the access image"},
    "web.item.no_record": {"zh-CN": "登记表中没有此藏品的著录信息。", "en": "The accession sheet has no data for this item."},
    "web.item.no_warnings": {"zh-CN": "没有质量提示。", "en": "No quality warnings."},
    "web.item.no_duplicates": {"zh-CN": "没有发现疑似重复的图像。", "en": "No near-duplicate images were found."},
    "web.item.no_decisions": {"zh-CN": "尚无审核记录。", "en": "No decisions yet."},
    "web.item.files": {"zh-CN": "原始文件名", "en": "Original file names"},
    "web.item.derivation": {"zh-CN": "处理步骤", "en": "Processing steps"},
    "web.item.hashes": {"zh-CN": "感知哈希", "en": "Perceptual hashes"},
    "web.item.quarantine": {"zh-CN": "隔离原因", "en": "Quarantine reason"},
    "web.item.mint_hold": {"zh-CN": "暂缓发行原因", "en": "Held back from minting"},
    "web.item.no_catalogue_record": {
        "zh-CN": "登记表中没有此藏品的记录：在其著录信息（总登记号和藏品名称）到达之前，此藏品不能发行。",
        "en": "No accession-sheet row: this item cannot be minted until its record (accession number and name) arrives.",
    },
    "web.dup.distance": {"zh-CN": "差异 {distance}（{algorithm}）", "en": "distance {distance} ({algorithm})"},
    "web.dup.gone": {"zh-CN": "藏品 #{id} 已不存在", "en": "Item #{id} no longer exists"},
    "web.history.col.when": {"zh-CN": "时间", "en": "When"},
    "web.history.col.reviewer": {"zh-CN": "审核员", "en": "Reviewer"},
    "web.history.col.decision": {"zh-CN": "决定", "en": "Decision"},
    "web.history.col.reason": {"zh-CN": "原因 / 说明", "en": "Reason / note"},
    "web.history.col.version": {"zh-CN": "图像版本", "en": "Image version"},
    # decisions
    "web.decision.approve": {"zh-CN": "通过", "en": "Approve"},
    "web.decision.reject": {"zh-CN": "驳回", "en": "Reject"},
    "web.decision.send_back": {"zh-CN": "退回", "en": "Send back"},
    "web.decision.approve_help": {
        "zh-CN": "图像与著录信息无误，可以发行为数字藏品。",
        "en": "The image and the record are correct; the item may be issued as a digital collection.",
    },
    "web.decision.reject_help": {"zh-CN": "不得发行。请写明原因（必填）。", "en": "Must not be issued. Say why (required)."},
    "web.decision.send_back_help": {
        "zh-CN": "交回数字化人员修正或重新拍摄。请写明需要修正的内容（必填）。",
        "en": "Return to digitisation staff to fix or rescan. Say what needs fixing (required).",
    },
    "web.decision.comment_label": {"zh-CN": "备注（可选）", "en": "Comment (optional)"},
    "web.decision.reason_label": {"zh-CN": "驳回原因", "en": "Reason for rejection"},
    "web.decision.note_label": {"zh-CN": "给数字化人员的说明", "en": "Note for digitisation staff"},
    "web.decision.reason_required": {"zh-CN": "驳回时必须填写原因。", "en": "A reason is required to reject an item."},
    "web.decision.note_required": {"zh-CN": "退回时必须填写说明。", "en": "A note is required to send an item back."},
    "web.decision.too_long": {"zh-CN": "内容过长（最多 {max} 字）。", "en": "The text is too long (at most {max} characters)."},
    "web.decision.unknown": {"zh-CN": "无法识别的审核决定。", "en": "Unknown decision."},
    "web.decision.not_awaiting": {
        "zh-CN": "此藏品当前状态为「{status}」，不在待审状态，无法审核。",
        "en": "This item is {status}, not awaiting review; no decision can be recorded.",
    },
    "web.decision.already_approved": {
        "zh-CN": "您已通过此藏品，还需另一位审核员通过。",
        "en": "You have already approved this item; another reviewer must approve it too.",
    },
    "web.decision.role_cannot_decide": {
        "zh-CN": "只有审核员和管理员可以做出审核决定。",
        "en": "Only reviewers and administrators can decide on items.",
    },
    "web.decision.not_recorded": {"zh-CN": "决定未记录：{message}", "en": "The decision was not recorded: {message}"},
    "web.decision.object_changed": {"zh-CN": "在您查看期间，此藏品有了新的图像版本或著录版本。请先查看更新后的内容再作决定。",
                                    "en": "A new photograph or record version of this object arrived while you were looking at it. "
                                          "Look at what changed before deciding."},
    # the object's photographs (review_ui/templates/_photographs.html)
    "web.views.title": {"zh-CN": "藏品图像（{count} 个视图）", "en": "Photographs ({count} views)"},
    "web.views.version": {"zh-CN": "第 {version} 版", "en": "version {version}"},
    "web.views.what_changed": {"zh-CN": "第 {old} 版 → 第 {new} 版的变化", "en": "What changed from version {old} to {new}"},
    "web.views.change.sha256": {"zh-CN": "内容哈希 (SHA-256)", "en": "content hash (SHA-256)"},
    "web.views.change.pixels": {"zh-CN": "像素尺寸", "en": "pixels"},
    "web.views.change.size": {"zh-CN": "文件大小（字节）", "en": "file size (bytes)"},
    "web.views.change.phash": {"zh-CN": "感知哈希", "en": "perceptual hash"},
    "web.views.change.warnings": {"zh-CN": "质量提示", "en": "quality warnings"},
    "web.views.send_back_note": {"zh-CN": "此藏品曾被退回，退回说明：", "en": "This object was sent back with this note:"},
    "web.views.record_changed": {"zh-CN": "著录信息已更新为第 {version} 版：", "en": "The catalogue record was corrected (version {version}):"},
    "web.views.col.field": {"zh-CN": "字段", "en": "field"},
    "web.views.col.before": {"zh-CN": "之前", "en": "before"},
    "web.views.col.after": {"zh-CN": "现在", "en": "now"},
    "web.views.addition_to": {"zh-CN": "此为已通过或已发行藏品的补充图像，单独审核；已发行的内容不会改变。藏品：",
                              "en": "Added photographs of an object already approved or minted, decided on their own; what was minted does not change. Object:"},
    "web.queue.views": {"zh-CN": "{count} 个视图", "en": "{count} views"},
    # review queue at scale: filters, search, sort, pages (relicflow/catalogue/review_queue.py)
    "web.queue.filters": {"zh-CN": "筛选", "en": "Filters"},
    "web.queue.chip.awaiting_review": {"zh-CN": "待审核", "en": "Awaiting review"},
    "web.queue.chip.resubmitted": {"zh-CN": "重新提交", "en": "Resubmitted"},
    "web.queue.chip.undecided": {"zh-CN": "全部未决", "en": "All undecided"},
    "web.queue.chip.warnings": {"zh-CN": "有提示", "en": "With warnings"},
    "web.queue.chip.duplicates": {"zh-CN": "疑似重复", "en": "Possible duplicates"},
    "web.queue.chip.two_approvals": {"zh-CN": "需两人审核", "en": "Needs two approvals"},
    "web.queue.chip.record_incomplete": {"zh-CN": "登记信息不全", "en": "Catalogue record incomplete"},
    "web.queue.chip.mine": {"zh-CN": "我已通过", "en": "Approved by me"},
    "web.queue.chip.second": {"zh-CN": "待第二人审核", "en": "Waiting for a second approver"},
    "web.queue.search": {"zh-CN": "搜索", "en": "Search"},
    "web.queue.search_hint": {"zh-CN": "总登记号、名称或文件名", "en": "Accession no., title or file name"},
    "web.queue.run": {"zh-CN": "入库批次", "en": "Ingest run"},
    "web.queue.run_any": {"zh-CN": "全部批次", "en": "All runs"},
    "web.queue.run_n": {"zh-CN": "批次 #{id}", "en": "Run #{id}"},
    "web.queue.grade": {"zh-CN": "级别", "en": "Grade"},
    "web.queue.grade_any": {"zh-CN": "全部级别", "en": "All grades"},
    "web.queue.sort": {"zh-CN": "排序", "en": "Sort"},
    "web.queue.sort.oldest": {"zh-CN": "最早的在前", "en": "Oldest first"},
    "web.queue.sort.newest": {"zh-CN": "最新的在前", "en": "Newest first"},
    "web.queue.sort.accession": {"zh-CN": "按总登记号", "en": "By accession no."},
    "web.queue.sort.run": {"zh-CN": "按入库批次", "en": "By ingest run"},
    "web.queue.apply": {"zh-CN": "应用", "en": "Apply"},
    "web.queue.clear": {"zh-CN": "清除筛选", "en": "Clear filters"},
    "web.queue.pages": {"zh-CN": "分页", "en": "Pages"},
    "web.queue.showing": {"zh-CN": "符合条件 {total} 件，本页 {n} 件", "en": "{total} items match, {n} on this page"},
    "web.queue.prev_page": {"zh-CN": "← 上一页", "en": "← Previous page"},
    "web.queue.next_page": {"zh-CN": "下一页 →", "en": "Next page →"},
    "web.queue.no_match": {"zh-CN": "没有符合这些条件的藏品。", "en": "No items match these filters."},
    "web.item.queue_nav": {"zh-CN": "在待审队列中", "en": "In the review queue"},
    "web.item.prev": {"zh-CN": "← 上一件", "en": "← Previous item"},
    "web.item.next": {"zh-CN": "下一件 →", "en": "Next item →"},
    "web.queue.invalid.status": {"zh-CN": "队列状态无效：请使用待审队列页面上的筛选按钮（待审、重新提交、全部未决）。",
                                 "en": "Unknown queue status: use the filter buttons on the review queue page (awaiting review, resubmitted, all undecided)."},
    "web.queue.invalid.run": {"zh-CN": "入库批次无效：没有这个编号的入库批次。请从待审队列页面的批次列表中选择。",
                              "en": "Unknown ingest run: no ingest run has this number. Choose one from the list on the review queue page."},
    "web.queue.invalid.grade": {"zh-CN": "级别无效：请选择一级、二级、三级、一般或未定级。",
                                "en": "Unknown grade: choose 一级, 二级, 三级, 一般 or 未定级."},
    "web.queue.invalid.warnings": {"zh-CN": "“有提示”筛选的值无效：只能是 1 或不填。请从待审队列页面重新筛选。",
                                   "en": "The warnings filter takes only 1 or nothing. Filter again from the review queue page."},
    "web.queue.invalid.duplicates": {"zh-CN": "“疑似重复”筛选的值无效：只能是 1 或不填。请从待审队列页面重新筛选。",
                                     "en": "The duplicates filter takes only 1 or nothing. Filter again from the review queue page."},
    "web.queue.invalid.compliance": {"zh-CN": "合规筛选无效：请使用待审队列页面上的“需两人审核”或“登记信息不全”按钮。",
                                     "en": "Unknown compliance filter: use the “needs two approvals” or “catalogue record incomplete” buttons on the review queue page."},
    "web.queue.invalid.approval": {"zh-CN": "审核筛选无效：请使用待审队列页面上的“我已通过”或“待第二人审核”按钮。",
                                   "en": "Unknown approval filter: use the “approved by me” or “waiting for a second approver” buttons on the review queue page."},
    "web.queue.invalid.search": {"zh-CN": "搜索内容过长（最多 200 个字符）或含有控制字符，请缩短后重试。",
                                 "en": "The search text is too long (200 characters at most) or holds control characters; shorten it and try again."},
    "web.queue.invalid.sort": {"zh-CN": "排序方式无效：请从待审队列页面的排序列表中选择。",
                               "en": "Unknown sort order: choose one from the sort list on the review queue page."},
    "web.queue.invalid.cursor": {"zh-CN": "翻页链接已损坏或属于另一种排序。请返回待审队列第一页。",
                                 "en": "The page link is damaged or belongs to another sort order. Go back to the first page of the review queue."},
    "web.queue.invalid.limit": {"zh-CN": "每页件数无效。", "en": "The page size is not valid."},

    "web.queue.resubmitted": {"zh-CN": "重新提交", "en": "resubmitted"},
    "web.decision.needs_n": {
        "zh-CN": "本藏品需 {need} 位审核员分别通过（已有 {have} 位）。",
        "en": "This item needs approval from {need} different reviewers ({have} so far).",
    },
    # flash messages after a decision (chosen by code, never taken from the query string)
    "web.flash.approved": {"zh-CN": "藏品 #{id} 已通过。", "en": "Item #{id} approved."},
    "web.flash.approval_recorded": {
        "zh-CN": "已记录您对藏品 #{id} 的通过意见，还需其他审核员通过。",
        "en": "Your approval of item #{id} is recorded; another reviewer must approve it too.",
    },
    "web.item.accession_guessed": {"zh-CN": "登记表中没有此文件；总登记号是从文件名推断的，请核对。", "en": "No sheet row names this file; the accession number was guessed from the file name. Check it."},
    "web.item.failure": {"zh-CN": "处理失败", "en": "Processing failed"},
    "web.item.failure_text": {"zh-CN": "系统内部错误，已尝试 {attempts} 次：", "en": "An internal error, after {attempts} attempt(s):"},
    "web.item.superseded": {"zh-CN": "已由新文件取代", "en": "Replaced by the new file"},
    "web.flash.retried": {"zh-CN": "#{id} 已重新排队，下一次入库运行会再处理它。", "en": "#{id} is queued again; the next ingest run processes it."},
    "web.retry.button": {"zh-CN": "重新处理", "en": "Retry"},
    "web.retry.role_cannot_retry": {"zh-CN": "只有管理员和数字化人员可以重新处理文件。", "en": "Only administrators and digitisation staff may retry files."},
    "web.retry.not_possible": {"zh-CN": "#{id} 现在不处于“失败”或“已隔离”状态，无法重新处理。", "en": "#{id} is no longer failed or quarantined, so it cannot be retried."},
    "web.failed.title": {"zh-CN": "处理失败（系统内部错误）", "en": "Failed (an internal error)"},
    "web.failed.intro": {
        "zh-CN": "这些文件本身可能没有问题，是系统在处理时出错。之后的入库运行会自动重试，最多 {max} 次；仍失败的请联系管理员，修复后可点“重新处理”。",
        "en": "These files may well be fine: relicflow itself failed while processing them. Later ingest runs retry each up to {max} times; if it still fails, tell the administrator, and retry it once fixed.",
    },
    "web.failed.empty": {"zh-CN": "没有处理失败的文件。", "en": "No files failed."},
    "web.failed.col.attempts": {"zh-CN": "尝试次数", "en": "Attempts"},
    "web.failed.col.error": {"zh-CN": "错误", "en": "Error"},
    "web.failed.auto": {"zh-CN": "下次运行自动重试", "en": "retried by the next run"},
    "web.failed.manual": {"zh-CN": "需管理员处理", "en": "needs an administrator"},
    "web.last_run.title": {"zh-CN": "最近一次入库运行（#{id}，{when}）未处理的条目", "en": "Not taken in by the last ingest run (#{id}, {when})"},
    "web.last_run.stopped": {"zh-CN": "该次运行未能完成：{reason}", "en": "That run could not finish: {reason}"},
    "web.last_run.none": {"zh-CN": "最近一次运行处理了收件箱中的全部条目。", "en": "The last run took in everything in the inbox."},
    "web.last_run.col.reason": {"zh-CN": "原因", "en": "Reason"},
    "web.last_run.sheet_problems": {"zh-CN": "登记表问题", "en": "Accession-sheet problems"},
    "web.flash.rejected": {"zh-CN": "藏品 #{id} 已驳回。", "en": "Item #{id} rejected."},
    "web.flash.sent_back": {"zh-CN": "藏品 #{id} 已退回数字化人员。", "en": "Item #{id} sent back to digitisation staff."},
    # errors
    "web.error.title": {"zh-CN": "无法完成请求", "en": "The request could not be completed"},
    "web.error.csrf": {
        "zh-CN": "请求未通过安全校验（页面可能已过期，或请求并非来自本站）。请返回并刷新页面后重试；决定未记录。",
        "en": "The request failed a security check (the page may have expired, or the request did not come from this site). Go back, reload the page and try again; nothing was recorded.",
    },
    "web.error.forbidden": {"zh-CN": "您没有权限执行此操作。", "en": "You are not allowed to do this."},
    "web.error.not_found": {"zh-CN": "找不到此页面或藏品。", "en": "This page or item does not exist."},
    "web.error.bad_request": {"zh-CN": "请求无效。", "en": "The request is not valid."},
    "web.error.method": {"zh-CN": "不支持此请求方式。", "en": "This request method is not supported here."},
    "web.error.server": {
        "zh-CN": "服务器内部错误，已记录在日志中。请稍后重试。",
        "en": "Something went wrong on the server; it has been logged. Please try again later.",
    },
    "web.error.back": {"zh-CN": "返回待审队列", "en": "Back to the review queue"},
}

# The administrators' storage fixity page (/admin/fixity); outcomes and roles are shared with the CLI.
_FIXITY: dict[str, dict[str, str]] = {
    "web.fixity.title": {"zh-CN": "存储完整性检查", "en": "Storage fixity"},
    "web.fixity.intro": {
        "zh-CN": "定时的完整性检查会重新读取存储中的原件、衍生图像和元数据文件，计算 SHA-256 并与入库时登记的值比对。"
                 "每次检查一部分，最久未检查的优先。",
        "en": "The scheduled fixity check reads stored originals, derivatives and metadata documents again, hashes them and "
              "compares the SHA-256 with the one registered when they were stored; each run takes the least recently checked first.",
    },
    "web.fixity.last_run": {"zh-CN": "最近一次检查：{when}，检查 {checked} 个对象，清除过期临时文件 {removed} 个。",
                            "en": "Last run: {when}, {checked} objects checked, {removed} stale temporary files removed."},
    "web.fixity.last_run_failed": {"zh-CN": "最近一次检查（{when}）未能完成：{error}",
                                   "en": "The last run ({when}) did not finish: {error}"},
    "web.fixity.never_run": {"zh-CN": "尚未运行过完整性检查。", "en": "No fixity check has run yet."},
    "web.fixity.oldest": {"zh-CN": "所有已检查对象的最近检查时间均不早于 {when}。",
                          "en": "Every checked object was last checked at or after {when}."},
    "web.fixity.adopted": {
        "zh-CN": "{n} 个对象入库时未登记哈希值（旧版本生成的衍生图像），其比对依据取自存储系统自身的记录。",
        "en": "{n} objects had no registered hash (derivatives made before the inventory existed); their expected hash was "
              "taken from the store's own record.",
    },
    "web.fixity.counts": {"zh-CN": "检查结果统计", "en": "Objects by last check"},
    "web.fixity.total": {"zh-CN": "清单合计", "en": "in the inventory"},
    "web.fixity.problems": {"zh-CN": "有问题的对象", "en": "Objects with a problem"},
    "web.fixity.what_to_do": {
        "zh-CN": "缺失或内容已改变的对象须从备份恢复（原件不可用其他文件替代）；无法读取的请检查存储权限与连接。"
                 "恢复后，下一次检查会将其标记为完好。",
        "en": "Restore missing or changed objects from a backup (an original must never be replaced with another file); for "
              "unreadable ones check the store's permissions and connection. The next check marks a restored object intact.",
    },
    "web.fixity.empty": {"zh-CN": "没有对象在最近一次检查中出现问题。", "en": "No object had a problem at its last check."},
    "web.fixity.col.outcome": {"zh-CN": "结果", "en": "Outcome"},
    "web.fixity.col.key": {"zh-CN": "对象键", "en": "Key"},
    "web.fixity.col.role": {"zh-CN": "类型", "en": "Kind"},
    "web.fixity.col.item": {"zh-CN": "藏品", "en": "Item"},
    "web.fixity.col.detail": {"zh-CN": "详情", "en": "Detail"},
    "web.fixity.col.checked": {"zh-CN": "检查时间", "en": "Checked"},
    "web.fixity.explain.missing": {"zh-CN": "存储中已没有此对象。", "en": "The store no longer holds this object."},
    "web.fixity.explain.changed": {
        "zh-CN": "存储的内容与入库时登记的 SHA-256 不符：文件已损坏或被改动。",
        "en": "The stored bytes no longer match the SHA-256 registered when they were stored: the file is damaged or was altered.",
    },
    "web.fixity.explain.unreadable": {
        "zh-CN": "无法读取此对象（权限或存储故障），因此未能核验。",
        "en": "The object could not be read (permissions or a storage fault), so it could not be verified.",
    },
    "web.fixity.outcome.ok": {"zh-CN": "完好", "en": "intact"},
    "web.fixity.outcome.missing": {"zh-CN": "缺失", "en": "missing"},
    "web.fixity.outcome.changed": {"zh-CN": "内容已改变", "en": "changed"},
    "web.fixity.outcome.unreadable": {"zh-CN": "无法读取", "en": "unreadable"},
    "web.fixity.outcome.unchecked": {"zh-CN": "尚未检查", "en": "not yet checked"},
    "web.fixity.role.original": {"zh-CN": "原件", "en": "original"},
    "web.fixity.role.access": {"zh-CN": "浏览图", "en": "access copy"},
    "web.fixity.role.thumbnail": {"zh-CN": "缩略图", "en": "thumbnail"},
    "web.fixity.role.metadata": {"zh-CN": "元数据文件", "en": "metadata document"},
    "web.fixity.role.package": {"zh-CN": "数据包", "en": "package"},
    "web.fixity.role.other": {"zh-CN": "其他", "en": "other"},
}

# Accession-sheet fields under the canonical keys of tasks.enrichment (its header aliases), with the
# column names museum systems use; columns without a canonical key keep their own header as the key.
_FIELDS: dict[str, tuple[str, str]] = {
    "accession_number": ("总登记号", "Accession number"),
    "census_number": ("普查登记号", "Census registration number"),
    "title": ("藏品名称", "Title"),
    "category": ("类别", "Category"),
    "period": ("年代", "Period"),
    "material": ("材质", "Material"),
    "grade": ("级别", "Grade"),
    "condition": ("完残程度", "Condition"),
    "quantity": ("实际数量", "Quantity"),
    "dimensions": ("尺寸", "Dimensions"),
    "length_cm": ("通长（厘米）", "Overall length (cm)"),
    "width_cm": ("通宽（厘米）", "Overall width (cm)"),
    "height_cm": ("通高（厘米）", "Overall height (cm)"),
    "weight": ("质量", "Weight"),
    "acquisition": ("来源方式", "Acquisition method"),
    "acquisition_date": ("入藏时间", "Acquisition date"),
    "findspot": ("出土地", "Findspot"),
    "creator": ("著者", "Creator"),
    "description": ("描述", "Description"),
    "remarks": ("备注", "Remarks"),
    "file_name": ("图片文件名", "Image file name"),
}

# Technical metadata of the image.
_TECHNICAL: dict[str, tuple[str, str]] = {
    "format": ("格式", "Format"),
    "width": ("宽度（像素）", "Width (px)"),
    "height": ("高度（像素）", "Height (px)"),
    "pixels": ("尺寸（像素）", "Size (px)"),
    "megapixels": ("像素数（百万）", "Megapixels"),
    "mode": ("色彩模式", "Colour mode"),
    "bits_per_sample": ("位深", "Bits per sample"),
    "size_bytes": ("文件大小（字节）", "File size (bytes)"),
    "sha256": ("SHA-256", "SHA-256"),
    "version": ("图像版本", "Image version"),
    "icc_profile": ("ICC 色彩配置", "ICC profile"),
    "dpi": ("分辨率（dpi）", "Resolution (dpi)"),
    "exif": ("EXIF", "EXIF"),
    "camera": ("相机", "Camera"),
    "captured_at": ("拍摄时间", "Captured at"),
}

# The item page's token panel and reopen form, the confirmation page, the quarantine page's unmatched rows.
_REVIEW_STEPS: dict[str, dict[str, str]] = {
    # bulk approval (review_ui/bulk_routes.py, relicflow/catalogue/bulk_approval.py)
    "web.bulk.select": {"zh-CN": "选择", "en": "Select"},
    "web.bulk.select_item": {"zh-CN": "选择藏品 #{id}", "en": "Select item #{id}"},
    "web.bulk.approve_selected": {"zh-CN": "批量通过所选藏品……", "en": "Approve the selected items…"},
    "web.bulk.approve_run": {"zh-CN": "批量通过入库批次……", "en": "Approve an ingest run…"},
    "web.bulk.run_label": {"zh-CN": "入库批次", "en": "Ingest run"},
    "web.bulk.run_option": {"zh-CN": "第 {run} 批", "en": "run {run}"},
    "web.bulk.help": {"zh-CN": "批量通过只适用于无警告、无近似重复、无需第二位审核员的普通藏品；确认页会列出将通过和不能批量通过的藏品。",
                      "en": "Bulk approval is for plain items only: no warnings, no near-duplicate candidates, no second approver needed. "
                            "The confirmation page lists what will be approved and what cannot be."},
    "web.bulk.title": {"zh-CN": "确认批量通过", "en": "Confirm bulk approval"},
    "web.bulk.will_approve": {"zh-CN": "将通过以下 {n} 件藏品（每件单独记入审核记录）：",
                              "en": "These {n} items will be approved (each recorded as its own decision):"},
    "web.bulk.refused_title": {"zh-CN": "以下 {n} 件不能批量通过，请逐件审核：", "en": "These {n} items cannot be approved in bulk; review them one by one:"},
    "web.bulk.col.item": {"zh-CN": "藏品", "en": "Item"},
    "web.bulk.col.why": {"zh-CN": "原因", "en": "Why"},
    "web.bulk.confirm": {"zh-CN": "确认通过这 {n} 件", "en": "Approve these {n} items"},
    "web.bulk.cancel": {"zh-CN": "← 取消，返回待审队列（不作任何记录）", "en": "← Cancel and return to the queue (nothing is recorded)"},
    "web.bulk.none_accepted": {"zh-CN": "没有可以批量通过的藏品。", "en": "None of these items can be approved in bulk."},
    "web.bulk.not_yet": {"zh-CN": "尚未记录任何内容：点击确认后才会生效。", "en": "Nothing is recorded yet: it takes effect only when you confirm."},
    "web.bulk.nothing_selected": {"zh-CN": "请先在队列中勾选藏品，或选择一个入库批次。", "en": "Select items in the queue first, or choose an ingest run."},
    "web.bulk.nothing_confirmed": {"zh-CN": "确认页的内容不完整或已失效，未记录任何决定。请从待审队列重新开始。",
                                   "en": "The confirmation was incomplete or not valid; nothing was recorded. Please start again from the queue."},
    "web.bulk.too_many": {"zh-CN": "所选共 {n} 件，超过单次批量通过上限 {max} 件。请缩小范围（例如先按入库批次或筛选条件分批）。",
                          "en": "{n} items selected, more than the {max} one bulk approval may hold. Narrow the selection (e.g. by ingest run or filter)."},
    "web.bulk.run_empty": {"zh-CN": "入库批次 {run} 没有待审藏品。", "en": "Ingest run {run} has no items awaiting review."},
    "web.bulk.refused.not_found": {"zh-CN": "藏品不存在。", "en": "No such item."},
    "web.bulk.refused.not_awaiting_review": {"zh-CN": "不在待审状态。", "en": "Not awaiting review."},
    "web.bulk.refused.needs_second_approver": {"zh-CN": "定级文物，需两位审核员分别在藏品页审核通过。",
                                               "en": "A graded relic: two reviewers must each approve it on its own page."},
    "web.bulk.refused.own_item": {"zh-CN": "由您本人的入库批次带入或修改，不能由您审核通过。", "en": "Your own ingest run brought it in or changed it: you may not approve it."},
    "web.bulk.refused.unresolved_warnings": {"zh-CN": "有未处理的质量警告，请在藏品页查看。", "en": "It has quality warnings; look at them on its page."},
    "web.bulk.refused.duplicate_candidates": {"zh-CN": "有近似重复候选，请在藏品页比对。", "en": "It has near-duplicate candidates; compare them on its page."},
    "web.bulk.refused.object_changed": {"zh-CN": "确认页显示之后，此藏品有了新的图像、著录或警告，未通过。",
                                        "en": "It changed after the confirmation page was shown (new photograph, record or warning); not approved."},
    "web.bulk.refused.not_recorded": {"zh-CN": "审核记录拒绝了此决定（例如他人刚刚作出决定），未通过。",
                                      "en": "The review record refused the decision (e.g. someone decided a moment ago); not approved."},
    "web.flash.bulk": {"zh-CN": "批量通过：{approved} 件已通过，{refused} 件未通过（确认后发生了变化，请逐件查看）。",
                       "en": "Bulk approval: {approved} approved, {refused} not approved (they changed after confirmation; look at them one by one)."},
    "web.flash.bulk_all": {"zh-CN": "批量通过：{approved} 件已通过。", "en": "Bulk approval: {approved} approved."},
    # the JSON API (review_ui/api.py)
    "web.api.unauthorised": {"zh-CN": "需要登录会话或有效的 API 令牌（Authorization: Bearer …）。令牌可用 relicflow tokens create 创建。",
                             "en": "A signed-in session or a valid API token (Authorization: Bearer …) is needed. Make a token with relicflow tokens create."},
    "web.api.limit": {"zh-CN": "limit 须为 1 到 200 之间的整数。", "en": "limit must be a whole number from 1 to 200."},
    "web.api.audit_paging": {"zh-CN": "limit 须为 1 到 500 之间的整数，before 须为审计条目编号。", "en": "limit must be from 1 to 500, and before an audit entry's number."},
    "web.api.invalid_request": {"zh-CN": "请求内容不符合 API 文档（/api/v1/openapi.json）。", "en": "The request does not match the API's description (/api/v1/openapi.json)."},
    "web.flash.reopened": {"zh-CN": "藏品 #{id} 已重新开启审核，回到待审队列。", "en": "Item #{id} is reopened and back in the review queue."},
    # confirmation page
    "web.confirm.title.reject": {"zh-CN": "确认驳回", "en": "Confirm rejection"},
    "web.confirm.title.send_back": {"zh-CN": "确认退回", "en": "Confirm send-back"},
    "web.confirm.title.reopen": {"zh-CN": "确认重新开启审核", "en": "Confirm reopening"},
    "web.confirm.question.reject": {"zh-CN": "确定要驳回藏品 #{id} 吗？驳回后该藏品不会发行。",
                                    "en": "Reject item #{id}? A rejected item is not issued."},
    "web.confirm.question.send_back": {"zh-CN": "确定要将藏品 #{id} 退回数字化人员吗？他们会看到下面的说明。",
                                       "en": "Send item #{id} back to digitisation staff? They will see the note below."},
    "web.confirm.question.reopen": {
        "zh-CN": "确定要重新开启藏品 #{id} 的审核吗？之前的审核决定会保留在记录中，但不再计入；该藏品回到待审队列，需要重新审核。",
        "en": "Reopen the review of item #{id}? Its earlier decisions stay in the record but no longer count; the item goes "
              "back to the review queue and must be reviewed again."},
    "web.confirm.item": {"zh-CN": "藏品", "en": "Item"},
    "web.confirm.status": {"zh-CN": "当前状态", "en": "Current status"},
    "web.confirm.decision": {"zh-CN": "操作", "en": "Action"},
    "web.confirm.action.reject": {"zh-CN": "驳回", "en": "Reject"},
    "web.confirm.action.send_back": {"zh-CN": "退回重拍", "en": "Send back"},
    "web.confirm.action.reopen": {"zh-CN": "重新开启审核", "en": "Reopen the review"},
    "web.confirm.reason.reject": {"zh-CN": "驳回原因", "en": "Reason for rejection"},
    "web.confirm.reason.send_back": {"zh-CN": "给数字化人员的说明", "en": "Note for digitisation staff"},
    "web.confirm.reason.reopen": {"zh-CN": "重新开启的原因", "en": "Reason for reopening"},
    "web.confirm.not_yet": {"zh-CN": "尚未记录任何内容：点击确认后才会生效。", "en": "Nothing is recorded yet: it takes effect only when you confirm."},
    "web.confirm.button.reject": {"zh-CN": "确认驳回", "en": "Confirm rejection"},
    "web.confirm.button.send_back": {"zh-CN": "确认退回", "en": "Confirm send-back"},
    "web.confirm.button.reopen": {"zh-CN": "确认重新开启", "en": "Confirm reopening"},
    "web.confirm.edit": {"zh-CN": "返回修改", "en": "Go back and edit"},
    "web.confirm.back": {"zh-CN": "← 取消，返回藏品页（不作任何记录）", "en": "← Cancel and return to the item (nothing is recorded)"},
    # reopen
    "web.reopen.title": {"zh-CN": "重新开启审核（管理员）", "en": "Reopen the review (administrators)"},
    "web.reopen.help": {
        "zh-CN": "用于纠正误操作的审核决定。藏品回到待审队列；之前的决定保留在审计记录中，但不再计入（包括两人审核规则和发行规则）。请写明原因（必填）。",
        "en": "Corrects a mistaken decision. The item goes back to the review queue; earlier decisions stay in the audit "
              "record but no longer count (for the two-reviewer rule and the mint). Say why (required)."},
    "web.reopen.reason_label": {"zh-CN": "重新开启的原因", "en": "Reason for reopening"},
    "web.reopen.button": {"zh-CN": "重新开启审核", "en": "Reopen the review"},
    "web.reopen.reason_required": {"zh-CN": "重新开启审核时必须填写原因。", "en": "A reason is required to reopen a decision."},
    "web.reopen.admin_only": {"zh-CN": "只有管理员可以重新开启审核决定。", "en": "Only an administrator can reopen a decision."},
    "web.reopen.refused.not_admin": {"zh-CN": "只有管理员可以重新开启审核决定。", "en": "Only an administrator can reopen a decision."},
    "web.reopen.refused.reason_required": {"zh-CN": "重新开启审核时必须填写原因。", "en": "A reason is required to reopen a decision."},
    "web.reopen.refused.not_decided": {
        "zh-CN": "只有已驳回、已退回或已通过（尚未打包）的藏品可以重新开启审核。",
        "en": "Only a rejected, sent-back or approved (not yet batched) item can be reopened."},
    "web.reopen.refused.batched": {
        "zh-CN": "该藏品已打包提交给发行方，不能重新开启审核：发行方收到的内容不能更改。如批次被发行方拒绝，请先由运维人员释放该批次。",
        "en": "This item is in a mint batch sent to the issuer and cannot be reopened: what the issuer received cannot be "
              "changed. If the issuer refused the batch, an operator must release it first."},
    "web.reopen.refused.minted": {
        "zh-CN": "该藏品已发行（已有数字藏品凭证），不能重新开启审核。",
        "en": "This item is minted (its token exists) and cannot be reopened."},
    "web.reopen.refused.was_batched": {
        "zh-CN": "该藏品曾被打包提交给发行方，不能重新开启审核：发行方收到过的内容不能更改。",
        "en": "This item was in a mint batch sent to the issuer before and cannot be reopened: what the issuer received "
              "cannot be changed."},
    "web.history.reopened": {"zh-CN": "重新开启审核（原为{was}）", "en": "Reopened (was {was})"},
    "web.history.set_aside": {"zh-CN": "已因重新开启而不再计入", "en": "no longer counts (reopened since)"},
    # token panel
    "web.token.title": {"zh-CN": "发行信息", "en": "Issue and token"},
    "web.token.token_id": {"zh-CN": "凭证编号（Token ID）", "en": "Token id"},
    "web.token.chain": {"zh-CN": "区块链", "en": "Chain"},
    "web.token.tx_hash": {"zh-CN": "交易哈希", "en": "Transaction hash"},
    "web.token.minted_at": {"zh-CN": "发行回执时间", "en": "Receipt recorded"},
    "web.token.not_yet": {"zh-CN": "尚未发行（等待发行方回执）", "en": "not minted yet (waiting for the issuer's receipt)"},
    "web.token.batch": {"zh-CN": "发行批次", "en": "Mint batch"},
    "web.token.issuer_batch": {"zh-CN": "发行方批次", "en": "Issuer's batch"},
    "web.token.sent_at": {"zh-CN": "提交时间", "en": "Sent"},
    "web.token.batch_status.pending": {"zh-CN": "待提交", "en": "pending"},
    "web.token.batch_status.failed": {"zh-CN": "提交失败，将重试", "en": "failed, will be retried"},
    "web.token.batch_status.minted": {"zh-CN": "已发行", "en": "minted"},
    "web.token.batch_status.rejected": {"zh-CN": "被发行方拒绝", "en": "refused by the issuer"},
    "web.token.batch_status.recovered": {"zh-CN": "已核对恢复", "en": "recovered"},
    "web.token.batch_status.released": {"zh-CN": "已释放", "en": "released"},
    # quarantine page: sheet rows with no scan
    "web.unmatched.title": {"zh-CN": "登记表中尚无图像的条目", "en": "Accession-sheet rows with no scan"},
    "web.unmatched.intro": {
        "zh-CN": "这些登记表行的总登记号没有对应的图像文件。请拍摄或补交该藏品的图像，或更正登记表中的编号；图像入库后该行会自动从列表中消失。",
        "en": "No scan matches these rows' accession numbers. Photograph the object or add its file, or correct the number "
              "in the sheet; a row leaves this list once its scan has arrived."},
    "web.unmatched.empty": {"zh-CN": "登记表中的所有条目都已有图像。", "en": "Every accession-sheet row has its scan."},
    "web.unmatched.col.sheet": {"zh-CN": "登记表", "en": "Sheet"},
    "web.unmatched.col.row": {"zh-CN": "行号", "en": "Row"},
    "web.unmatched.col.run": {"zh-CN": "报告于", "en": "Reported by"},
    "web.unmatched.run": {"zh-CN": "入库运行 #{id}（{when}）", "en": "ingest run #{id} ({when})"},
}

# Roles, the access matrix's refusals, the audit-log page and session expiry (relicflow/roles.py, review_ui/access.py,
# review_ui/audit_log.py, review_ui/sessions.py).
_ACCESS: dict[str, dict[str, str]] = {
    "web.role.senior_reviewer": {"zh-CN": "资深审核员", "en": "senior reviewer"},
    "web.role.auditor": {"zh-CN": "审计员", "en": "auditor"},
    "web.access.denied": {
        "zh-CN": "您没有权限执行此操作。您的角色（{role}）不能{action}；如确需此权限，请联系管理员。",
        "en": "You are not allowed to do this. Your role ({role}) may not {action}; ask an administrator if you need to.",
    },
    "web.action.queue.read": {"zh-CN": "查看待审队列", "en": "see the review queue"},
    "web.action.item.read": {"zh-CN": "查看藏品", "en": "see items"},
    "web.action.quarantine.read": {"zh-CN": "查看隔离文件", "en": "see the quarantine"},
    "web.action.item.decide": {"zh-CN": "审核藏品（通过、驳回或退回）", "en": "decide on items (approve, reject or send back)"},
    "web.action.item.second_approval": {"zh-CN": "对定级文物作第二次通过", "en": "give a graded relic its second approval"},
    "web.action.item.reopen": {"zh-CN": "重新开启审核决定", "en": "reopen decisions"},
    "web.action.item.retry": {"zh-CN": "重新处理文件", "en": "retry files"},
    "web.action.fixity.read": {"zh-CN": "查看存储完整性检查", "en": "see the storage fixity checks"},
    "web.action.audit.read": {"zh-CN": "查看审计日志", "en": "read the audit log"},
    "web.action.audit.export": {"zh-CN": "导出审计日志", "en": "export the audit log"},
    "web.action.undeclared": {"zh-CN": "使用此页面（此页面尚未登记权限）", "en": "use this page (it has no declared permission)"},
    "web.decision.needs_senior": {
        "zh-CN": "此藏品为定级文物，需 {n} 位审核员通过；第一次之后的通过只能由资深审核员作出。您的通过未记录，请交由资深审核员审核。",
        "en": "This graded relic needs {n} approvals, and only a senior reviewer may give any after the first. Your approval "
              "was not recorded; a senior reviewer must approve it.",
    },
    "web.decision.own_item": {
        "zh-CN": "您不能通过自己导入或修改过的藏品（导入批次 {runs} 由您运行）。您的通过未记录，请交由另一位审核员审核。",
        "en": "You cannot approve an item you brought into the catalogue or changed (you ran ingest run {runs}). Your "
              "approval was not recorded; another reviewer must approve it.",
    },
    "web.login.expired": {"zh-CN": "您的登录已超时，请重新登录；登录后将回到刚才的页面。",
                          "en": "Your session expired. Please sign in again; you will be taken back to the page you were on."},
    "web.nav.audit": {"zh-CN": "审计日志", "en": "Audit log"},
    "web.audit.title": {"zh-CN": "审计日志", "en": "Audit log"},
    "web.audit.intro": {"zh-CN": "所有操作的记录，最新的在前；共 {total} 条。只读。",
                        "en": "The record of every action, newest first; {total} entries. Read-only."},
    "web.audit.export": {"zh-CN": "导出全部（CSV）", "en": "Export all (CSV)"},
    "web.audit.col.at": {"zh-CN": "时间", "en": "Time"},
    "web.audit.col.actor": {"zh-CN": "操作人", "en": "Actor"},
    "web.audit.col.action": {"zh-CN": "操作", "en": "Action"},
    "web.audit.col.item": {"zh-CN": "藏品", "en": "Item"},
    "web.audit.col.details": {"zh-CN": "详情", "en": "Details"},
    "web.audit.empty": {"zh-CN": "没有更多记录。", "en": "No more entries."},
    "web.audit.pages": {"zh-CN": "翻页", "en": "Pages"},
    "web.audit.newest": {"zh-CN": "最新记录", "en": "Newest entries"},
    "web.audit.older": {"zh-CN": "更早的记录", "en": "Older entries"},
}

MESSAGES: dict[str, dict[str, str]] = {
    **_WEB,
    **_FIXITY,
    **_ACCESS,
    **_REVIEW_STEPS,
    **CLI_MESSAGES,
    **USERS_CLI_MESSAGES,
    **{f"web.field.{key}": {"zh-CN": zh, "en": en} for key, (zh, en) in _FIELDS.items()},
    **{f"web.tech.{key}": {"zh-CN": zh, "en": en} for key, (zh, en) in _TECHNICAL.items()},
}


def t(key: str, locale: str, **kwargs: object) -> str:
    """The message ``key`` in ``locale``; falls back to zh-CN, then to the key itself."""
    texts = MESSAGES.get(key)
    if texts is None:
        return key
    text = texts.get(locale) or texts.get(DEFAULT_LOCALE) or key
    return text.format(**kwargs) if kwargs else text


def has_message(key: str) -> bool:
    return key in MESSAGES


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
