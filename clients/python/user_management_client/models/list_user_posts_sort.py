from typing import Literal

ListUserPostsSort = Literal["-created_at", "-id", "created_at", "id"]

LIST_USER_POSTS_SORT_VALUES: set[ListUserPostsSort] = {
    "-created_at",
    "-id",
    "created_at",
    "id",
}


def check_list_user_posts_sort(value: str) -> ListUserPostsSort:
    if value in LIST_USER_POSTS_SORT_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {LIST_USER_POSTS_SORT_VALUES!r}")
