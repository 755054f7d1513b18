"""Short bilingual error texts shown to staff (console, CLI); citizens never see them.

Kept together so wording is reviewed in one place and code stays free of
Chinese literals.
"""

from __future__ import annotations

NOT_FOUND = "ticket {number} not found / 未找到工单 {number}"
ILLEGAL = "cannot {action} a ticket that is {status} / 当前状态（{status}）不允许{action}"
ROLE_DENIED = "role {role} may not {action} / 角色 {role} 无权{action}"
OTHER_DEPARTMENT = (
    "{actor} of {actor_department} may not act on a ticket of {department} "
    "/ 不能处理其他部门（{department}）的工单"
)
CONFLICT = (
    "ticket {number} was changed by someone else (version {expected} -> {actual}); reload "
    "/ 工单已被他人修改，请刷新后重试"
)
UNKNOWN_DEPARTMENT = "unknown department {department} / 未知部门 {department}"
REASON_REQUIRED = "a reason is required to {action} / {action}须填写理由"
BAD_KIND = "unknown ticket kind {kind} / 未知工单类型 {kind}"
BAD_SCORE = "score must be 1..5 (or 0/None: not given), got {score} / 评分须为 1-5"
MERGE_SELF = "cannot merge {number} into itself / 不能合并到自身"
MERGE_TARGET = "cannot merge into {into}: it is {status} / 目标工单状态为 {status}，不能合并"
EMPTY_TEXT = "text must not be empty / 内容不能为空"
NOT_PAUSED = "the SLA clock of {number} is not paused / 工单 {number} 未暂停计时"
ALREADY_PAUSED = "the SLA clock of {number} is already paused / 工单 {number} 已暂停计时"
NOT_OWNER = "a citizen may only act on their own tickets / 只能操作本人的工单"
CLAIM_REFUSED = "the phone number does not match ticket {number} / 手机号与工单 {number} 不符"
CLAIM_LOCKED = "too many wrong numbers for ticket {number} / 工单 {number} 核验次数过多"
#: what a purged ticket's summary reads (its text was removed after the retention period)
PURGED_TEXT = "（已超过保存期限，内容已清除）"
