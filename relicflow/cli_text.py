"""Command-line text in zh-CN (default) and en; merged into ``relicflow.i18n.MESSAGES``."""

from __future__ import annotations

CLI_MESSAGES: dict[str, dict[str, str]] = {
    "cli.init.done": {"zh-CN": "数据目录已就绪：{data_dir}\n收件箱：{inbox}\n目录数据库：{db}", "en": "Data dir ready: {data_dir}\nInbox: {inbox}\nCatalogue: {db}"},
    "cli.init.admin": {"zh-CN": "已创建管理员 {name}，密码（仅显示一次）：{password}", "en": "Created administrator {name}; password (shown once): {password}"},
    "cli.init.has_users": {"zh-CN": "已有用户，未创建管理员。", "en": "Users exist already; no administrator created."},
    "cli.init.demo": {"zh-CN": "示例扫描件与登记表已放入收件箱：{n} 个文件", "en": "Sample scans and accession sheet put in the inbox: {n} files"},
    "cli.init.demo_user": {"zh-CN": "演示审核员：用户名 {name}  密码 {password}", "en": "Demo reviewer: user {name}  password {password}"},
    "cli.ingest.scanning": {"zh-CN": "正在处理 {n} 个文件……", "en": "Processing {n} files…"},
    "cli.ingest.preparing": {"zh-CN": "正在清点收件箱……", "en": "Looking through the inbox…"},
    "cli.ingest.summary": {
        "zh-CN": "入库完成：共 {files} 个文件，新增 {new}，待审核 {awaiting}，隔离 {quarantined}，失败 {failed}，已存在 {known}，跳过 {skipped}，出错 {errors}",
        "en": "Ingest done: {files} files, {new} new, {awaiting} awaiting review, {quarantined} quarantined, {failed} failed, {known} already known, {skipped} skipped, {errors} errors",
    },
    "cli.ingest.failed_item": {
        "zh-CN": "  #{item} {file}：内部错误（第 {attempts}/{max} 次尝试，之后的运行会自动重试）：{error}",
        "en": "  #{item} {file}: internal error (attempt {attempts} of {max}; later runs retry it): {error}",
    },
    "cli.ingest.sheet_problem": {"zh-CN": "登记表问题：{problem}", "en": "Accession-sheet problem: {problem}"},
    "cli.ingest.skipped": {"zh-CN": "跳过 {n} 个条目（未作为扫描件处理）：", "en": "{n} entries skipped (not taken in as scans):"},
    "cli.ingest.stopped": {"zh-CN": "入库运行未能完成：{message}", "en": "The ingest run could not finish: {message}"},
    "cli.skip.hidden": {"zh-CN": "隐藏文件", "en": "hidden file"},
    "cli.skip.system_file": {"zh-CN": "系统文件", "en": "system file"},
    "cli.skip.system_folder": {"zh-CN": "系统文件夹", "en": "system folder"},
    "cli.skip.note": {"zh-CN": "说明文件，非扫描件", "en": "a note, not a scan"},
    "cli.skip.symlink": {"zh-CN": "链接，不跟随（请拷贝文件本身）", "en": "a link, not followed (copy the file itself)"},
    "cli.skip.partial_file": {"zh-CN": "仍在下载或拷贝（临时文件名）", "en": "still downloading or copying (temporary name)"},
    "cli.skip.still_being_copied": {"zh-CN": "刚刚有变化，可能仍在拷贝，下次运行处理", "en": "changed moments ago, probably still being copied; taken on a later run"},
    "cli.skip.not_a_regular_file": {"zh-CN": "不是普通文件（管道、设备等）", "en": "not a regular file (pipe, device…)"},
    "cli.skip.sheet_name_unusable": {"zh-CN": "登记表文件名不是有效的 UTF-8 文本，请重命名", "en": "an accession sheet whose name is not valid UTF-8; rename it"},
    "cli.skip.unreadable_folder": {"zh-CN": "文件夹无法读取", "en": "folder cannot be read"},
    "cli.skip.unreadable": {"zh-CN": "文件无法读取，下次运行重试", "en": "file cannot be read; retried next run"},
    "cli.items.failed": {"zh-CN": "内部错误，已尝试 {attempts}/{max} 次：{error}", "en": "internal error, {attempts} of {max} attempts: {error}"},
    "cli.items.held": {"zh-CN": "暂缓发行（{code}）：{message}", "en": "held back from minting ({code}): {message}"},
    "cli.items.superseded": {"zh-CN": "已由 #{item} 取代", "en": "replaced by #{item}"},
    "cli.items.guessed_note": {"zh-CN": "带“?”的总登记号是从文件名推断的，请核对。", "en": "Accession numbers marked ? were guessed from the file name; check them."},
    "cli.retry.queued": {"zh-CN": "#{item} 将在下一次入库运行时重新处理。", "en": "#{item} will be processed again by the next ingest run."},
    "cli.retry.refused": {"zh-CN": "#{item} 不存在，或不处于“失败”或“已隔离”状态，无法重试。", "en": "#{item} does not exist or is not failed or quarantined; it cannot be retried."},
    "cli.ingest.unmatched": {"zh-CN": "登记表中以下总登记号没有对应文件：{numbers}", "en": "Accession-sheet numbers with no matching scan: {numbers}"},
    "cli.ingest.no_inbox": {"zh-CN": "收件箱不存在：{path}", "en": "Inbox not found: {path}"},
    "cli.items.none": {"zh-CN": "没有符合条件的藏品。", "en": "No items match."},
    "cli.items.col.id": {"zh-CN": "编号", "en": "Id"},
    "cli.items.col.status": {"zh-CN": "状态", "en": "Status"},
    "cli.items.col.accession": {"zh-CN": "总登记号", "en": "Accession no."},
    "cli.items.col.files": {"zh-CN": "原始文件", "en": "Original files"},
    "cli.items.col.notes": {"zh-CN": "提示", "en": "Notes"},
    "cli.users.added": {"zh-CN": "已添加用户 {name}（{role}），密码（仅显示一次）：{password}", "en": "Added user {name} ({role}); password (shown once): {password}"},
    "cli.users.bad_role": {"zh-CN": "角色必须是：{roles}", "en": "Role must be one of: {roles}"},
    "cli.mint.held": {"zh-CN": "{n} 件藏品暂缓发行；原因见 `relicflow items --status approved`", "en": "{n} item(s) held back from minting; `relicflow items --status approved` says why"},
    "cli.mint.summary": {"zh-CN": "发行完成：{minted} 个数字藏品，{batches} 个批次，失败 {failed}", "en": "Mint done: {minted} tokens in {batches} batch(es), {failed} failed"},
    "cli.fixity.summary": {
        "zh-CN": "完整性检查完成：检查 {checked} 个存储对象（完好 {ok}，缺失 {missing}，内容已改变 {changed}，无法读取 {unreadable}）；"
                 "清除中断写入留下的过期临时文件 {removed} 个",
        "en": "Fixity check done: {checked} stored objects checked ({ok} intact, {missing} missing, {changed} changed, "
              "{unreadable} unreadable); {removed} stale temporary files of interrupted writes removed",
    },
    "cli.fixity.coverage": {"zh-CN": "清单中共有 {total} 个存储对象，其中 {unchecked} 个尚未检查过。",
                            "en": "The inventory holds {total} stored objects; {unchecked} have never been checked."},
    "cli.fixity.adopted": {
        "zh-CN": "{n} 个对象此前未登记哈希值：已采用存储系统自身记录的哈希值（与实际内容一致）作为今后的比对依据。",
        "en": "{n} objects had no registered hash: the store's own record (which matches the bytes) is now the expected hash.",
    },
    "cli.fixity.none": {"zh-CN": "已检查的存储对象全部完好。", "en": "Every checked stored object is intact."},
    "cli.fixity.problems": {
        "zh-CN": "以下 {n} 个存储对象有问题。请从备份恢复缺失或内容已改变的对象（原件不可替换为其他文件），"
                 "无法读取的请检查存储权限与连接，然后再次运行 relicflow fixity：",
        "en": "{n} stored objects have a problem. Restore missing or changed objects from a backup (never replace an original "
              "with another file); for unreadable ones check the store's permissions and connection; then run relicflow fixity again:",
    },
    "cli.fixity.line": {"zh-CN": "{outcome}｜{role}｜藏品 {item}｜{name}", "en": "{outcome} | {role} | item {item} | {name}"},
    "cli.fixity.line_detail": {"zh-CN": "    {explain}（检查于 {checked} UTC）\n    {detail}",
                               "en": "    {explain} (checked {checked} UTC)\n    {detail}"},
    "cli.serve.starting": {"zh-CN": "正在启动 relicflow 服务（Ctrl-C 停止）……", "en": "Starting relicflow services (Ctrl-C stops them)…"},
    "cli.serve.ready": {
        "zh-CN": "服务已就绪：\n  审核页面     {review}\n  Prefect 界面 {prefect}\n  发行方接口   {issuer}\n  收件箱       {inbox}",
        "en": "Services ready:\n  Review app   {review}\n  Prefect UI   {prefect}\n  Issuer       {issuer}\n  Inbox        {inbox}",
    },
    "cli.serve.stopped": {"zh-CN": "所有服务已停止。", "en": "All services stopped."},
    "cli.serve.died": {"zh-CN": "服务 {name} 意外退出（退出码 {code}），正在停止其他服务。", "en": "Service {name} exited unexpectedly (code {code}); stopping the others."},
    "cli.serve.port_busy": {"zh-CN": "端口 {port} 已被占用（{name}）。请先停止占用它的程序，或用 RELICFLOW_{setting} 换一个端口。", "en": "Port {port} is in use ({name}). Stop what uses it, or choose another with RELICFLOW_{setting}."},
    "cli.error": {"zh-CN": "错误：{message}", "en": "Error: {message}"},
}
