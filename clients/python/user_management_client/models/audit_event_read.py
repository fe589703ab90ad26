from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.audit_actor import AuditActor
    from ..models.audit_event_read_changes import AuditEventReadChanges
    from ..models.audit_resource import AuditResource


T = TypeVar("T", bound="AuditEventRead")


@_attrs_define
class AuditEventRead:
    """One change event, as recorded in the change's own transaction.

    Attributes:
        actor (AuditActor): Who made the change: an API key (its prefix and name), a user (their id, and the
            session), the command line (the operating system's user name), or the system itself (the
            worker disabling a webhook endpoint its receiver gave up on).
        changes (AuditEventReadChanges): Each changed field as [before, after]; secrets never appear.
        hash_ (None | str): SHA-256 over the event and its predecessor's hash.
        id (int):
        occurred_at (datetime.datetime):
        request_id (None | str):
        resource (AuditResource): What was changed: a type and its id (none for an import, which changes many).
        seq (int | None): Place in the hash chain; null until sealed.
        type_ (str): <resource>.<verb>, such as user.created.
    """

    actor: AuditActor
    changes: AuditEventReadChanges
    hash_: None | str
    id: int
    occurred_at: datetime.datetime
    request_id: None | str
    resource: AuditResource
    seq: int | None
    type_: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        actor = self.actor.to_dict()

        changes = self.changes.to_dict()

        hash_: None | str
        hash_ = self.hash_

        id = self.id

        occurred_at = self.occurred_at.isoformat()

        request_id: None | str
        request_id = self.request_id

        resource = self.resource.to_dict()

        seq: int | None
        seq = self.seq

        type_ = self.type_

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "actor": actor,
                "changes": changes,
                "hash": hash_,
                "id": id,
                "occurred_at": occurred_at,
                "request_id": request_id,
                "resource": resource,
                "seq": seq,
                "type": type_,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.audit_actor import AuditActor  # noqa: PLC0415
        from ..models.audit_event_read_changes import AuditEventReadChanges  # noqa: PLC0415
        from ..models.audit_resource import AuditResource  # noqa: PLC0415

        d = dict(src_dict)
        actor = AuditActor.from_dict(d.pop("actor"))

        changes = AuditEventReadChanges.from_dict(d.pop("changes"))

        def _parse_hash_(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        hash_ = _parse_hash_(d.pop("hash"))

        id = d.pop("id")

        occurred_at = datetime.datetime.fromisoformat(d.pop("occurred_at"))

        def _parse_request_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        request_id = _parse_request_id(d.pop("request_id"))

        resource = AuditResource.from_dict(d.pop("resource"))

        def _parse_seq(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        seq = _parse_seq(d.pop("seq"))

        type_ = d.pop("type")

        audit_event_read = cls(
            actor=actor,
            changes=changes,
            hash_=hash_,
            id=id,
            occurred_at=occurred_at,
            request_id=request_id,
            resource=resource,
            seq=seq,
            type_=type_,
        )

        audit_event_read.additional_properties = d
        return audit_event_read

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
