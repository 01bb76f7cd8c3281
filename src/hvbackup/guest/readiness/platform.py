"""Hyper-V detection (docs/GUEST.md §9), hv modules (§8), the VSS device (§9) and daemon (§10)."""

from __future__ import annotations

from typing import Any

from hvbackup.guest.readiness.findings import Finding, GuestTree

VSS_CLASS = "35fa2e29-ea23-4236-96ae-3a6ebacba440"
STOCK_DAEMONS = {"hv_vss_daemon": "Debian/Ubuntu/Arch", "hypervvssd": "RHEL/Fedora/SUSE"}
STOCK_UNITS = (
    "hv-vss-daemon.service",
    "hypervvssd.service",
    "hv_vss_daemon.service",
    "hyperv-daemons.hv-vss-daemon.service",
)
UNIT_DIRS = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
REQUIRED_MODULES = ("hv_vmbus", "hv_utils", "hv_storvsc", "hv_netvsc")


def vmbus_classes(tree: GuestTree) -> list[str]:
    classes = []
    for dev in tree.listdir("/sys/bus/vmbus/devices"):
        class_id = (tree.read(f"/sys/bus/vmbus/devices/{dev}/class_id") or "").strip().strip("{}").lower()
        if class_id:
            classes.append(class_id)
    return classes


def detect_hyperv(tree: GuestTree) -> dict[str, Any]:
    vendor = (tree.read("/sys/class/dmi/id/sys_vendor") or "").strip()
    product = (tree.read("/sys/class/dmi/id/product_name") or "").strip()
    vmbus = vmbus_classes(tree)
    dmi = vendor == "Microsoft Corporation" and product == "Virtual Machine"
    evidence = f"DMI sys_vendor={vendor!r} product_name={product!r}; {len(vmbus)} VMBus device(s)"
    return {"hyperv": bool(vmbus) or dmi, "evidence": evidence}


def loaded_modules(tree: GuestTree) -> set[str]:
    names = {line.split()[0] for line in (tree.read("/proc/modules") or "").splitlines() if line.strip()}
    return names | set(tree.listdir("/sys/module"))  # built-in drivers appear only in /sys/module


def check_hv_modules(tree: GuestTree) -> list[Finding]:
    missing = [m for m in REQUIRED_MODULES if m not in loaded_modules(tree)]
    if not missing:
        return []
    return [
        Finding(
            "hv-modules-missing",
            "blocker" if "hv_utils" in missing else "warning",
            "Hyper-V kernel modules are not loaded",
            f"missing: {', '.join(missing)}",
            f"modprobe -a {' '.join(missing)} && printf '%s\\n' {' '.join(missing)} >> /etc/modules-load.d/hyperv.conf",
        )
    ]


def check_vss_device(tree: GuestTree) -> list[Finding]:
    if VSS_CLASS not in vmbus_classes(tree):
        return [
            Finding(
                "vss-ic-disabled",
                "blocker",
                "The host does not offer the Backup (volume shadow copy) integration service",
                f"no VMBus device of class {VSS_CLASS}",
                "on the Hyper-V host: Enable-VMIntegrationService -VMName <vm> -Name 'Backup (volume shadow copy)'",
            )
        ]
    if not tree.exists("/dev/vmbus/hv_vss"):
        return [
            Finding(
                "vss-device-missing",
                "blocker",
                "/dev/vmbus/hv_vss does not exist",
                "the VSS VMBus device is offered but hv_utils did not create the device "
                "(hv_utils not loaded, or a host older than Windows Server 2012 R2)",
                "modprobe hv_utils",
            )
        ]
    return []


def running_daemons(tree: GuestTree) -> dict[str, int]:
    found = {}
    for pid in tree.listdir("/proc"):
        if pid.isdigit():
            comm = (tree.read(f"/proc/{pid}/comm") or "").strip()
            cmdline = (tree.read(f"/proc/{pid}/cmdline") or "").replace("\0", " ")
            if comm in STOCK_DAEMONS:
                found[comm] = int(pid)
            elif "hvbackup-guest" in cmdline and " vssd" in cmdline:
                found["hvbackup-guest"] = int(pid)
    return found


def installed_units(tree: GuestTree) -> dict[str, str]:
    """Stock VSS units present, and whether masked (a link to /dev/null)."""
    units: dict[str, str] = {}
    for directory in UNIT_DIRS:
        for unit in (*STOCK_UNITS, "hvbackup-guest.service"):
            path = f"{directory}/{unit}"
            if tree.exists(path) and unit not in units:
                masked = tree.link_name(path) == "null"
                units[unit] = "masked" if masked else "installed"
            elif tree.exists(path) and tree.link_name(path) == "null":
                units[unit] = "masked"
    return units


def vss_daemon_inventory(tree: GuestTree) -> dict[str, Any]:
    return {"running": running_daemons(tree), "units": installed_units(tree)}


def check_vss_daemon(tree: GuestTree) -> list[Finding]:
    running = running_daemons(tree)
    units = installed_units(tree)
    if "hvbackup-guest" in running:
        return []
    if running:
        name = next(iter(running))
        unit = next((u for u, s in units.items() if s == "installed" and u != "hvbackup-guest.service"), name)
        return [
            Finding(
                "stock-vss-daemon",
                "advice",
                f"The stock VSS daemon {name} is running "
                f"({STOCK_DAEMONS[name]} name): backups are filesystem-consistent only",
                f"{name} pid {running[name]}; unit {unit}",
                "hvbackup-guest install   # replaces it (Conflicts=, masks the stock unit)",
            )
        ]
    return [
        Finding(
            "no-vss-daemon",
            "blocker",
            "No VSS daemon is running: Hyper-V live backups fail or fall back to saved state",
            f"no hv_vss_daemon, hypervvssd or hvbackup-guest process; units: "
            f"{', '.join(f'{u} ({s})' for u, s in units.items()) or 'none'}",
            "hvbackup-guest install",
        )
    ]
