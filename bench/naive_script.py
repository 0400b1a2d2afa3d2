"""The naive script the cold ``docintel run`` is compared with (bench/cold_run.py): what a first attempt
would write. spaCy's full en_core_web_sm pipeline for sentences; per sentence one sentence-transformers call
and one transformers-pipeline call; fp32; results to one JSONL file; no store, no orchestration.

    python bench/naive_script.py FILE.txt OUT.jsonl
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("USE_TF", "0")  # as docintel does: else transformers imports TensorFlow too (≈ 3 s here)
import spacy  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from transformers import pipeline  # noqa: E402

from pipeline.models import ModelRegistry  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.stages.sentencize import SMALL_ENGLISH, pipeline_package  # noqa: E402


def main(source: Path, out: Path) -> int:
    registry = ModelRegistry(Settings().models_dir)
    nlp = spacy.load(pipeline_package(SMALL_ENGLISH))  # every component: tagger, parser, NER, lemmatizer
    nlp.max_length = 10_000_000
    encoder = SentenceTransformer(registry.resolve("minilm").location, device="cpu")
    classifier = pipeline("text-classification", model=registry.resolve(Settings().classifier).location, device=-1)
    sentences = [s.text for s in nlp(source.read_text(encoding="utf-8")).sents if s.text.strip()]
    with out.open("w", encoding="utf-8") as handle:
        for sentence in sentences:
            vector = encoder.encode(sentence)
            label = classifier(sentence, truncation=True)[0]
            handle.write(json.dumps({"text": sentence, "label": label["label"], "score": label["score"],
                                     "dim": int(vector.shape[0])}) + "\n")
    return len(sentences)


if __name__ == "__main__":
    print(main(Path(sys.argv[1]), Path(sys.argv[2])))
