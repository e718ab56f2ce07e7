"""End to end in headless Chromium: click Generate as a person would and hear chunks arrive."""
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_studio():
    """A fresh studio server on a free port; yields its URL once it answers."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.headless", "true", "--server.address", "127.0.0.1"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.3)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture(scope="module")
def studio_url():
    with running_studio() as url:
        yield url


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=[
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            "--autoplay-policy=no-user-gesture-required"])
        yield context.new_page()
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


PLAYER = "() => Object.values(window.__wavenetPlayers || {})"


def test_clicking_generate_streams_the_take_into_a_running_audio_player(studio_url, browser_page):
    page = browser_page
    page.goto(studio_url)
    generate = page.get_by_role("button", name="▶ Generate")
    generate.wait_for(timeout=60_000)
    generate.click()
    page.locator(".wavenet-status").wait_for(timeout=60_000)
    page.wait_for_function(f"() => {{ const p = ({PLAYER})()[0]; return p && p.done; }}", timeout=120_000)
    player = page.evaluate(f"() => {{ const p = ({PLAYER})()[0]; return {{chunks: p.chunks, bytes: p.bytes,"
                           " error: p.error, gaps: p.gaps, schedule: p.schedule, state: window.__wavenetAudio.state,"
                           " bars: p.peaks.length, drawn: p.peaks.reduce((sum, bar) => sum + bar[0], 0)}; }")
    assert player["error"] is None
    assert player["bytes"] == 4 * 16000 * 2  # the default 4 s take, every sample, as int16, in order
    assert player["drawn"] == 4 * 16000 and player["bars"] >= 400  # the live waveform: every sample, ~10 ms bars
    assert player["chunks"] >= 2 and len(player["schedule"]) == player["chunks"]
    assert player["state"] == "running"
    # Each chunk starts where the one before it ends, except where a late chunk forced a re-anchor.
    joins = [abs(start - (prev_start + prev_length)) < 1e-6
             for (prev_start, prev_length), (start, _) in zip(player["schedule"], player["schedule"][1:])]
    assert joins.count(False) == player["gaps"] <= 1, player
    page.get_by_text("Your takes").wait_for(timeout=60_000)
    page.locator("audio").first.wait_for(state="attached", timeout=60_000)  # the finished take, to replay
    page.get_by_role("button", name="⬇ WAV").first.wait_for(timeout=60_000)  # the download is offered
    # Once everything has played, the player says so and Stop playback goes.
    page.wait_for_function(f"() => ({PLAYER})().every(p => p.done && p.sources.length === 0)", timeout=60_000)
    page.get_by_role("button", name="Stop playback").wait_for(state="detached", timeout=10_000)


def generate(page, studio_url: str, seconds: float) -> None:
    """Open the studio and press Generate for a take of `seconds` (the slider moves in 0.5 s steps from 4 s)."""
    page.goto(studio_url)
    page.get_by_role("button", name="▶ Generate").wait_for(timeout=60_000)
    page.get_by_role("slider", name="Length (seconds)").focus()
    for _ in range(int((seconds - 4) / 0.5)):
        page.keyboard.press("ArrowRight")
    page.get_by_role("button", name="▶ Generate").click()


def test_stop_keeps_the_partial_take(studio_url, browser_page):
    page = browser_page
    generate(page, studio_url, 24)
    page.wait_for_function(f"() => {{ const p = ({PLAYER})()[0]; return p && p.chunks >= 3; }}", timeout=120_000)
    page.get_by_text(re.compile(r"Playing as it is sampled · [0-9.]+ of 24\.0 s received")).wait_for(timeout=10_000)
    page.get_by_role("button", name="Stop sampling").click()
    page.get_by_text("stopped early").first.wait_for(timeout=60_000)
    page.locator("audio").first.wait_for(state="attached", timeout=60_000)
    page.get_by_role("button", name="⬇ WAV").first.wait_for(timeout=60_000)


def test_a_take_still_playing_after_sampling_keeps_its_player_until_stop_playback(studio_url, browser_page):
    page = browser_page
    generate(page, studio_url, 8)
    # Holding the audio clock makes "sampled faster than played" independent of this machine's speed.
    page.wait_for_function(f"() => {{ const p = ({PLAYER})()[0]; return p && p.chunks >= 1; }}", timeout=120_000)
    page.evaluate("() => window.__wavenetAudio.suspend()")
    page.get_by_text("Your takes").wait_for(timeout=120_000)  # sampled: the take is in the list
    stop = page.get_by_role("button", name="Stop playback")
    stop.wait_for(timeout=10_000)  # ... while its audio is still to play
    time.sleep(9)  # past the server's own estimate of the playback's end (the held clock plays nothing)
    assert stop.is_visible() and page.evaluate(f"() => ({PLAYER})()[0].sources.length") > 0
    stop.click()
    page.wait_for_function(f"() => ({PLAYER})().every(p => p.stopped && p.sources.length === 0)", timeout=30_000)
    stop.wait_for(state="detached", timeout=30_000)


def test_closing_the_tab_stops_its_take_soon_after(studio_url, browser_page):
    page = browser_page
    generate(page, studio_url, 60)
    page.wait_for_function(f"() => {{ const p = ({PLAYER})()[0]; return p && p.chunks >= 1; }}", timeout=120_000)
    route = page.evaluate("() => Object.keys(window.__wavenetPlayers)[0]")
    page.close()
    with urllib.request.urlopen(urljoin(studio_url, route), timeout=180) as response:
        sampled_seconds = len(response.read()) / 2 / 16000  # the route ends when the take does
    assert 0 < sampled_seconds < 50, sampled_seconds  # on its own the take would have run to 60 s


def test_a_take_keeps_sampling_while_its_session_visits_another_page(studio_url, browser_page):
    page = browser_page
    generate(page, studio_url, 30)
    page.wait_for_function(f"() => {{ const p = ({PLAYER})()[0]; return p && p.chunks >= 1; }}", timeout=120_000)
    page.get_by_test_id("stSidebarNav").get_by_text("Training monitor").click()
    page.get_by_text("Start a training run").first.wait_for(timeout=60_000)
    time.sleep(7)  # longer than a closed tab's grace
    page.get_by_test_id("stSidebarNav").get_by_text("Generate").click()
    page.get_by_text("Your takes").wait_for(timeout=120_000)
    assert page.get_by_text("stopped early").count() == 0


def test_a_reload_while_sampling_keeps_the_take_and_the_takes_before_it(studio_url, browser_page):
    page = browser_page
    generate(page, studio_url, 4)
    page.get_by_text("Your takes").wait_for(timeout=120_000)
    generate(page, page.url, 24)  # the same address: the same visitor
    page.wait_for_function(f"() => {{ const p = ({PLAYER})()[0]; return p && p.chunks >= 1; }}", timeout=120_000)
    assert "studio=" in page.url
    page.reload()  # while the second take is sampled
    page.get_by_role("button", name="Stop sampling").wait_for(timeout=60_000)  # it carries on here
    assert page.get_by_test_id("stSliderThumbValue").first.inner_text() == "24.00"  # the controls as left
    page.wait_for_function(f"() => {{ const p = ({PLAYER})()[0]; return p && p.chunks >= 1; }}", timeout=120_000)
    page.get_by_role("button", name="Stop sampling").wait_for(state="detached", timeout=120_000)
    page.get_by_test_id("stExpander").nth(1).wait_for(timeout=60_000)  # both takes are listed
    assert page.get_by_test_id("stExpander").count() == 2
    assert page.get_by_text("stopped early").count() == 0


def test_a_bookmarked_page_opens_with_the_studio_navigation_on_a_fresh_server(browser_page):
    page = browser_page
    with running_studio() as url:  # the bookmark is the server's very first request
        page.goto(f"{url}/training")
        page.get_by_text("Start a training run").first.wait_for(timeout=60_000)
        navigation = page.get_by_test_id("stSidebarNav").inner_text(timeout=30_000)
    assert "Training monitor" in navigation and "Continue a clip" in navigation, navigation
    assert "navigation" not in navigation.lower(), navigation
