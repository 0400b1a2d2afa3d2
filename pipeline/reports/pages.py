"""Page images for a report: each page that holds a finding, rendered from the source file, so the HTML report
can draw the finding's boxes where a reviewer reads them.

The store keeps text, not files: a page is rendered only when the source is still at its path and its
sha256 is still the document's id (a changed file must not illustrate the old findings). Rendering runs in
the parser's sandboxed process, under its limits, as parsing does.
"""

from __future__ import annotations

import base64
import dataclasses
import io
from pathlib import Path

from pipeline.errors import DocumentReadError
from pipeline.reports.audit import AuditReport, PageImage
from pipeline.stages.ingest import InputLimits, ParserProcess, content_hash
from pipeline.store import ResultStore

PAGE_DPI = 80  # legible beside the highlighted sentence; ≈ 40 KB a page as JPEG


def with_page_images(report: AuditReport, store: ResultStore, limits: InputLimits, most: int) -> AuditReport:
    """``report`` with the images of up to ``most`` pages holding its findings (highest scores first), and a
    note naming what could not be shown and why."""
    chosen = list(dict.fromkeys((f.doc_id, box[0]) for f in report.findings for box in f.boxes))  # best first
    wanted: dict[str, list[int]] = {}
    for doc_id, page in chosen[:most]:
        wanted.setdefault(doc_id, []).append(page)
    images, missing = {}, []
    for doc_id, pages in wanted.items():
        try:
            rendered = render(store, limits, doc_id, pages, PAGE_DPI)
        except DocumentReadError as exc:
            missing.append(str(exc))
            continue
        for number, jpeg in rendered.items():
            row = store.page(doc_id, number)
            images[doc_id, number] = PageImage("data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii"),
                                               row.width, row.height)
    notes = [f"pages not shown: {'; '.join(missing)}."] if missing else []
    if len(chosen) > most:
        notes.append(f"Only the {most} pages with the strongest findings are shown (DOCINTEL_REPORT_PAGE_IMAGES).")
    return dataclasses.replace(report, page_images=images, page_images_note=" ".join(notes) or None)


def prepare(limits: InputLimits) -> None:
    """Start the parser process the page images will be rendered in, without waiting for it: a process that
    read no document itself (the flow run of a served deployment) would otherwise pay its start-up (≈0.8 s
    on 2 cores) when the reports are written."""
    ParserProcess.for_limits(limits).start()


def render(store: ResultStore, limits: InputLimits, doc_id: str, pages: list[int], dpi: int) -> dict[int, bytes]:
    """JPEGs of a stored document's ``pages``, from its source file; DocumentReadError naming the source
    when the file is gone, changed, or cannot be rendered."""
    source, media_type = store.document_file(doc_id)
    path = Path(source)
    if not path.is_file() or content_hash(data := path.read_bytes()) != doc_id:
        raise DocumentReadError(f"{source} (no longer at its path, or changed since it was read)")
    try:
        return ParserProcess.for_limits(limits).render(media_type, data, pages, dpi)
    except DocumentReadError as exc:
        raise DocumentReadError(f"{source} ({exc})") from exc


def highlighted(store: ResultStore, limits: InputLimits, doc_id: str, page: int,
                boxes: list[tuple[float, float, float, float]], dpi: int = 100) -> bytes:
    """One page as a JPEG with ``boxes`` (points from the top-left corner) drawn on it: for pages whose
    viewer cannot position an overlay (the review app's policy allows no inline styles)."""
    from PIL import Image, ImageDraw

    jpeg = render(store, limits, doc_id, [page], dpi).get(page)
    if jpeg is None:
        raise DocumentReadError(f"page {page} could not be rendered")
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")  # our own JPEG, from the sandbox
    overlay = Image.new("RGBA", image.size)
    draw, scale = ImageDraw.Draw(overlay), image.width / store.page(doc_id, page).width  # a huge page: smaller
    for x0, top, x1, bottom in boxes:
        draw.rectangle([(x0 - 1) * scale, (top - 1) * scale, (x1 + 1) * scale, (bottom + 1) * scale],
                       fill=(255, 200, 0, 90), outline=(224, 168, 0, 255), width=2)
    buffer = io.BytesIO()
    Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB").save(buffer, "JPEG", quality=80)
    return buffer.getvalue()
