"""The PowerPoint export: the deck's pages laid out as 16:9 slides with python-pptx.

What the slides say comes from `deck` (shared with the PDF); this module only places it:
title and subtitle at the top, tables and pictures where each page kind has them.
"""

from __future__ import annotations

import io
from pathlib import Path

from analytics.exports.deck import Page
from analytics.exports.maps import TERRITORY_MAP_SIZE
from analytics.exports.pack import PlanPack


def write_pptx(pack: PlanPack, out: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches, Pt

    deck = pack.deck
    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    prs.core_properties.title = deck.title
    prs.core_properties.author = deck.author
    layout = prs.slide_layouts[5]  # title only

    for page in deck.pages:
        slide = prs.slides.add_slide(layout)
        t = slide.shapes.title
        t.left, t.top, t.width, t.height = Inches(0.4), Inches(0.15), Inches(12.5), Inches(0.8)
        t.text = page.title
        for para in t.text_frame.paragraphs:
            para.font.size = Pt(28)
        box = slide.shapes.add_textbox(Inches(0.4), Inches(0.9), Inches(12.5), Inches(0.4))
        box.text_frame.text = page.subtitle
        box.text_frame.paragraphs[0].font.size = Pt(13)
        _LAYOUTS[page.kind](slide, page)
    prs.save(str(out))
    return out


def _plan_slide(slide, page: Page) -> None:
    """The whole-plan KPIs on the left, the overview map (with its legend) on the right."""
    from pptx.util import Inches

    _table(slide, page.kpis, Inches(0.4), Inches(1.45), [2.75, 1.55], row_h=0.235, size=9)
    png, w, _ = page.map.png(8.4, 5.9)
    slide.shapes.add_picture(io.BytesIO(png), Inches(4.75), Inches(1.45), width=Inches(w))


def _territory_slide(slide, page: Page) -> None:
    """The territory's map on the left, its metrics on the right."""
    from pptx.util import Inches

    png, w, _ = page.map.png(*TERRITORY_MAP_SIZE)
    slide.shapes.add_picture(io.BytesIO(png), Inches(0.4), Inches(1.4), width=Inches(w))
    _table(slide, page.kpis, Inches(8.05), Inches(1.4), [2.6, 1.3, 1.0], row_h=0.26, size=9)


def _comparison_slide(slide, page: Page) -> None:
    """The comparison's columns side by side, the notes at the bottom."""
    from pptx.util import Inches

    width = 12.5 / len(page.tables)
    for k, table in enumerate(page.tables):
        widths = [(width - 0.15) * 0.36, *[(width - 0.15) * 0.16] * 4]
        _table(slide, table, Inches(0.4 + k * width), Inches(1.45), widths, row_h=0.2, size=8)
    if page.notes:
        box = slide.shapes.add_textbox(Inches(0.4), Inches(7.05), Inches(12.5), Inches(0.3))
        box.text_frame.text = "\n".join(page.notes)


def _text_slide(slide, page: Page) -> None:
    """The notes as paragraphs, headings ("## ") in bold."""
    from pptx.util import Inches, Pt

    box = slide.shapes.add_textbox(Inches(0.4), Inches(1.4), Inches(12.5), Inches(5.8))
    frame = box.text_frame
    frame.word_wrap = True
    for k, note in enumerate(page.notes):
        para = frame.paragraphs[0] if k == 0 else frame.add_paragraph()
        heading = note.startswith("## ")
        para.text = note[3:] if heading else note
        para.font.size = Pt(13 if heading else 10)
        para.font.bold = heading


_LAYOUTS = {"plan": _plan_slide, "territory": _territory_slide,
            "comparison": _comparison_slide, "text": _text_slide}
_NO_STYLE = "{2D5ABB26-0587-4C30-8999-92F81FD0307C}"  # PowerPoint's "No Style, No Grid"


def _table(slide, cells, left, top, widths_in: list[float], *, row_h: float,
           size: int) -> None:
    """A table with a bold grey header and banded rows, numbers right-aligned. Its XML is
    written whole (python-pptx's per-cell API costs about 0.1 s a table)."""
    from xml.sax.saxutils import escape

    from pptx.oxml import parse_xml
    from pptx.util import Inches

    emu = [int(Inches(w)) for w in widths_in]
    height = int(Inches(row_h))
    shape = slide.shapes.add_table(1, len(emu), left, top, sum(emu), height)
    margins = (f'marL="{int(Inches(0.06))}" marR="{int(Inches(0.06))}" '
               f'marT="{int(Inches(0.02))}" marB="{int(Inches(0.02))}" anchor="ctr"')
    xml = [f'<a:tbl xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
           f'<a:tblPr firstRow="1" bandRow="1"><a:tableStyleId>{_NO_STYLE}</a:tableStyleId>'
           f'</a:tblPr><a:tblGrid>{"".join(f"<a:gridCol w={chr(34)}{w}{chr(34)}/>" for w in emu)}'
           f'</a:tblGrid>']
    for i, row in enumerate(cells):
        fill = "D9D9D9" if i == 0 else ("FFFFFF" if i % 2 else "F2F2F2")
        bold = ' b="1"' if i == 0 else ""
        xml.append(f'<a:tr h="{height}">')
        for j, text in enumerate(row):
            align = '<a:pPr algn="r"/>' if j > 0 else ""
            paras = "".join(  # an empty cell keeps the font size (its row stays as high)
                f'<a:p>{align}'
                + (f'<a:r><a:rPr lang="en-US" sz="{size * 100}"{bold} dirty="0">'
                   f'<a:solidFill><a:srgbClr val="222222"/></a:solidFill></a:rPr>'
                   f'<a:t>{escape(line)}</a:t></a:r>' if line else "")
                + f'<a:endParaRPr lang="en-US" sz="{size * 100}" dirty="0"/></a:p>'
                for line in str(text).split("\n"))
            xml.append(f'<a:tc><a:txBody><a:bodyPr/><a:lstStyle/>{paras}</a:txBody>'
                       f'<a:tcPr {margins}><a:solidFill><a:srgbClr val="{fill}"/></a:solidFill>'
                       f'</a:tcPr></a:tc>')
        xml.append("</a:tr>")
    xml.append("</a:tbl>")
    old = shape._element.graphic.graphicData.tbl
    old.getparent().replace(old, parse_xml("".join(xml)))
    shape.height = height * len(cells)
