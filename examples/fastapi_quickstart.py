from fastapi import FastAPI, Security

from coresdk.client import Principal
from coresdk.integrations.fastapi import protect, require

app = FastAPI()
protect(app)  # the sidecar client (CORESDK_SIDECAR_ADDR, CORESDK_TLS_*), refusals as RFC 6750 JSON


@app.get("/orders")
async def orders(principal: Principal = Security(require("orders:read"))) -> dict[str, str]:
    return {"user": principal.subject, "tenant": principal.tenant_id}
