"""Exporters: what docintel hands to people and other tools."""
