"""Report: the profile as terminal text or as a JSON document with stable keys."""

from qprof.report.json_doc import profile_document
from qprof.report.text import render_text

__all__ = ["profile_document", "render_text"]
