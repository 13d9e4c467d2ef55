"""Hardened XML parsing for uploaded BPMN/DMN: no entities, no DTD, no network, bounded size."""

from __future__ import annotations

from lxml import etree

from app.config import MAX_MODEL_BYTES as MAX_XML_BYTES


class XmlRejected(Exception):
    """The file is not acceptable XML; `line` is 1-based or None."""

    def __init__(self, filename: str, message: str, line: int | None = None):
        super().__init__(f"{filename}:{line or '-'}: {message}")
        self.filename = filename
        self.message = message
        self.line = line


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def parse_xml(content: bytes, filename: str) -> etree._Element:
    """Parse `content` safely and return its root element, or raise XmlRejected."""
    if len(content) > MAX_XML_BYTES:
        raise XmlRejected(filename, f"file is larger than {MAX_XML_BYTES // (1024 * 1024)} MB")
    try:
        tree = etree.fromstring(content, _parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        raise XmlRejected(filename, f"not well-formed XML: {exc.msg}", exc.lineno) from None
    if tree.docinfo.doctype:
        raise XmlRejected(filename, "DOCTYPE declarations are not allowed", 1)
    return tree.getroot()
