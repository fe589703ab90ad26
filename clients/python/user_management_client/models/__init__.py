"""Contains all the data models used in inputs/outputs"""

from .accepted import Accepted
from .attempt_read import AttemptRead
from .audit_actor import AuditActor
from .audit_actor_kind import AuditActorKind
from .audit_event_page import AuditEventPage
from .audit_event_read import AuditEventRead
from .audit_event_read_changes import AuditEventReadChanges
from .audit_resource import AuditResource
from .author_read import AuthorRead
from .bad_request_problem import BadRequestProblem
from .conflict_problem import ConflictProblem
from .delivery_page import DeliveryPage
from .delivery_read import DeliveryRead
from .delivery_read_state import DeliveryReadState
from .email_verification_confirm import EmailVerificationConfirm
from .forbidden_problem import ForbiddenProblem
from .group_create import GroupCreate
from .group_create_scopes_item import GroupCreateScopesItem
from .group_page import GroupPage
from .group_read import GroupRead
from .group_update import GroupUpdate
from .group_update_scopes_item import GroupUpdateScopesItem
from .import_problem import ImportProblem
from .import_problem_status import ImportProblemStatus
from .import_result import ImportResult
from .invitation_accept import InvitationAccept
from .key_who_am_i import KeyWhoAmI
from .line_problem import LineProblem
from .list_audit_events_actor_kind import ListAuditEventsActorKind
from .list_audit_events_sort import ListAuditEventsSort
from .list_mail_messages_state import ListMailMessagesState
from .list_posts_sort import ListPostsSort
from .list_user_posts_sort import ListUserPostsSort
from .list_users_sort import ListUsersSort
from .list_webhook_deliveries_state import ListWebhookDeliveriesState
from .mail_message_read import MailMessageRead
from .mail_message_read_state import MailMessageReadState
from .me_update import MeUpdate
from .not_ready_problem import NotReadyProblem
from .not_ready_problem_reason import NotReadyProblemReason
from .page_mail_message_read import PageMailMessageRead
from .page_session_read import PageSessionRead
from .password_change import PasswordChange
from .password_reset_confirm import PasswordResetConfirm
from .password_reset_request import PasswordResetRequest
from .password_set import PasswordSet
from .post_create import PostCreate
from .post_page import PostPage
from .post_read import PostRead
from .post_update import PostUpdate
from .problem import Problem
from .problem_status import ProblemStatus
from .session_create import SessionCreate
from .session_read import SessionRead
from .session_refresh import SessionRefresh
from .signup_create import SignupCreate
from .status import Status
from .tokens import Tokens
from .user_create import UserCreate
from .user_page import UserPage
from .user_read import UserRead
from .user_update import UserUpdate
from .user_who_am_i import UserWhoAmI
from .validation_error_item import ValidationErrorItem
from .validation_problem import ValidationProblem
from .webhook_create import WebhookCreate
from .webhook_create_events_item import WebhookCreateEventsItem
from .webhook_page import WebhookPage
from .webhook_payload import WebhookPayload
from .webhook_payload_type import WebhookPayloadType
from .webhook_read import WebhookRead
from .webhook_update import WebhookUpdate
from .webhook_update_events_item import WebhookUpdateEventsItem
from .webhook_with_secret import WebhookWithSecret

__all__ = (
    "Accepted",
    "AttemptRead",
    "AuditActor",
    "AuditActorKind",
    "AuditEventPage",
    "AuditEventRead",
    "AuditEventReadChanges",
    "AuditResource",
    "AuthorRead",
    "BadRequestProblem",
    "ConflictProblem",
    "DeliveryPage",
    "DeliveryRead",
    "DeliveryReadState",
    "EmailVerificationConfirm",
    "ForbiddenProblem",
    "GroupCreate",
    "GroupCreateScopesItem",
    "GroupPage",
    "GroupRead",
    "GroupUpdate",
    "GroupUpdateScopesItem",
    "ImportProblem",
    "ImportProblemStatus",
    "ImportResult",
    "InvitationAccept",
    "KeyWhoAmI",
    "LineProblem",
    "ListAuditEventsActorKind",
    "ListAuditEventsSort",
    "ListMailMessagesState",
    "ListPostsSort",
    "ListUserPostsSort",
    "ListUsersSort",
    "ListWebhookDeliveriesState",
    "MailMessageRead",
    "MailMessageReadState",
    "MeUpdate",
    "NotReadyProblem",
    "NotReadyProblemReason",
    "PageMailMessageRead",
    "PageSessionRead",
    "PasswordChange",
    "PasswordResetConfirm",
    "PasswordResetRequest",
    "PasswordSet",
    "PostCreate",
    "PostPage",
    "PostRead",
    "PostUpdate",
    "Problem",
    "ProblemStatus",
    "SessionCreate",
    "SessionRead",
    "SessionRefresh",
    "SignupCreate",
    "Status",
    "Tokens",
    "UserCreate",
    "UserPage",
    "UserRead",
    "UserUpdate",
    "UserWhoAmI",
    "ValidationErrorItem",
    "ValidationProblem",
    "WebhookCreate",
    "WebhookCreateEventsItem",
    "WebhookPage",
    "WebhookPayload",
    "WebhookPayloadType",
    "WebhookRead",
    "WebhookUpdate",
    "WebhookUpdateEventsItem",
    "WebhookWithSecret",
)
