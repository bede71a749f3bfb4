"""Running the gateway under uvicorn, with a shutdown that does not wait on in-flight generations.

On SIGTERM or Ctrl-C uvicorn stops accepting and waits for open connections. Before it waits, the
gateway's shutdown token fires: every request's model work stops at its next token, streams end with
an in-band 503 error, and the process exits within seconds (`GRACE_S` bounds what is left).
"""

from __future__ import annotations

import gc
from types import FrameType

import uvicorn
from fastapi import FastAPI

from tandemlm.server.state import GatewayState

GRACE_S = 5  # after the shutdown token fired, connections still open this long are closed


class GatewayServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: GatewayState) -> None:
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.state.stop()
        super().handle_exit(sig, frame)


def serve_app(app: FastAPI, *, host: str, port: int, log_level: str) -> None:
    """Serve until SIGTERM/SIGINT; in-flight work is cancelled at once rather than awaited."""
    # uvicorn builds each access-log line before its logger drops it: no access log unless it would be shown
    access_log = log_level.lower() in ("trace", "debug", "info")
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=access_log,
                            timeout_graceful_shutdown=GRACE_S)  # fmt: skip
    # the modules, schemas and routes built so far live as long as the process: keep the collector from walking
    # them again on every full collection (each one a pause of tens of ms with this many objects; ~0.1 ms/request)
    gc.freeze()
    GatewayServer(config, app.state.tandem).run()
