from typing import Literal

ListPostsSort = Literal["-created_at", "-id", "created_at", "id"]

LIST_POSTS_SORT_VALUES: set[ListPostsSort] = {
    "-created_at",
    "-id",
    "created_at",
    "id",
}


def check_list_posts_sort(value: str) -> ListPostsSort:
    if value in LIST_POSTS_SORT_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {LIST_POSTS_SORT_VALUES!r}")
