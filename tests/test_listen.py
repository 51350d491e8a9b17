"""One address, one server: a second server on a busy address refuses to start."""

from __future__ import annotations

import pytest

from reelscribe.config import Settings
from server.app import ListenError, ServerApp


async def test_a_busy_address_is_refused(settings: Settings, server: ServerApp) -> None:
    second = ServerApp(settings.model_copy(update={"listen_address": f"127.0.0.1:{server.port}"}))
    with pytest.raises(ListenError, match="in use"):
        await second.start()
