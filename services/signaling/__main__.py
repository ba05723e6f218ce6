"""`python -m services.signaling`: run the signalling service under uvicorn."""

from __future__ import annotations

import uvicorn

from services.common.logs import setup_logging
from services.signaling.app import uvicorn_options
from services.signaling.settings import SignalingSettings


def main() -> None:
    settings = SignalingSettings()
    setup_logging(settings.log_level, json_lines=settings.log_json, service="signaling")
    uvicorn.run("services.signaling.app:create_app", **uvicorn_options(settings))


if __name__ == "__main__":
    main()
