"""The form markup the Nu HTML Checker asked for (tests/html_validity.py checks whole pages
in tests/test_route_walk.py and tests/test_i18n.py; these hold for pages no walk reaches)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parent.parent / "booking" / "templates"


def test_every_template_renders_hidden_inputs_through_the_one_macro():
    """hidden_tag() and form.csrf_token write id="csrf_token": two forms on a page (the
    language switch, log-out, a row's buttons) make a duplicate id. _forms.hidden_fields
    writes them without."""
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\.hidden_tag\(|\.csrf_token\s*(\}\}|\()", line):
                found.append(f"{path.relative_to(TEMPLATES)}:{n}: {line.strip()[:120]}")
    assert not found, "render hidden inputs with _forms.html's hidden_fields(form):\n" + \
        "\n".join(found)


def _options(html: str, name: str) -> list[str]:
    select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select, name
    return re.findall(r"<option[^>]*>", select.group(1))


@pytest.mark.parametrize("url", ["/account/signup", "/account/signup/supporter"])
def test_required_prefecture_select_starts_with_an_empty_placeholder(client, url):
    html = client.get(url).get_data(as_text=True)
    select = re.search(r'<select[^>]*name="prefecture"[^>]*>', html).group(0)
    assert "required" in select and 'autocomplete="address-level1"' in select
    first, *rest = _options(html, "prefecture")
    assert 'value=""' in first  # shown: no prefecture is selected
    assert len(rest) == 47 and 'value="13"' in rest[12]
    assert not [o for o in rest if "selected" in o]
    address = re.search(r'<input[^>]*name="address"[^>]*>', html).group(0)
    assert 'autocomplete="address-line1"' in address


def test_a_chosen_prefecture_stays_chosen_when_the_form_comes_back(client):
    """The placeholder is selected only when nothing is chosen."""
    html = client.post("/account/signup", data={"prefecture": "22"}).get_data(as_text=True)
    first, *rest = _options(html, "prefecture")
    assert "selected" not in first
    assert [o for o in rest if "selected" in o] == [o for o in rest if 'value="22"' in o]
