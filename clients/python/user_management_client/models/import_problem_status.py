from typing import Literal

ImportProblemStatus = Literal[409, 422]

IMPORT_PROBLEM_STATUS_VALUES: set[ImportProblemStatus] = {
    409,
    422,
}


def check_import_problem_status(value: int) -> ImportProblemStatus:
    if value in IMPORT_PROBLEM_STATUS_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {IMPORT_PROBLEM_STATUS_VALUES!r}")
