"""Evaluation against gold sets kept in ``data/``."""
