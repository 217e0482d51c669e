"""The role model shared by the sidecar's decisions and the gateway's start-up checks of its route map.

admin > operator > editor > viewer: a higher role holds every action of the lower ones. An action no role holds
cannot be granted to a person, so a route needing it is a configuration error rather than a silent 403.
"""

from __future__ import annotations

ROLE_ORDER = ("viewer", "editor", "operator", "admin")
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read", "list"}),
    # call: an MCP tool call (resource mcp.tool.<name>), which can do as much as a write
    "editor": frozenset({"read", "list", "create", "write", "update", "call"}),
    "operator": frozenset({"read", "list", "create", "write", "update", "call", "delete", "manage"}),
    "admin": frozenset({"read", "list", "create", "write", "update", "call", "delete", "manage", "admin"}),
}
KNOWN_ACTIONS = frozenset().union(*ROLE_ACTIONS.values())
# Write and delete on an owned resource need the owner, or operator level and above.
OWNED_ACTIONS = frozenset({"write", "update", "delete"})
