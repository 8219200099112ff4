"""Photos of spaces: checked by content, re-encoded, stored under UPLOAD_DIR with a random name.

Nothing the uploader sends is trusted: the type comes from decoding the bytes with Pillow
(not from the name or the Content-Type), the image is re-encoded (which drops EXIF and
anything appended to the file), and the stored name is ours. UPLOAD_DIR lies outside the
code tree (instance/uploads by default), and files are served only by `open_photo`, which
accepts nothing but names of the form we create.
"""

from __future__ import annotations

import io
import re
import secrets
import warnings
from pathlib import Path

import sqlalchemy as sa
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy.orm import Session

from booking.models import Photo, Space, User
from booking.services import access
from booking.services.audit import record
from booking.services.errors import DomainError

MAX_BYTES = 4 * 1024 * 1024  # per photo; the whole request is capped by MAX_CONTENT_LENGTH
# Read from the header, before any pixel is decoded: a few kilobytes of PNG can announce
# any size (1 × 39,000,000 pixels is 75 KB and was seconds of CPU, decoded row by row).
# A 24-megapixel camera (6000 × 4000) fits; so does a panorama up to 10,000 pixels wide.
MAX_PIXELS = 25_000_000
MAX_INPUT_SIDE = 10_000
MAX_SIDE = 2000  # stored photos are scaled down to this
ACCEPTED = {"JPEG", "PNG", "WEBP"}
NAME = re.compile(r"^[0-9a-f]{32}\.(jpg|png)$")
MIMETYPES = {"jpg": "image/jpeg", "png": "image/png"}


def photo_dir(upload_dir: str | Path) -> Path:
    return Path(upload_dir) / "photos"


def check_name(filename: str | None) -> None:
    """Refuse names that try to climb directories or hide a path (we never use the name,
    but such a name tells us the upload is hostile)."""
    name = filename or ""
    if "/" in name or "\\" in name or "\x00" in name or ".." in name or name.startswith("."):
        raise DomainError("photo_bad_name", field="file")


def encode(data: bytes) -> tuple[bytes, str]:
    """The re-encoded image and its extension; DomainError when it is not an image we take."""
    if len(data) > MAX_BYTES:
        raise DomainError("photo_too_large", field="file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))  # reads the header only
            if probe.format not in ACCEPTED:
                raise DomainError("photo_not_image", field="file")
            _check_size(*probe.size)
            probe.verify()  # structure check; the image must be opened again after it
            image = Image.open(io.BytesIO(data))
            _check_size(*image.size)
            image.draft(None, (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DomainError("photo_too_large", field="file") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DomainError("photo_not_image", field="file") from error
    upright: Image.Image = ImageOps.exif_transpose(image)  # the orientation the camera meant
    upright.thumbnail((MAX_SIDE, MAX_SIDE))
    has_alpha = upright.mode in ("RGBA", "LA") or (
        upright.mode == "P" and "transparency" in upright.info)
    out = io.BytesIO()
    if has_alpha:
        upright.convert("RGBA").save(out, "PNG", optimize=True)
        return out.getvalue(), "png"
    upright.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue(), "jpg"


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS or max(width, height) > MAX_INPUT_SIDE:
        raise DomainError("photo_too_large", field="file")


def add_photo(session: Session, user: User, space: Space, upload_dir: str | Path,
              filename: str | None, data: bytes, alt: str = "") -> Photo:
    """Adds a photo to a space of the user's organisation, once a site admin has approved
    that organisation (before, it could store files on our disk unchecked by anyone)."""
    access.require(user, "manage", space)
    if not space.organisation.is_approved:
        raise DomainError("not_approved", field="file")
    check_name(filename)
    content, ext = encode(data)
    folder = photo_dir(upload_dir)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.{ext}"
    path = folder / name
    # Written before the row: a failed commit leaves an orphan file, never a broken row.
    with path.open("xb") as f:
        f.write(content)
    photo = Photo(space_id=space.id, filename=name, alt=alt.strip()[:200])
    session.add(photo)
    session.flush()
    record(session, user, "photo.add", photo, space.organisation_id, space_id=space.id)
    return photo


def get_photo(session: Session, user: User, space: Space, photo_id: int) -> Photo:
    """A photo of `space` (a space's URL with another space's photo is "not found")."""
    photo = session.get(Photo, photo_id)
    if photo is None or photo.space_id != space.id:
        raise DomainError("not_found")
    access.require(user, "manage", photo)
    return photo


def delete_photo(session: Session, user: User, photo: Photo, upload_dir: str | Path) -> None:
    access.require(user, "manage", photo)
    record(session, user, "photo.delete", photo, photo.space.organisation_id,
           space_id=photo.space_id)
    path = photo_dir(upload_dir) / photo.filename
    session.delete(photo)
    session.flush()
    if NAME.match(photo.filename):
        path.unlink(missing_ok=True)


def open_photo(session: Session, upload_dir: str | Path, filename: str) -> tuple[Path, str] | None:
    """The stored file and its MIME type, for a name we created and still know; else None."""
    if not NAME.match(filename):
        return None
    if session.scalar(sa.select(Photo.id).where(Photo.filename == filename)) is None:
        return None
    path = photo_dir(upload_dir) / filename
    if not path.is_file():
        return None
    return path, MIMETYPES[filename.rsplit(".", 1)[1]]
