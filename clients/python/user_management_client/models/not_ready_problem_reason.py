from typing import Literal

NotReadyProblemReason = Literal["behind", "not_migrated", "unreachable"]

NOT_READY_PROBLEM_REASON_VALUES: set[NotReadyProblemReason] = {
    "behind",
    "not_migrated",
    "unreachable",
}


def check_not_ready_problem_reason(value: str) -> NotReadyProblemReason:
    if value in NOT_READY_PROBLEM_REASON_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {NOT_READY_PROBLEM_REASON_VALUES!r}")
