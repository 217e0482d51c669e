# CoreSDK custom authorization rules (Rego v1), evaluated after the built-in checks have allowed a request.
#
# The sidecar queries data.coresdk.authz (CORESDK_POLICY_QUERY) and expects an object with a boolean `allow` and,
# when denied, a `reason` (UPPER_SNAKE). These rules can only refuse more than the built-in roles, scopes, tenant
# and ownership checks; they can never grant a permission a token does not hold.
package coresdk.authz

import rego.v1

default allow := false

allow if count(refusals) == 0

# One deterministic reason when several rules refuse.
reason := min(refusals) if count(refusals) > 0

# A suspended tenant can still read, but changes nothing.
refusals contains "TENANT_SUSPENDED" if {
	input.tenant_id in object.get(data, "suspended_tenants", [])
	not input.action in {"read", "list"}
}

# Deleting needs a token that proves a second factor (RFC 8176 amr values).
refusals contains "MFA_REQUIRED" if {
	input.action == "delete"
	not "mfa" in object.get(input.principal.claims, "amr", [])
}

# Machine clients listed as read-only never write, whatever scopes they were given.
refusals contains "CLIENT_READ_ONLY" if {
	input.principal.client_id in object.get(data, "read_only_clients", [])
	not input.action in {"read", "list"}
}

# MCP tool calls (resource `mcp.tool.<name>`, action `call`): the gateway puts the tool's name, arguments and
# manifest tags in the context, and for a tool tagged `sql` the parsed statement (coresdk.mcp.sql_guard) in
# context.sql. Such a tool runs only one statement, and only one that reads; a missing classification is a refusal.
refusals contains "SQL_NOT_READ_ONLY" if {
	mcp_tool_call
	"sql" in object.get(input.context, "tags", [])
	not sql_single_read_only
}

# Tables no database tool reads, whatever the statement (data.sql_denied_tables, names as PostgreSQL resolves them).
refusals contains "SQL_TABLE_DENIED" if {
	mcp_tool_call
	some table in object.get(object.get(input.context, "sql", {}), "tables", [])
	table in object.get(data, "sql_denied_tables", [])
}

mcp_tool_call if {
	startswith(input.resource, "mcp.tool.")
	input.action == "call"
}

sql_single_read_only if {
	input.context.sql.read_only == true
	input.context.sql.statements == 1
}
