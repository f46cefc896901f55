"""Open the plan's map.html in real headless Chromium: it draws, and no JavaScript fails.

Needs Debian's ``chromium`` (``make test`` installs it when it can); without it the
tests are skipped with that reason. The page is fully offline (Leaflet is inlined),
so what is checked here is the page itself: the OpenStreetMap background tiles cannot
load on a machine without internet and are not needed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from _plan_data import small_plan

CHROMIUM = next(
    (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p),
    None,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless Chromium is not installed (make test installs Debian's 'chromium' "
        "package where apt is available); the map was NOT opened in a browser",
    ),
]

# Any uncaught error or rejected promise becomes an element the DOM dump shows.
_ERROR_HOOK = """<script>
function __gridoptError(msg) {
  var d = document.createElement('div'); d.className = 'gridopt-js-error';
  d.textContent = String(msg);
  (document.body || document.documentElement).appendChild(d);
}
window.addEventListener('error', function (e) { __gridoptError(e.message); });
window.addEventListener('unhandledrejection', function (e) { __gridoptError(e.reason); });
</script>"""


def _chromium(url: str, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp / 'profile'}",
        "--window-size=1200,900",
        "--virtual-time-budget=5000",
        *extra,
        url,
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=180, check=False)


def _dom(html: Path, tmp: Path) -> str:
    """The DOM after the page's scripts ran, with the error hook put first in <head>."""
    hooked = html.with_name("hooked_" + html.name)
    text = html.read_text(encoding="utf-8")
    hooked.write_text(text.replace("<head>", "<head>" + _ERROR_HOOK, 1), encoding="utf-8")
    result = _chromium(hooked.as_uri(), tmp, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    return small_plan().to_file(tmp_path_factory.mktemp("browser") / "plan")


def _body(dom: str) -> str:
    """The DOM after <head> (the inlined Leaflet CSS/JS and the hook itself name classes too)."""
    return dom.split("</head>", 1)[-1]


def test_map_draws_layers_without_javascript_errors(written, tmp_path):
    body = _body(_dom(written / "map.html", tmp_path))
    assert 'class="gridopt-js-error"' not in body, body[-3000:]
    assert "leaflet-container" in body  # Leaflet ran and took the map div
    control = body.split("leaflet-control-layers", 1)[-1]
    for name in ("Grids", "Buildings", "Walking catchments", "Service stations"):
        assert name in control, name
    # prefer_canvas: the vector layers are drawn into a canvas in the overlay pane.
    overlay = body.split('class="leaflet-pane leaflet-overlay-pane"', 1)[-1][:500]
    assert "<canvas" in overlay, overlay
    assert 'id="gridopt-legend"' in body


def test_screenshot_is_not_blank(written, tmp_path):
    png = tmp_path / "map.png"
    result = _chromium(written.joinpath("map.html").as_uri(), tmp_path, f"--screenshot={png}")
    assert result.returncode == 0 and png.exists(), result.stderr[-2000:]
    img = matplotlib.image.imread(png)[..., :3]
    assert img.shape[:2] == (900, 1200)
    pixels = np.round(img.reshape(-1, 3) * 255).astype(int)
    colours = {tuple(c) for c in pixels[::7]}
    assert len(colours) > 50, "the page looks blank"
    # Grid fills and station circles are visible: some pixels are far from grey.
    saturation = pixels.max(axis=1) - pixels.min(axis=1)
    assert (saturation > 60).mean() > 0.02


def test_the_error_check_catches_a_broken_page(tmp_path):
    """Guard against a vacuous test: a page whose script fails must be caught."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<html><head></head><body><div id='x'></div><script>L.map('x');</script></body></html>",
        encoding="utf-8",
    )
    assert 'class="gridopt-js-error"' in _body(_dom(page, tmp_path))
