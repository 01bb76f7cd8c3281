"""Remedy commands with the VM's real names filled in, quoted so they can be pasted as they are."""

from __future__ import annotations


def ps(value: str) -> str:
    """A PowerShell single-quoted string literal ('' escapes a quote)."""
    return "'" + value.replace("'", "''") + "'"


def sh(value: str) -> str:
    """A POSIX shell single-quoted word."""
    return "'" + value.replace("'", "'\\''") + "'"


def enable_service(vm: str, service: str) -> str:
    return f"Enable-VMIntegrationService -VMName {ps(vm)} -Name {ps(service)}"


def with_vm_off(vm: str, *commands: str) -> str:
    """Commands Hyper-V accepts only while the VM is off, wrapped in a clean shutdown and start."""
    return "; ".join((f"Stop-VM -Name {ps(vm)}", *commands, f"Start-VM -Name {ps(vm)}"))


def update_version(vm: str) -> str:
    return with_vm_off(vm, f"Update-VMVersion -Name {ps(vm)} -Force")


LOAD_HV_UTILS = "modprobe hv_utils && echo hv_utils > /etc/modules-load.d/hv_utils.conf"
"""Load the kernel module behind heartbeat, shutdown, time sync and VSS, and at every boot (docs/GUEST.md §8)."""
