from coresdk.v1 import common_pb2 as _common_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuthorizeRequest(_message.Message):
    __slots__ = ("principal", "token", "resource", "action", "tenant_id", "resource_owner", "context", "request_id", "tenant_from_token")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_OWNER_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FROM_TOKEN_FIELD_NUMBER: _ClassVar[int]
    principal: _common_pb2.Principal
    token: str
    resource: str
    action: str
    tenant_id: str
    resource_owner: str
    context: _struct_pb2.Struct
    request_id: str
    tenant_from_token: bool
    def __init__(self, principal: _Optional[_Union[_common_pb2.Principal, _Mapping]] = ..., token: _Optional[str] = ..., resource: _Optional[str] = ..., action: _Optional[str] = ..., tenant_id: _Optional[str] = ..., resource_owner: _Optional[str] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., request_id: _Optional[str] = ..., tenant_from_token: _Optional[bool] = ...) -> None: ...

class AuthorizeResponse(_message.Message):
    __slots__ = ("allowed", "reason", "decision_id", "matched_rules", "principal")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    MATCHED_RULES_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reason: str
    decision_id: str
    matched_rules: _containers.RepeatedScalarFieldContainer[str]
    principal: _common_pb2.Principal
    def __init__(self, allowed: _Optional[bool] = ..., reason: _Optional[str] = ..., decision_id: _Optional[str] = ..., matched_rules: _Optional[_Iterable[str]] = ..., principal: _Optional[_Union[_common_pb2.Principal, _Mapping]] = ...) -> None: ...
