"""Report: the profile as terminal text (``text``), a JSON document with stable keys
(``json_doc``), Markdown and self-contained HTML; ``output`` writes them out.

The modules are imported by name, so the pytest plugin's summary, which needs only
``text``'s formatting helpers, does not load the recommender with ``json_doc``.
"""
