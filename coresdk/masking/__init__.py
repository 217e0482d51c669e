"""PII and secret masking shared by the audit path, the gateway logs and the sidecar's MaskingService."""
