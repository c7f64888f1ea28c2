"""The PDF export: the deck's pages laid out on landscape A4 with reportlab.

What the pages say comes from `deck` (shared with the slides); this module only places it.
The font is DejaVu Sans, shipped with matplotlib, so any name prints.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from analytics.exports.pack import PlanPack


@cache
def _pdf_fonts() -> tuple[str, str]:
    """DejaVu Sans (shipped with matplotlib) for any script; Helvetica if it cannot load."""
    import matplotlib
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    try:
        pdfmetrics.registerFont(TTFont("AtlasSans", str(folder / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont("AtlasSans-Bold", str(folder / "DejaVuSans-Bold.ttf")))
    except (OSError, TTFError):
        return "Helvetica", "Helvetica-Bold"
    return "AtlasSans", "AtlasSans-Bold"


def write_pdf(pack: PlanPack, out: Path) -> Path:
    from xml.sax.saxutils import escape

    from reportlab import rl_config
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.utils import ImageReader
    from reportlab.platypus import Flowable, PageBreak, Paragraph, SimpleDocTemplate, Table

    class Picture(Flowable):
        """A PNG drawn at a size (decoded here: reportlab's own PNG path is slow)."""

        def __init__(self, png: bytes, width: float, height: float) -> None:
            from PIL import Image as PilImage

            super().__init__()
            self.img = PilImage.open(io.BytesIO(png)).convert("RGB")
            self.width, self.height = width, height

        def wrap(self, *_):
            return self.width, self.height

        def draw(self) -> None:
            self.canv.drawImage(ImageReader(self.img), 0, 0, self.width, self.height)

    deck = pack.deck
    font, bold = _pdf_fonts()
    page_w, page_h = landscape(A4)
    margin = 28
    width = page_w - 2 * margin
    doc = SimpleDocTemplate(str(out), pagesize=(page_w, page_h), leftMargin=margin,
                            rightMargin=margin, topMargin=margin, bottomMargin=margin,
                            title=deck.title, author=deck.author, subject=deck.subtitle)
    h1 = ParagraphStyle("h1", fontName=bold, fontSize=19, leading=23)
    sub = ParagraphStyle("sub", fontName=font, fontSize=10, leading=13, spaceAfter=8,
                         textColor=colors.HexColor("#444444"))
    h2 = ParagraphStyle("h2", fontName=bold, fontSize=12, leading=15, spaceBefore=6)
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=11.5, leftIndent=8)
    story: list = []

    def table(cells, widths, size=8.5):
        t = Table([list(r) for r in cells], colWidths=widths)
        t.setStyle([
            ("FONT", (0, 0), (-1, -1), font, size), ("FONT", (0, 0), (-1, 0), bold, size),
            ("ALIGN", (1, 0), (-1, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#888888")),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#F2F2F2")]),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ])
        return t

    def layout(left, right, widths):
        t = Table([[left, right]], colWidths=widths)
        t.setStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 4)])
        return t

    for k, page in enumerate(deck.pages):
        if k:
            story.append(PageBreak())
        story.extend([Paragraph(escape(page.title), h1), Paragraph(escape(page.subtitle), sub)])
        if page.kind == "plan":  # the whole-plan KPIs, the overview map beside them
            kpis = table(page.kpis, [150, 78])
            png, w, h = page.map.png((width - 236) / 72, 6.6)
            story.append(layout(kpis, Picture(png, w * 72, h * 72), [236, width - 236]))
        elif page.kind == "territory":  # the territory's map, its metrics beside it
            metrics_table = table(page.kpis, [160, 85, 60], 9)
            png, w, h = page.map.png((width - 315) / 72, (page_h - 2 * margin) / 72)
            img_w = width - 315
            img_h = img_w * h / w
            story.append(layout(Picture(png, img_w, img_h), metrics_table, [img_w + 10, 305]))
        elif page.kind == "text":  # headings and paragraphs
            for note in page.notes:
                if note.startswith("## "):
                    story.append(Paragraph(escape(note[3:]), h2))
                else:
                    story.append(Paragraph(escape(note), body))
        else:  # the comparison's columns side by side, then the notes
            col_w = width / len(page.tables)
            inner = [col_w * 0.34, *[col_w * 0.155] * 4]
            parts = [table(c, inner, 7.5) for c in page.tables]
            grid = Table([parts], colWidths=[col_w] * len(parts))
            grid.setStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                           ("LEFTPADDING", (0, 0), (-1, -1), 0)])
            story.append(grid)
            story.extend(Paragraph(escape(note), sub) for note in page.notes)

    def footer(canvas, document) -> None:
        canvas.saveState()
        canvas.setFont(font, 7)
        canvas.setFillColor(colors.HexColor("#777777"))
        canvas.drawString(margin, 14, deck.footer)
        canvas.drawRightString(page_w - margin, 14, f"page {document.page}")
        canvas.restoreState()

    from reportlab.pdfbase import pdfdoc

    use_a85, deflate = rl_config.useA85, pdfdoc.zlib
    rl_config.useA85 = 0  # binary image streams: reportlab's ASCII85 is pure Python and slow
    pdfdoc.zlib = FastDeflate  # zlib level 3: maps deflate ~2.3x quicker
    try:
        doc.build(story, onFirstPage=footer, onLaterPages=footer)
    finally:
        rl_config.useA85, pdfdoc.zlib = use_a85, deflate
    return out


class FastDeflate:
    """What reportlab's pdfdoc uses of `zlib`, compressing at level 3: reportlab deflates
    each map's raw RGB at the default level 6, most of a PDF's writing time (0.35 s of the
    default deck's 41 maps; 0.15 s at level 3, the images a quarter bigger)."""

    @staticmethod
    def compress(data: bytes, level: int = 3) -> bytes:
        import zlib

        return zlib.compress(data, min(level, 3))

    @staticmethod
    def decompress(data: bytes) -> bytes:
        import zlib

        return zlib.decompress(data)
