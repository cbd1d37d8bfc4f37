"""The security posture report: the buyer's security checklist, answered by the running
deployment with evidence (GET /v1/security/posture, ``ocrvault posture``).

- ``model.py``: the JSON model and its shipped schema (``posture.schema.json``);
- ``text.py``: evidence as text, for both renderers;
- ``facts.py``: what is read; ``service.py``: reading it; ``checks.py``: judging it;
- ``components.py``: versions of the components that read documents;
- ``render_markdown.py``, ``render_html.py``: the report for people (the HTML
  self-contained and printable).
"""
