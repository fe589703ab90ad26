from typing import Literal

ProblemStatus = Literal[401, 404, 406, 408, 412, 413, 415, 429, 500, 503]

PROBLEM_STATUS_VALUES: set[ProblemStatus] = {
    401,
    404,
    406,
    408,
    412,
    413,
    415,
    429,
    500,
    503,
}


def check_problem_status(value: int) -> ProblemStatus:
    if value in PROBLEM_STATUS_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {PROBLEM_STATUS_VALUES!r}")
