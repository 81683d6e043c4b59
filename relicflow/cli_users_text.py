"""Text of `relicflow users …` in zh-CN (default) and en; merged into ``relicflow.i18n.MESSAGES``."""

from __future__ import annotations

USERS_CLI_MESSAGES: dict[str, dict[str, str]] = {
    "cli.users.none": {"zh-CN": "还没有用户。用 relicflow users add 添加。", "en": "No users yet. Add one with relicflow users add."},
    "cli.users.col.user": {"zh-CN": "用户名", "en": "User"},
    "cli.users.col.name": {"zh-CN": "姓名", "en": "Name"},
    "cli.users.col.role": {"zh-CN": "角色", "en": "Role"},
    "cli.users.col.active": {"zh-CN": "状态", "en": "Status"},
    "cli.users.col.sessions": {"zh-CN": "登录会话", "en": "Sessions"},
    "cli.users.col.last_sign_in": {"zh-CN": "最近登录", "en": "Last sign-in"},
    "cli.users.active": {"zh-CN": "启用", "en": "active"},
    "cli.users.disabled": {"zh-CN": "已停用", "en": "disabled"},
    "cli.users.never": {"zh-CN": "无记录", "en": "not recorded"},
    "cli.users.unknown": {
        "zh-CN": "没有名为 {name} 的用户。用 relicflow users list 查看所有用户。",
        "en": "There is no user named {name}. relicflow users list shows every user.",
    },
    "cli.users.disabled_now": {
        "zh-CN": "已停用用户 {name}，其 {n} 个登录会话已结束；该用户无法再登录，直到用 relicflow users enable 重新启用。",
        "en": "Disabled {name} and ended their {n} session(s); they cannot sign in until relicflow users enable.",
    },
    "cli.users.enabled_now": {"zh-CN": "已重新启用用户 {name}，可以登录。", "en": "Enabled {name}; they can sign in again."},
    "cli.users.enabled_already": {"zh-CN": "用户 {name} 本来就是启用状态。", "en": "{name} was active already."},
    "cli.users.sessions_ended": {"zh-CN": "已结束用户 {name} 的 {n} 个登录会话，需重新登录。",
                                 "en": "Ended {n} session(s) of {name}; they must sign in again."},
    "cli.users.password_set": {
        "zh-CN": "已为用户 {name} 设置新密码，其 {n} 个登录会话已结束。",
        "en": "New password set for {name}; their {n} session(s) ended.",
    },
    "cli.users.password_set_disabled": {
        "zh-CN": "注意：该用户仍处于停用状态，需 relicflow users enable 后才能登录。",
        "en": "Note: the account is still disabled; relicflow users enable lets them sign in.",
    },
    "cli.users.prompt_password": {"zh-CN": "新密码", "en": "New password"},
    "cli.users.prompt_again": {"zh-CN": "再次输入新密码", "en": "New password again"},
    "cli.users.passwords_differ": {"zh-CN": "两次输入的密码不一致，密码未修改。请重新运行命令。",
                                   "en": "The two passwords differ; nothing was changed. Run the command again."},
    "cli.users.password_short": {
        "zh-CN": "密码太短：至少需要 {min} 个字符，密码未修改。",
        "en": "The password is too short: it needs at least {min} characters; nothing was changed.",
    },
    "cli.users.no_stdin": {
        "zh-CN": "--password-stdin 需要从标准输入读取一行密码，但没有读到内容，密码未修改。",
        "en": "--password-stdin reads the password as one line from standard input, but there was none; nothing was changed.",
    },
}
