"""Chinese words the hotline ingester recognises: format data, kept in one table.

Call systems label speakers in their exports (市民：…, 坐席：…); citizens and
agents use a few set phrases that say what a call was about. These are data, not
logic: add a new export's label or a local phrasing here and nowhere else.
"""

from __future__ import annotations

#: Speaker labels of transcript exports (text format prefixes, and accepted as the JSON
#: ``speaker`` too) → our two speakers.
SPEAKER_LABELS: dict[str, str] = {
    "citizen": "citizen",
    "市民": "citizen",
    "来电人": "citizen",
    "来电者": "citizen",
    "客户": "citizen",
    "agent": "agent",
    "坐席": "agent",
    "话务员": "agent",
    "客服": "agent",
}

#: The colon after a speaker label: half- or full-width.
COLONS = ":："

#: Words that, said by the citizen, mark the act when the NLU labels a turn only as
#: ``inform``/fallback (transcribed speech is long and loose; the word itself is plain).
ACT_CUES: dict[str, str] = {
    "投诉": "complaint",
    "举报": "report",
    "求助": "help",
    "帮帮忙": "help",
    "建议": "suggestion",
}

#: Agent phrases promising that someone will follow up: an inquiry the agent could not
#: settle on the call becomes a ticket (转办) instead of a resolved contact.
REFERRAL_CUES: tuple[str, ...] = (
    "转交",
    "转办",
    "转给",
    "派单",
    "工单",
    "登记下来",
    "记录下来",
    "帮您记录",
    "相关部门",
    "回复您",
    "给您回电",
    "回电",
)

#: Sentence ends for the extractive summary.
SENTENCE_ENDS = "。！？!?；;…\n"

#: Spoken fillers that never make a summary sentence on their own.
FILLERS = frozenset(
    {"嗯", "啊", "喂", "哦", "呃", "对", "是", "好", "好的", "是的", "对的", "你好", "您好", "谢谢"}
)

#: Openings stripped from the front of a summary sentence (你好，我要投诉… → 我要投诉…).
OPENINGS: tuple[str, ...] = ("你好", "您好", "喂", "嗯", "啊", "那个", "就是", "同志")
