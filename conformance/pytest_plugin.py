"""pytest plugin: run a conformance case set as test items (``--conv-adapter``)."""
from __future__ import annotations
