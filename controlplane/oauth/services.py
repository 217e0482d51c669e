"""What the OAuth rules need, and nothing of HTTP: the rules run in process against any store.

The process wiring's Context provides these; unit tests provide them from a store opened in the test.
"""

from __future__ import annotations

from typing import Protocol

from controlplane.keys.manager import KeyManager
from controlplane.oauth.issue import TokenIssuer
from controlplane.secrets import ServerKeys
from controlplane.store.store import Store
from coresdk.config.controlplane import ControlPlaneConfig


class OAuthServices(Protocol):
    @property
    def config(self) -> ControlPlaneConfig: ...
    @property
    def store(self) -> Store: ...
    @property
    def server_keys(self) -> ServerKeys: ...
    @property
    def keys(self) -> KeyManager: ...
    @property
    def issuer(self) -> TokenIssuer: ...
