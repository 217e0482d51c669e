"""Tenant isolation below the application: PostgreSQL row-level security driven by the verified principal."""
