"""Drawing money documents (receipts, invoices, statements) as A4 PDFs.

Why ReportLab: it writes Japanese with the PDF's *standard* CJK fonts (Adobe-Japan1
"HeiseiKakuGo-W5" / "HeiseiMin-W3" as CID fonts, encoding UniJIS-UCS2-H), so no font
file is embedded or shipped: every PDF reader brings a substitute for them, the files stay
a few kilobytes, and `pdftotext` (poppler with poppler-data's CMaps) extracts the text.
ReportLab is a pure-Python wheel (a few MB, depends on Pillow only) with no system
libraries. fpdf2 cannot use the standard CJK fonts: it needs a TrueType font embedded,
and the Noto CJK file (≈16 MB) is not in the wheel nor on the production host.
WeasyPrint needs Pango/HarfBuzz system libraries and installed fonts.

The drawing API is deliberately small and knows nothing of bookings: a caller builds a
`PdfDocument`, adds titles, label/value pairs, tables and notes (top to bottom, new pages
when the page is full, table headers repeated) and takes the bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas as rl_canvas

GOTHIC = "HeiseiKakuGo-W5"
MINCHO = "HeiseiMin-W3"

_registered = False


def _register_fonts() -> None:
    # Registering is process-wide and idempotent in effect; do it once.
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(GOTHIC))
        pdfmetrics.registerFont(UnicodeCIDFont(MINCHO))
        _registered = True


Align = Literal["left", "right", "center"]

PAGE_W, PAGE_H = A4
MARGIN = 50.0


class PdfDocument:
    """A4 portrait page flow: each add_* call draws below the previous one."""

    def __init__(self, title: str, *, author: str = "", font: str = GOTHIC) -> None:
        _register_fonts()
        self._buffer = io.BytesIO()
        self._c = rl_canvas.Canvas(self._buffer, pagesize=A4, pageCompression=1)
        self._c.setTitle(title)
        if author:
            self._c.setAuthor(author)
        self._c.setCreator("booking")
        self.font = font
        self.y = PAGE_H - MARGIN
        self.width = PAGE_W - 2 * MARGIN
        self.page = 1

    # -- layout helpers ----------------------------------------------------------------
    def _need(self, height: float) -> None:
        if self.y - height < MARGIN:
            self.new_page()

    def new_page(self) -> None:
        self._c.showPage()
        self.page += 1
        self.y = PAGE_H - MARGIN

    def text_width(self, text: str, size: float) -> float:
        return float(pdfmetrics.stringWidth(text, self.font, size))

    def _wrap(self, text: str, size: float, width: float) -> list[str]:
        """Break by characters (Japanese has no spaces); keep explicit newlines."""
        lines: list[str] = []
        for paragraph in text.split("\n"):
            current = ""
            for ch in paragraph:
                if current and self.text_width(current + ch, size) > width:
                    lines.append(current)
                    current = ch
                else:
                    current += ch
            lines.append(current)
        return lines

    def _draw(self, x: float, y: float, text: str, size: float, align: Align) -> None:
        self._c.setFont(self.font, size)
        if align == "right":
            self._c.drawRightString(x, y, text)
        elif align == "center":
            self._c.drawCentredString(x, y, text)
        else:
            self._c.drawString(x, y, text)

    # -- blocks --------------------------------------------------------------------------
    def title(self, text: str, size: float = 20) -> None:
        """A centred heading (e.g. 適格請求書)."""
        self._need(size * 2)
        self.y -= size
        self._draw(PAGE_W / 2, self.y, text, size, "center")
        self.y -= size * 0.8

    def paragraph(self, text: str, size: float = 10, align: Align = "left") -> None:
        """Wrapped text across the page width."""
        for line in self._wrap(text, size, self.width):
            self._need(size * 1.5)
            self.y -= size * 1.4
            x = {"left": MARGIN, "right": PAGE_W - MARGIN, "center": PAGE_W / 2}[align]
            self._draw(x, self.y, line, size, align)

    def pairs(self, rows: Sequence[tuple[str, str]], size: float = 10, label_width: float = 130) -> None:
        """Label / value lines (発行者: …); values wrap in their column."""
        for label, value in rows:
            lines = self._wrap(value, size, self.width - label_width)
            self._need(size * 1.5 * len(lines))
            self.y -= size * 1.4
            self._draw(MARGIN, self.y, label, size, "left")
            for i, line in enumerate(lines):
                if i:
                    self.y -= size * 1.4
                self._draw(MARGIN + label_width, self.y, line, size, "left")

    def big_amount(self, label: str, amount: str, size: float = 16) -> None:
        """The total, large and underlined (合計 ¥1,100)."""
        self._need(size * 2.5)
        self.y -= size * 1.6
        self._draw(MARGIN, self.y, label, size, "left")
        self._draw(PAGE_W - MARGIN, self.y, amount, size, "right")
        self._c.setLineWidth(0.8)
        self._c.line(MARGIN, self.y - 4, PAGE_W - MARGIN, self.y - 4)
        self.y -= size * 0.6

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[float] | None = None,
        aligns: Sequence[Align] | None = None,
        size: float = 9,
    ) -> None:
        """A ruled table; widths are fractions of the page width (default equal).
        The header row is drawn again at the top of each new page."""
        n = len(headers)
        fractions = list(widths) if widths else [1 / n] * n
        cols = [f * self.width for f in fractions]
        al: list[Align] = list(aligns) if aligns else ["left"] * n
        pad = 3.0
        line_h = size * 1.35

        def row_lines(cells: Sequence[str]) -> list[list[str]]:
            return [self._wrap(str(c), size, cols[i] - 2 * pad) for i, c in enumerate(cells)]

        def draw_row(cells: Sequence[str], header: bool) -> None:
            wrapped = row_lines(cells)
            height = max(len(w) for w in wrapped) * line_h + pad
            if not header and self.y - height < MARGIN:
                self.new_page()
                draw_row(headers, True)
            top = self.y
            if header:
                self._c.setFillGray(0.9)
                self._c.rect(MARGIN, top - height, self.width, height, stroke=0, fill=1)
                self._c.setFillGray(0)
            x = MARGIN
            for i, lines in enumerate(wrapped):
                for j, line in enumerate(lines):
                    y = top - line_h * (j + 1) + 2
                    if al[i] == "right":
                        self._draw(x + cols[i] - pad, y, line, size, "right")
                    elif al[i] == "center":
                        self._draw(x + cols[i] / 2, y, line, size, "center")
                    else:
                        self._draw(x + pad, y, line, size, "left")
                x += cols[i]
            self._c.setLineWidth(0.4)
            self._c.line(MARGIN, top - height, MARGIN + self.width, top - height)
            self.y = top - height

        self._need(line_h * 3)
        self.y -= 6
        self._c.setLineWidth(0.4)
        self._c.line(MARGIN, self.y, MARGIN + self.width, self.y)
        draw_row(headers, True)
        for r in rows:
            draw_row(r, False)

    def space(self, points: float = 10) -> None:
        self.y -= points

    def to_bytes(self) -> bytes:
        self._c.showPage()
        self._c.save()
        return self._buffer.getvalue()
