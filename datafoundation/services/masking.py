"""Masking (脱敏) of a dataset's values by the field's mask kind, as the national practice
shows them: 身份证号 keeps its first 6 and last 4 characters, 手机号 hides its middle 4 digits,
a name keeps the surname only. Masking happens before a value leaves the domain code, so JSON,
CSV, logs and errors only ever see the masked form."""

from __future__ import annotations

from typing import Any

MASK = "*"
FULL = "******"  # fixed width: a fully masked value does not even tell its length
# two-character surnames (复姓) common enough to matter; the rest keep one character
COMPOUND_SURNAMES = frozenset({
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文",
    "司徒", "夏侯", "令狐", "轩辕", "端木", "独孤", "南宫", "西门", "百里", "呼延", "澹台",
})


def mask_id_card(value: str) -> str:
    if len(value) <= 10:
        return FULL
    return value[:6] + MASK * (len(value) - 10) + value[-4:]


def _middle_four(digits: str) -> str:
    if len(digits) <= 4:
        return MASK * len(digits)
    start = (len(digits) - 4) // 2
    return digits[:start] + MASK * 4 + digits[start + 4:]


def mask_phone(value: str) -> str:
    """138****5678; a landline keeps its area code and hides the middle of the number."""
    head, sep, number = value.rpartition("-")
    return head + sep + _middle_four(number)


def mask_name(value: str) -> str:
    surname = value[:2] if value[:2] in COMPOUND_SURNAMES else value[:1]
    return surname + MASK * max(len(value) - len(surname), 1)


_MASKERS = {"id_card": mask_id_card, "phone": mask_phone, "name": mask_name,
            "full": lambda _value: FULL}


def effective_kind(mask_kind: str, sensitivity: int) -> str:
    """A secret field (敏感级别 3) with no kind of its own is hidden whole."""
    if mask_kind == "none" and sensitivity >= 3:
        return "full"
    return mask_kind


def mask(kind: str, value: Any) -> Any:
    if value is None or kind == "none":
        return value
    return _MASKERS[kind](str(value))


def mask_rows(rows: list[dict], kinds: dict[str, str]) -> list[dict]:
    """Rows with every field of `kinds` (field -> kind, none left out) masked in place."""
    masked = {f: k for f, k in kinds.items() if k != "none"}
    if masked:
        for row in rows:
            for field, kind in masked.items():
                if field in row:
                    row[field] = mask(kind, row[field])
    return rows
