"""Masking of personal data (phone, 身份证, e-mail, name) wherever text leaves the store.

PIPL treats phone and 身份证 numbers as personal (身份证: sensitive) data, so
every listing, log line, search index and export passes through
:func:`mask_text`, the one masking function. It lives outside ``bot.tickets``
because loggers and the NLU use it too.

Why it looks at NFKC-normalised text: citizens type full-width digits
(``１３９…``), brackets (``（０１０）``) and odd separators (``139.1234.5678``),
and the NLU normaliser is not on every path (console forms, Open311, logs).
The patterns run on the normalised copy; only the matched spans are replaced
in the text as written, so everything else stays as the citizen typed it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

from nlu.identifiers import is_valid_id_number  # the syntax of identifiers is the NLU's

__all__ = [
    "is_valid_id_number",
    "mask_email",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "mask_text",
    "normalize",
    "phone_digits",
    "search_form",
]


_SEP = r"[ \-.]?"
# Not preceded/followed by another digit or letter, so order numbers and ticket
# numbers (GD20261127-0042) keep their digits. A separator may sit between any
# two digits: "430102 1980 0101 1234", "4301-0219-8001-0112-34".
_ID18_RE = re.compile(r"(?<![0-9A-Za-z])\d(?:[ \-]?\d){16}[ \-]?[0-9Xx](?![0-9A-Za-z])")
#: first-generation 身份证 (before 1999): 15 digits, no check character
_ID15_RE = re.compile(r"(?<![0-9A-Za-z])\d(?:[ \-]?\d){14}(?![0-9A-Za-z])")
_MOBILE_RE = re.compile(
    rf"(?<![0-9])(\+?86{_SEP})?(1[3-9]\d){_SEP}(\d{{4}}){_SEP}(\d{{4}})(?![0-9])"
)
#: landlines with their area code, bracketed or not: (010) 8765-4321, 0731-84561234
_LANDLINE_RE = re.compile(
    r"(?<![0-9])(\(0\d{2,3}\)|0\d{2,3})[ \-.]?(\d{3,4})[ \-.]?(\d{4})(?![0-9])"
)
#: a local number named as one (电话 8765 4321) — without a keyword 7–8 digits are anything
_LOCAL_RE = re.compile(
    r"(?:电话|座机|固话|手机|tel|Tel|TEL)(?:号码?|是|为)?[:\s]*(\d{3,4})[ \-.]?(\d{4})(?![0-9])"
)
#: the domain may be cut short (a summary is the first 120 characters of the text)
_EMAIL_RE = re.compile(r"([A-Za-z0-9._%+\-]+)@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]*)*)")
#: any other long run of digits: a number cut short by a summary, a bank card, a
#: second phone glued to the first; dates (8 digits) and times stay readable
_LONG_DIGITS_RE = re.compile(r"(?<![0-9A-Za-z])\d(?:[ \-.]?\d){8,}(?![0-9])")

#: the commonest family names (about 95 % of the population); compound ones first
_COMPOUND_SURNAMES = (
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
    "令狐", "夏侯", "司徒", "端木", "宇文", "呼延", "轩辕", "独孤", "南宫", "西门",
)
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛"
    "郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦"
    "俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房"
    "滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应"
    "臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
#: characters that end a name: what follows "我叫王芳" in a sentence, not a given name
_NAME_STOP = frozenset(
    "住在的是电手家今现身联反投要想我你他她从到和与跟也就都还已被把给对向为了啊呢吧吗，"
)
#: where a sentence introduces the speaker's own name
_NAME_CUE_RE = re.compile(
    r"(?:我叫|我的名字[是叫]|我是|本人是?|姓名[是为:]?|名字[是叫:]?|联系人[是为:]?|叫做|报案人[是为:]?)\s*"
)
_CJK = re.compile(r"[\u4e00-\u9fff]")


def normalize(text: str) -> str:
    """NFKC: full-width digits, letters and brackets become ASCII (１３９ → 139)."""
    return unicodedata.normalize("NFKC", text)


def phone_digits(text: str, *, strict: bool = False) -> str:
    """The digits of a phone number (``+86``/``86`` dropped), or "" if it is none.

    ``strict``: the whole text must be the number (separators allowed), as in a
    search box; otherwise any text's digits are taken.
    """
    norm = normalize(text).strip()
    if strict and not re.fullmatch(r"\(?\+?[0-9][0-9 \-.()]*", norm):
        return ""
    digits = re.sub(r"\D", "", norm)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if re.fullmatch(r"1[3-9]\d{9}|0\d{9,11}", digits):
        return digits
    return ""


def search_form(text: str) -> str:
    """How search text is stored and compared: NFKC, lower case (ＡＢ == ab)."""
    return normalize(text).lower()


def mask_phone(value: str | None) -> str:
    """``13812345678`` -> ``138****5678``; short or odd input keeps only its last 2 chars."""
    if not value:
        return ""
    digits = re.sub(r"\D", "", normalize(value))
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) >= 7:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * max(len(digits) - 2, 0) + digits[-2:]


def mask_id_number(value: str | None) -> str:
    """``110101199003071234`` -> ``110101********1234`` (region kept, birth date hidden)."""
    if not value:
        return ""
    text = re.sub(r"[\s\-]", "", normalize(value)).upper()
    if len(text) <= 10:
        return "*" * len(text)
    if len(text) == 15:  # 6 region + YYMMDD + 3: the last 4 would hold a birth digit
        return text[:6] + "*" * 6 + text[-3:]
    return text[:6] + "*" * (len(text) - 10) + text[-4:]


def mask_name(value: str | None) -> str:
    """``张三`` -> ``张*``, ``欧阳娜娜`` -> ``欧***``: the family name alone stays readable."""
    if not value:
        return ""
    text = value.strip()
    return text[:1] + "*" * max(len(text) - 1, 1)


def mask_email(local: str, domain: str) -> str:
    """``wjg@example.com`` -> ``w***@example.com`` (the domain says little about a person)."""
    return f"{local[:1]}***@{domain}"


#: what NFKC does to full-width ASCII (ＡＢ１２，！) and the ideographic space, one to one
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def _with_origin(text: str) -> tuple[str, list[int]]:
    """The NFKC form of ``text`` and, for each of its characters, the index it came from."""
    if unicodedata.is_normalized("NFKC", text):
        return text, list(range(len(text)))
    # the common case (Chinese text with full-width punctuation or digits): a one-to-one
    # table whose result is already NFKC is the NFKC form, position for position
    quick = text.translate(_FULL_WIDTH)
    if unicodedata.is_normalized("NFKC", quick):
        return quick, list(range(len(text)))
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for piece in unicodedata.normalize("NFKC", char):
            out.append(piece)
            origin.append(index)
    return "".join(out), origin


def _digits(text: str) -> str:
    return re.sub(r"[^0-9Xx]", "", text)


def _name_at(norm: str, start: int) -> int | None:
    """End of a personal name starting at ``start`` (after a cue), or None."""
    for surname in _COMPOUND_SURNAMES:
        if norm.startswith(surname, start):
            lengths = (4, 3)
            break
    else:
        if start >= len(norm) or norm[start] not in _SURNAMES:
            return None
        lengths = (3, 2)
    for length in lengths:
        end = start + length
        candidate = norm[start:end]
        if len(candidate) < length or not all(_CJK.match(c) for c in candidate):
            continue
        if any(c in _NAME_STOP for c in candidate[1:]):
            continue
        after = norm[end : end + 1]
        if not after or not _CJK.match(after) or after in _NAME_STOP:
            return end
    return None


Span = tuple[int, int, str]


def _spans(norm: str, names: Iterable[str], numbers: Iterable[str]) -> list[Span]:
    spans: list[Span] = []

    def take(start: int, end: int, replacement: str) -> None:
        if start < end and not any(s < end and start < e for s, e, _ in spans):
            spans.append((start, end, replacement))

    # what the store knows of this ticket's citizen first: no pattern finds every name
    for value, masker in (
        *((n, mask_name) for n in names),
        *((n, _mask_known_number) for n in numbers),
    ):
        value = normalize(value or "").strip()
        if len(value) < 2:
            continue
        for match in re.finditer(re.escape(value), norm):
            take(match.start(), match.end(), masker(value))

    rules: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str], int]] = [
        (_EMAIL_RE, lambda m: mask_email(m.group(1), m.group(2)), 0),
        (_ID18_RE, lambda m: mask_id_number(_digits(m.group(0))), 0),
        (_MOBILE_RE, lambda m: f"{m.group(2)}****{m.group(4)}", 0),
        (_ID15_RE, lambda m: mask_id_number(_digits(m.group(0))), 0),
        (_LANDLINE_RE, lambda m: f"{m.group(1)}-****{m.group(3)}", 0),
        (_LONG_DIGITS_RE, lambda m: (d := _digits(m.group(0)))[:3] + "*" * (len(d) - 3), 0),
    ]
    for pattern, replace, _group in rules:
        for match in pattern.finditer(norm):
            take(match.start(), match.end(), replace(match))
    for match in _LOCAL_RE.finditer(norm):
        take(match.start(1), match.end(2), f"****{match.group(2)}")
    for match in _NAME_CUE_RE.finditer(norm):
        end = _name_at(norm, match.end())
        if end is not None:
            take(match.end(), end, mask_name(norm[match.end() : end]))
    return spans


def _mask_known_number(value: str) -> str:
    digits = _digits(value)
    return mask_id_number(digits) if len(digits) >= 15 else mask_phone(digits)


def mask_text(
    text: str | None, *, names: Iterable[str | None] = (), numbers: Iterable[str | None] = ()
) -> str:
    """Mask every phone, 身份证 number, e-mail address and introduced name in free text.

    ``names`` and ``numbers`` are what the store knows of the citizen (the
    name and numbers the form or the NLU captured, decrypted): they are masked
    wherever they occur, since no pattern can spot every name. ID numbers are
    masked whether or not their check digit is right: a typo in someone's 身份证
    number is still mostly their number. Text outside the masked spans is
    returned exactly as written (full-width punctuation included).
    """
    if not text:
        return ""
    norm, origin = _with_origin(text)
    spans = _spans(norm, [n for n in names if n], [n for n in numbers if n])
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for start, end, replacement in sorted(spans):
        first, last = origin[start], origin[end - 1] + 1
        if first < pos:
            continue
        out.append(text[pos:first])
        out.append(replacement)
        pos = last
    out.append(text[pos:])
    return "".join(out)
