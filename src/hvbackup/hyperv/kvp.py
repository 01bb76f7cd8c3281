"""Guest KVP items as the host sees them: Msvm_KvpExchangeComponent.GuestExchangeItems (docs/HYPERV.md §13).

Each item is an embedded Msvm_KvpExchangeDataItem instance, a CIM-XML document
`<INSTANCE CLASSNAME="Msvm_KvpExchangeDataItem"><PROPERTY NAME="Name" TYPE="string"><VALUE>...`
with the properties Name, Data and Source (0 host, 1 guest, 2 guest intrinsic). The guest writes
them, so every document is untrusted input: one that does not parse is skipped, and a report is
counted only when `kvpreport.reassemble` finds it whole and, for a freeze report, carrying the
token announced for the checkpoint.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from hvbackup import kvpreport

DATA_ITEM_CLASS = "Msvm_KvpExchangeDataItem"
SOURCE_HOST, SOURCE_GUEST, SOURCE_INTRINSIC = 0, 1, 2
AGENT_DAEMON = "hvbackup-guest"  # the agent's name in the readiness report's vss_daemon.running


def data_item_xml(name: str, data: str, source: int = SOURCE_GUEST) -> str:
    """One embedded Msvm_KvpExchangeDataItem in the CIM-XML shape Hyper-V serialises it in."""

    def prop(prop_name: str, kind: str, value: str | None) -> str:
        inner = "" if value is None else f"<VALUE>{escape(value)}</VALUE>"
        return f'<PROPERTY NAME="{prop_name}" TYPE="{kind}">{inner}</PROPERTY>'

    return (
        f'<INSTANCE CLASSNAME="{DATA_ITEM_CLASS}">'
        + prop("Caption", "string", None)
        + prop("Data", "string", data)
        + prop("Description", "string", None)
        + prop("ElementName", "string", None)
        + prop("Name", "string", name)
        + prop("Source", "uint16", str(source))
        + "</INSTANCE>"
    )


def parse_data_item(text: str) -> tuple[str, str] | None:
    """(Name, Data) of one embedded instance; None when it is not a data item with a name."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    if root.tag != "INSTANCE" or root.get("CLASSNAME") != DATA_ITEM_CLASS:
        return None
    values: dict[str, str] = {}
    for prop in root.findall("PROPERTY"):
        value = prop.find("VALUE")
        if prop.get("NAME") and value is not None:
            values[str(prop.get("NAME"))] = value.text or ""
    if not values.get("Name"):
        return None
    return values["Name"], values.get("Data", "")


def parse_exchange_items(documents: Iterable[Any]) -> dict[str, str]:
    """Name -> Data of every readable item (PowerShell may print null for an empty array)."""
    items: dict[str, str] = {}
    for document in documents:
        if isinstance(document, str) and (item := parse_data_item(document)) is not None:
            items[item[0]] = item[1]
    return items


@dataclass(frozen=True)
class ReportRead:
    """A report read from the items: `report` is None when there is none to count, `reason` says why."""

    report: dict[str, Any] | None
    reason: str = ""


def read_report(items: dict[str, str], kind: str, token: str | None = None) -> ReportRead:
    """The complete, checksum-valid report of `kind`; with `token`, only one announced with that token."""
    try:
        published = kvpreport.reassemble(kind, items)
    except kvpreport.TornReport as exc:
        return ReportRead(None, f"torn: {exc}")
    if published is None:
        return ReportRead(None, f"no {kind} report in the guest's KVP items")
    if token is not None and published.token != token:
        return ReportRead(None, f"stale: the {kind} report carries token {published.token!r}, not {token!r}")
    return ReportRead(published.report)


def has_report(items: dict[str, str], kind: str) -> bool:
    """Whether the guest ever published a report of this kind (whole or not)."""
    return kvpreport.header_key(kind) in items


def agent_absent(items: dict[str, str]) -> bool:
    """True when the items show that no hvbackup agent runs in the guest: no freeze report was ever
    published and the readiness report names the VSS daemons running, the agent not among them."""
    if kvpreport.header_key(kvpreport.FREEZE) in items:
        return False
    readiness = read_report(items, kvpreport.READINESS).report
    daemon = readiness.get("vss_daemon") if readiness else None
    if not isinstance(daemon, dict) or not isinstance(daemon.get("running"), dict):
        return False
    return AGENT_DAEMON not in daemon["running"]
