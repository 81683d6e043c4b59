"""Quarantine reasons that come from how a file arrived or how decoding it went, not from its format.

Each is a stable code plus a sentence in English and Chinese saying what happened and what to do; the
file's bytes are always kept (the original is stored before any of these can be raised).
"""

from __future__ import annotations

from relicflow.errors import InputRejected


def file_vanished() -> InputRejected:
    return InputRejected(
        "file_vanished",
        "The file disappeared from the inbox before it could be stored. If it was moved on purpose, nothing needs "
        "doing; otherwise put it back into the inbox and it is taken in on the next run.",
        "文件在保存前已从收件箱中消失。如系有意移走，无需处理；否则请将其放回收件箱，下一次运行时会自动处理。",
    )


def file_changed() -> InputRejected:
    return InputRejected(
        "file_changed_during_ingest",
        "The file changed while it was being stored (it was probably still being copied into the inbox). Nothing was "
        "stored for this version; when the completed file is in place it is picked up on the next run and replaces "
        "this entry.",
        "文件在保存过程中发生了变化（可能仍在拷贝进收件箱）。此版本未被保存；完整的文件就位后，会在下一次运行时自动处理并取代本条记录。",
    )


def file_name_unusable(problem: str, shown_as: str, hints: tuple[str, ...]) -> InputRejected:
    """A name that is not valid UTF-8 (e.g. GBK from an old Windows ZIP tool) or holds control characters
    cannot be matched to the accession sheet or shown reliably; the bytes are fine and have been kept."""
    hint_en = f" It probably reads {hints[0]}." if hints else ""
    hint_zh = f"它可能是“{hints[0]}”。" if hints else ""
    if problem == "not_utf8":
        return InputRejected(
            "file_name_not_utf8",
            f"The file name is not valid UTF-8 text (shown here as {shown_as}), so it cannot be matched to the accession "
            f"sheet or shown reliably.{hint_en} This usually comes from a ZIP made on an older Windows computer. The "
            "file itself has been kept. Rename it (e.g. 2019.3.17_正面.tif) and drop it into the inbox again; it is "
            "then processed.",
            f"文件名不是有效的 UTF-8 文本（此处显示为 {shown_as}），无法与登记表对应，也无法可靠显示。{hint_zh}"
            "这通常来自旧版 Windows 电脑制作的 ZIP 压缩包。文件本身已保存。请重命名（如“2019.3.17_正面.tif”）"
            "后重新放入收件箱，即会被处理。",
            shown_as=shown_as, hints=list(hints),
        )
    return InputRejected(
        "file_name_control_characters",
        f"The file name contains control characters (shown here as {shown_as}), which break reports and sheet matching. "
        "The file itself has been kept. Rename it and drop it into the inbox again; it is then processed.",
        f"文件名含有控制字符（此处显示为 {shown_as}），会破坏报告和登记表对应。文件本身已保存。请重命名后重新放入收件箱，即会被处理。",
        shown_as=shown_as,
    )


def decoder_problem(exc: Exception, *, timeout_s: float, memory_limit_mb: int) -> InputRejected:
    """The isolated worker decoding the file hung, ran out of memory or crashed: the file's doing (damaged,
    crafted, or bigger than this installation allows), never a reason to stop the batch."""
    from relicflow.errors import WorkerOutOfMemory, WorkerTimedOut

    if isinstance(exc, WorkerTimedOut):
        return InputRejected(
            "decoder_timeout",
            f"Decoding this file took longer than {timeout_s:g} seconds and was stopped. The file may be damaged or made "
            "to stall image decoders. If it is a genuine, very large master, ask the administrator to raise "
            "decode_timeout_s and retry it; otherwise export it again from the original software.",
            f"解码此文件超过 {timeout_s:g} 秒，已被终止。文件可能已损坏，或被构造来拖垮图像解码器。"
            "如确为超大的真实母版，请联系管理员调高 decode_timeout_s 后重试；否则请从原始软件重新导出。",
            timeout_s=timeout_s,
        )
    if isinstance(exc, WorkerOutOfMemory):
        return InputRejected(
            "decoder_out_of_memory",
            f"Decoding this file needed more than the {memory_limit_mb} MB of memory each decoder may use, and was "
            "stopped. The file may be damaged or a decompression bomb. If it is a genuine master, ask the administrator "
            "to raise decode_memory_limit_mb and retry it.",
            f"解码此文件所需内存超过每个解码进程允许的 {memory_limit_mb} MB，已被终止。文件可能已损坏或是“解压炸弹”。"
            "如确为真实母版，请联系管理员调高 decode_memory_limit_mb 后重试。",
            memory_limit_mb=memory_limit_mb,
        )
    return InputRejected(
        "decoder_crashed",
        f"The image decoder crashed on this file ({exc}). The file is probably damaged or crafted; export it again from "
        "the original software. The rest of the batch was not affected.",
        f"图像解码器在处理此文件时崩溃（{exc}）。文件可能已损坏或被恶意构造，请从原始软件重新导出。同批其他文件不受影响。",
        decoder_message=str(exc),
    )
