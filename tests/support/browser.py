"""Helpers for the console's browser tests: Debian's Chromium, signed-in tabs, screenshots."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from server.app import ServerApp
from tests.support.tokens import token_for

#: Debian's chromium (apt); Playwright's own browser download is not used.
CHROMIUM = Path("/usr/bin/chromium")
#: A folder to save screenshots of the main views in (how docs/img/ was made).
SHOTS = os.environ.get("REELSCRIBE_CONSOLE_SHOTS", "")


def web_url(server: ServerApp) -> str:
    """The gRPC-Web listener that serves the console."""
    return f"http://{server.web_address}"


async def signed_in(
    browser: Browser, server: ServerApp, user: str, *, width: int = 1280, height: int = 900
) -> Page:
    """A new tab signed in as `user` by the `#token=` address `reelscribe up` prints."""
    context = await browser.new_context(
        accept_downloads=True, viewport={"width": width, "height": height}
    )
    page = await context.new_page()
    await page.goto(f"{web_url(server)}/#token={token_for(user)}")
    await expect(page.locator("#drop")).to_be_visible()
    # The token left the address bar and stays with the tab.
    assert "token" not in page.url
    return page


async def shot(page: Page, name: str) -> None:
    """Save a screenshot named `name` when REELSCRIBE_CONSOLE_SHOTS is set."""
    if SHOTS:
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=False)


async def event_seqs(page: Page) -> list[int]:
    """Sequence numbers of the events in the job page's log, in page order."""
    return await page.eval_on_selector_all(
        "#events li", "els => els.map(e => Number(e.dataset.seq))"
    )
