"""One settings object for the whole library.

Precedence, lowest to highest: defaults, a TOML settings file (``DOCINTEL_SETTINGS_FILE`` or
``./docintel.toml``), ``DOCINTEL_*`` environment variables, then explicit keyword overrides.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

REPO_ROOT = Path(__file__).resolve().parent.parent
SETTINGS_FILE_ENV = "DOCINTEL_SETTINGS_FILE"


# Every setting belongs to exactly one group; what a run reuses is derived from the groups, never from a
# hand-kept list of names (tests/test_settings.py fails on a field without a group).
GROUPS = {
    "models": "which models and weights run (their versions enter the work fingerprint)",
    "stages": "how the stages cut and score text: changes what a run stores",
    "limits": "input limits: decide which documents are read at all, so they change what a run stores",
    "execution": "where and in what batches the stages run: the same results, faster or slower",
    "store": "where results are kept",
    "reports": "what the exports show",
    "ray": "the Ray cluster for --runner ray",
    "serving": "the deployments of docintel serve",
    "review": "the review and sign-off web app (docintel review)",
}
# A warm Analyzer is keyed by these groups: runs differing only elsewhere share its loaded models.
ANALYZER_GROUPS = ("models", "stages", "limits", "execution")
# The work fingerprint (with the model versions): a change here makes a document's stored results stale.
FINGERPRINT_GROUPS = ("stages", "limits")


def In(group: str, default, **kwargs):  # noqa: N802  reads as a declaration: ``x: int = In("limits", 5)``
    """A settings field declared with its group."""
    if group not in GROUPS:
        raise ValueError(f"unknown settings group {group!r}")
    return Field(default, json_schema_extra={"group": group}, **kwargs)


def _settings_file() -> Path:
    return Path(os.environ.get(SETTINGS_FILE_ENV, "docintel.toml"))


class Settings(BaseSettings):
    """Pipeline settings; every field can be set as ``DOCINTEL_<FIELD>`` (e.g. ``DOCINTEL_STORE_URL``)."""

    model_config = SettingsConfigDict(env_prefix="DOCINTEL_", extra="forbid", frozen=True)

    home: Path = In("store", Path(".docintel"), description="Working state: the default SQLite store lives here.")
    store_url: str | None = In("store", None, description="SQLAlchemy URL; default sqlite:///<home>/store.db.")
    models_dir: Path = In("models", REPO_ROOT / "models", description="Model registry and built weights.")

    sentencizer: str = In("stages", 
        "layout",
        description="layout | layout-rule | layout-parser | rule | senter | parser | a spaCy pipeline; "
        "layout: best F1 at >= 10,000 words/s on the segmentation gold set.",
    )
    embedder: str = In("models", "minilm", description="minilm | mpnet | use (TensorFlow) | a sentence-transformers hub id or "
                          "path | a TF-Hub handle or URL.")
    embedder_precision: Literal["auto", "fp32", "int8"] = In("models", 
        "auto", description="sentence-transformers embedders; auto: int8 (ONNX Runtime) on CPU, fp32 on GPU. int8 "
        "measured 1.5x faster here at cosine 0.99 to the fp32 vectors.")
    classifier: str = In("models", "risk-minilm", description="Registered risk classifier (docintel train builds it).")
    classifier_precision: Literal["auto", "fp32", "int8", "bf16"] = In("stages", 
        "auto", description="auto: int8 on CPU, fp32 on GPU."
    )
    int8_engine: Literal["onnxruntime", "torch"] = In("stages", 
        "onnxruntime", description="Runs the int8 classifier; onnxruntime measured fastest on CPU here."
    )
    device: Literal["auto", "cpu", "cuda"] = In("execution", "auto")

    documents_per_batch: int = In("execution", 8, ge=1, description="Documents per flow task.")
    embed_batch_size: int = In("execution", 16, ge=1, description="Sentences per forward pass; 16 measured fastest on 2 CPU cores.")
    sentencize_batch_size: int = In("execution", 16, ge=1, description="Text chunks per spaCy nlp.pipe batch.")
    spacy_chunk_chars: int = In("stages", 100_000, ge=1_000, description="Longest text handed to spaCy at once.")
    ocr: Literal["off", "auto", "force"] = In("stages", "auto", description="auto: OCR (Tesseract) the PDF pages "
                                               "without a usable text layer, and images; force: every page; off: none.")
    ocr_language: str = In("stages", "eng", description="Tesseract language(s), e.g. eng or eng+deu (installed packs).")
    ocr_dpi: int = In("stages", 200, ge=72, le=600, description="Resolution PDF pages are rendered at for OCR.")
    max_file_mb: float = In("limits", 200.0, gt=0, description="Larger inputs are refused.")
    max_pages: int = In("limits", 5_000, ge=1, description="PDFs with more pages are refused.")
    parse_timeout_s: float = In("limits", 60.0, gt=0, description="A document's parser is stopped (its process killed) "
                                   "after this long; the document is recorded as failed.")
    parse_memory_mb: int = In("limits", 2_048, ge=256, description="Address-space cap of the parser's process "
                                 "(decompression bombs stop here).")
    archive_max_mb: float = In("limits", 500.0, gt=0, description="A ZIP input (or a DOCX) may expand to this much in all.")
    archive_max_members: int = In("limits", 1_000, ge=1, description="Most members a ZIP input (or a DOCX) may hold.")
    archive_max_ratio: float = In("limits", 100.0, gt=1, description="Highest compression ratio of a member over 1 MiB.")
    max_image_megapixels: float = In("limits", 100.0, gt=0, description="Larger images (and PDF page renderings) are "
                                     "refused before decoding: decompression bombs.")
    report_formats: tuple[Literal["html", "pdf", "xlsx", "csv", "json"], ...] = In("reports", 
        ("html", "pdf", "xlsx", "csv", "json"), description="Audit report exports written at the end of a run with --out.")
    report_page_images: int = In("reports", 200, ge=0, description="Most pages the HTML report shows as images "
                                 "with each finding highlighted on its page (PDFs and scans); 0: none.")
    report_threshold: float = In("reports", 0.5, ge=0, le=1, description="Findings below this score stay out of reports.")
    risk_register: Path | None = In("reports", None, description="CSV/XLSX risk register (id, title, description) that "
                                       "reports map findings onto; none: no register section.")
    register_min_similarity: float = In("reports", 
        0.35, ge=-1, le=1, description="Lowest cosine for a finding to count as evidence of a register entry "
        "(MiniLM scale: set per embedder).")
    diff_reworded_min: float = In("reports", 
        0.8, ge=-1, le=1, description="docintel diff: lowest cosine for two findings to be one risk reworded.")
    ray_address: str | None = In("ray", None, description="Ray cluster for `--runner ray` (ray://host:10001 or "
                                    "host:6379); none: start a local Ray.")
    ray_gpu_memory_mb: int = In("ray", 81_559, ge=1, description="Memory of each GPU in the Ray cluster (Ray counts "
                                   "GPUs but not their memory): the planner sizes fractional num_gpus from it.")
    inbox: Path = In("serving", Path("inbox"), description="Folder the scheduled inbox-batch deployment processes.")
    outbox: Path = In("serving", Path("out"), description="Where served runs write: one folder per flow run.")
    inbox_cron: str = In("serving", "0 2 * * *", description="When inbox-batch runs (cron, in schedule_timezone).")
    schedule_timezone: str = In("serving", "UTC", description="Time zone of inbox_cron.")
    review_page_size: int = In("review", 50, ge=5, le=500, description="Findings per page of the review queue.")
    review_login_attempts: int = In("review", 5, ge=1, description="Failed logins per name and address in "
                                    "review_login_window_s before further attempts are refused.")
    review_login_window_s: float = In("review", 300.0, gt=0, description="The window of review_login_attempts.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=_settings_file())

    @classmethod
    def group_fields(cls, *groups: str) -> tuple[str, ...]:
        """Names of the fields in ``groups``, in declaration order."""
        return tuple(name for name, info in cls.model_fields.items()
                     if (info.json_schema_extra or {}).get("group") in groups)

    def values_of(self, *groups: str) -> dict:
        return {name: getattr(self, name) for name in self.group_fields(*groups)}

    @property
    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.home / 'store.db').resolve()}"
