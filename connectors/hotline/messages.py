"""Short bilingual texts shown to hotline staff (CLI, upload page); citizens never see them.

Kept together so wording is reviewed in one place and code stays free of Chinese literals.
"""

from __future__ import annotations

BAD_JSON = "invalid JSON: {error} / JSON 格式错误"
NOT_OBJECT = "a line must be one JSON object / 每行须为一个 JSON 对象"
MISSING_CALL_ID = "missing call_id / 缺少通话编号 call_id"
BAD_STARTED_AT = "missing or invalid started_at {value!r} (ISO 8601) / 通话开始时间缺失或格式错误"
BAD_TURNS = "turns must be a list of {{speaker, text}} / turns 须为对话轮次列表"
BAD_TURN = "turn {index}: {error} / 第 {index} 轮格式错误"
BAD_SPEAKER = "unknown speaker {speaker!r} / 未知说话人"
BAD_TEXT = "text must be a string / 文本须为字符串"
BAD_FIELD = "{field} must be a string / {field} 须为字符串"
NO_HEADER = "turn outside a call: missing '# call_id started_at caller' header / 缺少通话头行"
NO_PREFIX = "no speaker prefix (市民：/坐席：…): line skipped / 缺少说话人前缀，已跳过该行"
LINE_TOO_LONG = "line longer than {limit} bytes: skipped / 行过长，已跳过"
TURN_TRUNCATED = "a turn longer than {limit} characters was truncated / 对话过长，已截断"
UNDECODABLE = "not valid {encoding}: line skipped / 无法按 {encoding} 解码，已跳过"
UTF16 = "UTF-16 files are not supported, save as UTF-8 or GB18030 / 不支持 UTF-16 编码"
NO_CITIZEN = "no citizen turns: nothing to understand / 无市民发言，未处理"
NLU_FAILED = "language understanding failed: {error} / 语义理解失败"
STORE_FAILED = "ticket store refused the call: {error} / 工单库写入失败"
UNREADABLE = "cannot read the file: {error} / 无法读取文件"
NO_CALLS = "no call could be read / 未读到任何通话"
NO_MODEL = "no trained model: {error}; run `citizenbot train` or pass --model / 没有训练好的模型"

#: the CLI's summary table: (IngestSummary field, label)
SUMMARY_LABELS: tuple[tuple[str, str], ...] = (
    ("calls_read", "calls read / 读取通话"),
    ("tickets_created", "tickets created / 新建工单"),
    ("resolved_contacts", "resolved contacts / 当场解答"),
    ("duplicates_skipped", "duplicates skipped / 重复跳过"),
    ("errors", "errors / 错误"),
    ("warnings", "warnings / 警告"),
)
PROGRESS = "ingesting / 导入中"
CALLS = "{calls} calls / 通"
CALLS_UNIT = "calls / 通"
LOADING_MODEL = "loading the language model (~30 s) / 正在加载语言模型"
MODEL_LOADED = "language model loaded in {seconds:.0f} s / 语言模型已加载"
TICKETS_HEADING = "tickets created / 新建工单 ({count}):"
CONTACTS_HEADING = "resolved contacts / 当场解答 ({count}):"
NOT_DISPATCHED = "待派单"
MORE = "  … and {count} more (--json lists all) / 其余 {count} 条见 --json"
