"""Reading the agent's turns by cues: answer, promise, hand-over to 110/119/120."""

from __future__ import annotations

import pytest

from connectors.hotline.agent import is_question, read_agent_turn


@pytest.mark.parametrize(
    "text",
    [
        "新生儿可以在出生后三个月内办理医保，带上出生医学证明和户口本到社区服务中心办。",
        "是的阿姨，年满六十五周岁可以免费乘坐市内公交。",
        "这个情况您可以先和楼上住户协商一下。",
    ],
)
def test_an_answer(text: str) -> None:
    turn = read_agent_turn(3, text)
    assert turn.answers and turn.referral is None and turn.emergency is None


@pytest.mark.parametrize(
    "text",
    [
        "您好，12345热线，请讲。",
        "嗯，您说。",
        "可以听清，您请讲。",
        "不客气，祝您生活愉快。",
        "您说的是哪个工地，具体在什么位置？",
        "好的，您贵姓，留个联系电话吧。",
        "这个具体的标准我这边暂时查不到。",
        "大爷您别着急，您住在哪个小区几号楼？",
    ],
)
def test_no_answer(text: str) -> None:
    assert not read_agent_turn(3, text).answers


@pytest.mark.parametrize(
    ("text", "cue"),
    [
        ("好的，我们会转交相关部门处理。", "转交"),
        ("您反映的情况我已经登记了，会派给人社部门核实处理。", "派给"),
        ("这个我帮您记录下来，核实以后给您回电。", "记录下来"),
        ("感谢您的建议，我们会反馈给交警部门。", "反馈给"),
    ],
)
def test_a_promise_to_follow_up(text: str, cue: str) -> None:
    turn = read_agent_turn(3, text)
    assert turn.referral is not None and not turn.answers
    assert cue in text


def test_instructions_and_reports_on_an_earlier_ticket_are_no_promise() -> None:
    # "需要提前一天在社区登记" tells the caller what to do; "网上报名" is no 上报
    assert read_agent_turn(1, "每周六上午收运大件垃圾，需要提前一天在社区登记。").referral is None
    assert read_agent_turn(1, "明年三月在官网网上报名，再按通知去学校验材料。").referral is None
    status = read_agent_turn(1, "您那件事已经交给区城管局，这周内会安排清淤。")
    assert status.referral is None and status.answers


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("请您马上远离车库，我现在帮您转接119。", "119"),
        ("好的，您先别进去，我马上给您转119。", "119"),
        ("请您立即拨打110报警，同时把孩子的照片准备好。", "110"),
        ("您先别挪动他，赶紧拨打120。", "120"),
        ("好的，我马上通知电梯维保单位和119。", "119"),
        ("赶快开窗通风，把人扶到屋外，马上打120。", "120"),
    ],
)
def test_a_hand_over_to_the_emergency_services(text: str, number: str) -> None:
    assert read_agent_turn(1, text).emergency == number


@pytest.mark.parametrize(
    "text",
    [
        "晚上噪音扰民的话，您也可以打110反映。",  # advice, not a hand-over
        "燃气泄漏可以拨打抢修电话，紧急情况直接打119。",  # an answer about the number
        "消防隐患可以马上拨打96119举报。",  # another number
        "急救电话是120，全国都一样。",
    ],
)
def test_mentioning_a_number_is_no_hand_over(text: str) -> None:
    assert read_agent_turn(1, text).emergency is None


def test_questions() -> None:
    assert is_question("停到几点啊？") and is_question("要办个啥卡不?")
    assert is_question("能在外地换吗") and not is_question("我还以为得跑好几趟呢。")
    assert not is_question("路灯坏了半个月了。")


def test_the_act_the_agent_names() -> None:
    assert read_agent_turn(1, "好的，您举报的情况我们会转交卫健部门。").acts == ("report",)
    assert read_agent_turn(1, "感谢您的建议，我们会反馈给园林部门。").acts == ("suggestion",)
    assert read_agent_turn(1, "您是要投诉吗？").acts == ()  # agents ask every caller


def test_an_answer_that_sends_the_caller_elsewhere_to_complain() -> None:
    assert read_agent_turn(1, "占道烧烤归城管管，您可以直接拨打城管热线12319反映。").redirects
    assert not read_agent_turn(1, "明天上午九点到下午五点管网维修停水。").redirects
