"""Build steps that turn weights shipped on the package index into the formats the stages load.

Each builder module has ``source_files()`` (the shipped inputs, verified against the registry before a
build) and ``build(target)`` (writes the model directory, returns its file hashes and provenance). Builder
modules import their framework only inside ``build``.
"""

from pipeline.builders import use_savedmodel

BUILDERS = {"use": use_savedmodel}
