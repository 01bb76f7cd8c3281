"""Network adapters: synthetic hv_netvsc vs the emulated legacy adapter (tulip), docs/GUEST.md §11."""

from __future__ import annotations

from hvbackup.guest.readiness.findings import Finding, GuestTree

LEGACY_DRIVERS = {"tulip", "de2104x"}
VIRTUAL_IFACES = ("lo", "bond", "br", "docker", "veth", "virbr", "tun", "tap", "wg", "vxlan")


def nic_inventory(tree: GuestTree) -> list[dict[str, str]]:
    nics = []
    for name in tree.listdir("/sys/class/net"):
        if name.startswith(VIRTUAL_IFACES) or not tree.exists(f"/sys/class/net/{name}/device"):
            continue
        driver = tree.link_name(f"/sys/class/net/{name}/device/driver") or "unknown"
        kind = "synthetic" if driver == "hv_netvsc" else "legacy" if driver in LEGACY_DRIVERS else "other"
        nics.append({"name": name, "driver": driver, "kind": kind})
    return nics


def check_legacy_nics(tree: GuestTree) -> list[Finding]:
    return [
        Finding(
            "legacy-nic",
            "warning",
            f"{nic['name']} is the emulated legacy network adapter",
            f"driver {nic['driver']} (DEC 21140 emulation): slow, Generation 1 only",
            "on the Hyper-V host: Remove-VMNetworkAdapter -VMName <vm> -Name <legacy adapter> ; "
            "Add-VMNetworkAdapter -VMName <vm> -SwitchName <switch>",
        )
        for nic in nic_inventory(tree)
        if nic["kind"] == "legacy"
    ]


def check_mixed_nics(tree: GuestTree) -> list[Finding]:
    nics = nic_inventory(tree)
    kinds = {n["kind"] for n in nics}
    if {"legacy", "synthetic"} <= kinds:
        names = ", ".join(f"{n['name']} ({n['driver']})" for n in nics)
        return [
            Finding(
                "mixed-nics",
                "warning",
                "Legacy and synthetic network adapters are mixed",
                f"{names}; interface names can come up as _tmpNNN after a restore",
                "on the Hyper-V host: Get-VMNetworkAdapter -VMName <vm> | Where-Object IsLegacy | "
                "Remove-VMNetworkAdapter",
            )
        ]
    return []
