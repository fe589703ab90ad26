from typing import Literal

DeliveryReadState = Literal["failed", "pending", "sent"]

DELIVERY_READ_STATE_VALUES: set[DeliveryReadState] = {
    "failed",
    "pending",
    "sent",
}


def check_delivery_read_state(value: str) -> DeliveryReadState:
    if value in DELIVERY_READ_STATE_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {DELIVERY_READ_STATE_VALUES!r}")
