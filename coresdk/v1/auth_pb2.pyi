from coresdk.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuthenticateRequest(_message.Message):
    __slots__ = ("token", "audience", "request_id")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    token: str
    audience: str
    request_id: str
    def __init__(self, token: _Optional[str] = ..., audience: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class AuthenticateResult(_message.Message):
    __slots__ = ("request_id", "principal", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    principal: _common_pb2.Principal
    error: _common_pb2.Error
    def __init__(self, request_id: _Optional[str] = ..., principal: _Optional[_Union[_common_pb2.Principal, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.Error, _Mapping]] = ...) -> None: ...

class AuthenticateBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[AuthenticateRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[AuthenticateRequest, _Mapping]]] = ...) -> None: ...

class AuthenticateBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[AuthenticateResult]
    def __init__(self, results: _Optional[_Iterable[_Union[AuthenticateResult, _Mapping]]] = ...) -> None: ...
