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

#: Words that, said by the citizen outside a question, name the act plainly (transcribed
#: speech is long and loose; the word itself is not): each counts as a vote for that act.
ACT_CUES: dict[str, str] = {
    "投诉": "complaint",
    "举报": "report",
    "求助": "help",
    "帮帮忙": "help",
    "建议": "suggestion",
}

#: The same words said by the agent when it sums the call up (您举报的情况…, 感谢您的建议):
#: they help choose the kind of a ticket, never whether there is one.
AGENT_ACT_CUES: dict[str, str] = {
    "您举报": "report",
    "举报的": "report",
    "您投诉": "complaint",
    "投诉的": "complaint",
    "您的建议": "suggestion",
    "建议我们": "suggestion",
    "您求助": "help",
}

#: Agent phrases promising that someone will follow up (转办): the call becomes a ticket,
#: whatever the citizen said. Promises about the future only: an agent who reports the
#: state of an earlier ticket ("已经交给城管局了") promises nothing new.
REFERRAL_CUES: tuple[str, ...] = (
    "转交",
    "转办",
    "转给",
    "派单",
    "派给",
    "帮您登记",
    "给您登记",
    "已经登记",
    "登记了",
    "登记下来",
    "记录下来",
    "帮您记录",
    "给您记录",
    "反馈给",
    "反映给",
    "核实后",
    "核实以后",
    "回复您",
    "给您回电",
    "回电",
)

#: Agent phrases that send the caller elsewhere with a grievance (您可以打12319反映):
#: a question the model reads as a case, answered this way, was a grievance.
REDIRECT_CUES: tuple[str, ...] = ("反映", "投诉", "举报")

#: Agent phrases that say the question was not answered (the agent could not tell).
CANNOT_ANSWER_CUES: tuple[str, ...] = (
    "查不到",
    "不清楚",
    "不太清楚",
    "不了解",
    "不太了解",
    "答复不了",
    "回答不了",
    "无法答复",
    "无法回答",
    "没法回答",
    "不好说",
    "不确定",
)

#: Agent phrases that collect a case's details (where, who, how to reach): an agent
#: turn made of these is intake, not an answer.
INTAKE_CUES: tuple[str, ...] = (
    "具体位置",
    "具体地址",
    "详细地址",
    "什么位置",
    "哪个位置",
    "哪个小区",
    "哪个村",
    "几号楼",
    "贵姓",
    "怎么称呼",
    "联系电话",
    "联系方式",
    "留个电话",
)

#: Courtesy and holding phrases of agents: removed before judging whether an agent turn
#: says anything (您好，请讲 / 嗯，您说 / 不客气，再见 are no answer).
HOLDING_PHRASES: tuple[str, ...] = (
    "这里是12345市民服务热线",
    "12345市民服务热线",
    "12345市民热线",
    "12345热线",
    "市民服务热线",
    "12345",
    "很高兴为您服务",
    "请问有什么可以帮您",
    "有什么可以帮您",
    "您请讲",
    "请讲",
    "您请说",
    "您说",
    "请说",
    "可以听清",
    "听得清",
    "听得到",
    "请稍等",
    "稍等",
    "不客气",
    "不麻烦",
    "再见",
    "祝您生活愉快",
    "感谢您的来电",
    "感谢来电",
    "您好",
    "你好",
    "好的",
    "嗯",
    "喂",
    "是的",
    "在的",
)

#: Emergency numbers: an agent who transfers the call to one, or tells the caller to
#: ring one at once, was handling danger to life (whatever the intent model read).
EMERGENCY_NUMBERS: tuple[str, ...] = ("110", "119", "120")
#: … transferred by the agent: 转接119 / 给您转110 / 通知了120
TRANSFER_WORDS: tuple[str, ...] = ("转接", "转到", "转", "接通", "通知")
#: … or the caller told to ring it now: 立即拨打119 / 赶紧打120 (not "也可以打110")
URGENCY_WORDS: tuple[str, ...] = ("马上", "立即", "立刻", "赶紧", "赶快", "现在就")
CALL_WORDS: tuple[str, ...] = ("拨打", "打", "报警", "报")

#: Citizen phrases that acknowledge an answer (明白了、那就好): after the agent answered,
#: a turn saying one of these and nothing new is no new matter, whatever its intent.
ACK_CUES: tuple[str, ...] = (
    "明白了",
    "知道了",
    "清楚了",
    "懂了",
    "晓得了",
    "记下了",
    "记住了",
    "那就好",
    "太好了",
    "原来是这样",
    "这样啊",
    "好嘞",
)
#: … unless the turn opens a new matter or objects (还有、另外、但是 …)
NEW_MATTER_CUES: tuple[str, ...] = (
    "还有",
    "另外",
    "再说个",
    "再反映",
    "再问",
    "但是",
    "可是",
    "不过",
)

#: Citizen phrases that announce a question (我想问下…): a question saying one is an
#: inquiry, however much the model thinks its long explanation sounds like a complaint.
ASK_CUES: tuple[str, ...] = (
    "请问",
    "问一下",
    "问下",
    "问问",
    "问一问",
    "想咨询",
    "咨询一下",
    "咨询下",
    "想了解",
    "打听",
)

#: Sentence-final particles of a question when the transcriber wrote no question mark
#: (not 呢: "我还以为得跑好几趟呢" states).
QUESTION_PARTICLES = "吗么"

#: Sentence ends for the extractive summary.
SENTENCE_ENDS = "。！？!?；;…\n"

#: Spoken fillers that never make a summary sentence on their own.
FILLERS = frozenset(
    {"嗯", "啊", "喂", "哦", "呃", "对", "是", "好", "好的", "是的", "对的", "你好", "您好", "谢谢"}
)

#: Openings of a phone turn (你好，我要投诉… → 我要投诉…): stripped before a turn is parsed
#: (the model reads "你好，我想问…" as a greeting) and from the front of a summary sentence.
OPENINGS: tuple[str, ...] = (
    "你好",
    "您好",
    "喂",
    "嗯",
    "啊",
    "哎",
    "诶",
    "那个",
    "就是",
    "同志",
)
