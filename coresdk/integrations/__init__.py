"""Framework integrations of the Python SDK: FastAPI/Starlette (`fastapi`), aiohttp (`aiohttp`), Flask (`flask`),
audit around handlers (`audit`), and a logging filter that masks PII and secrets (`log_masking`).

Each integration answers refusals through `http.answer`, so a missing scope is the same 403 in every framework.
"""
