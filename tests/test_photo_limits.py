"""Photo uploads: a pixel limit read from the header before anything is decoded, and only
approved organisations upload (issue 17, finding 13).

Before: a 75 KB PNG of 1 × 39,000,000 pixels passed the 40-megapixel check and was
decoded row by row (seconds of CPU per upload), and an operator the site admin had not
approved could upload.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from booking.extensions import db
from booking.models import OrgKind, Photo
from booking.services import photos
from booking.services.errors import DomainError
from tests.test_console import _upload


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, idat: bytes | None = None) -> bytes:
    """A grey PNG of width × height, all black: tiny on disk whatever its size in pixels.
    `idat` replaces the image data (e.g. garbage: only the header is then an image)."""
    if idat is None:
        idat = zlib.compress((b"\0" + b"\0" * width) * height, 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


@pytest.fixture
def operator(make, login):
    def _operator(approved: bool):
        org = make.organisation(OrgKind.OPERATOR, approved=approved)
        owner = make.user(organisation=org, role="owner")
        space = make.space(org, published=False)
        login(owner)
        return space

    return _operator


def _photos() -> int:
    return db.session.scalar(sa.select(sa.func.count(Photo.id)))


def test_a_tall_png_is_refused_from_its_header(app, client, operator):
    space = operator(approved=True)
    tall = png(1, 39_000_000)
    assert len(tall) < 100_000  # the 75 KB file of the finding
    response = _upload(client, space.id, tall, "tall.png")
    assert response.status_code == 413  # the refusal's own status, on the form
    assert "大きすぎ" in response.get_data(as_text=True)
    assert _photos() == 0
    assert not any(Path(app.config["UPLOAD_DIR"]).rglob("*.*"))


@pytest.mark.parametrize(("width", "height"), [
    (1, 39_000_000),  # the finding
    (1, 20_000),  # a sliver: few pixels, but one decode step per row
    (20_000, 1),
    (6000, 6000),  # 36 megapixels: a bomb of more modest shape
])
def test_the_size_is_checked_before_any_pixel_is_decoded(app, width, height):
    """The header says how big the image is; its data here is garbage. Refused as too
    large (not as a broken image): nothing was decoded to find out."""
    with pytest.raises(DomainError) as err:
        photos.encode(png(width, height, idat=b"not zlib data"))
    assert err.value.code == "photo_too_large"


def test_photos_of_ordinary_shapes_are_still_taken(app, client, operator):
    space = operator(approved=True)
    for size in ((4000, 3000), (3000, 4000), (6000, 2000)):  # phone photos, a panorama
        out = io.BytesIO()
        Image.new("RGB", size, (10, 120, 200)).save(out, "JPEG")
        response = _upload(client, space.id, out.getvalue(), "photo.jpg")
        assert response.status_code == 302, size
    assert _photos() == 3


def test_an_organisation_not_yet_approved_cannot_upload(app, client, operator):
    space = operator(approved=False)
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "PNG")
    response = _upload(client, space.id, out.getvalue(), "photo.png")
    assert response.status_code == 403
    assert "承認" in response.get_data(as_text=True)
    assert _photos() == 0
    assert not any(Path(app.config["UPLOAD_DIR"]).rglob("*.*"))
