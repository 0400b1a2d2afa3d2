"""Pipeline stages: ingest → sentencize → embed (→ classify), each behind the contract in ``base``."""
