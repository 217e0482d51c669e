"""Building blocks for putting MCP (Model Context Protocol) tool calls under CoreSDK policy.

- `jsonrpc`: read and validate a JSON-RPC 2.0 body, bounded, before anything is forwarded;
- `sql_guard`: classify the SQL a database tool is asked to run, for Rego (`input.context.sql`);
- `manifest`: Ed25519-signed tool manifests and the trust store that checks a server's tools against them;
- `authz`: the authorization request (resource, action, context) for one tool call.

Nothing here talks to the network: the gateway composes these pieces at its edge.
"""
