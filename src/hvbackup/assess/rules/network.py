"""Network adapters: legacy vs synthetic, static MACs on clustered VMs (docs/ASSESS.md §6; docs/GUEST.md §11)."""

from __future__ import annotations

from hvbackup.assess.finding import WARNING, Finding
from hvbackup.assess.remedies import ps, with_vm_off
from hvbackup.assess.rules.registry import Facts, rule
from hvbackup.hyperv.model import NetworkAdapter


def _mac(adapter: NetworkAdapter) -> str:
    return adapter.mac_address.replace(":", "").replace("-", "").upper()


def _replace_legacy(vm: str, adapter: NetworkAdapter) -> str:
    """Remove the legacy adapter, add a synthetic one on the same switch with the same MAC."""
    add = f"Add-VMNetworkAdapter -VMName {ps(vm)}"
    if adapter.switch_name:
        add += f" -SwitchName {ps(adapter.switch_name)}"
    add += f" -StaticMacAddress {ps(_mac(adapter))}"
    return with_vm_off(vm, f"Remove-VMNetworkAdapter -VMName {ps(vm)} -Name {ps(adapter.name)}", add)


@rule("legacy-nic", "Legacy (emulated) network adapter", WARNING, "docs/ASSESS.md §6; docs/GUEST.md §11")
def legacy_nic(facts: Facts) -> list[Finding]:
    vm = facts.vm
    return [
        Finding(
            "legacy-nic",
            f"{adapter.name} is the emulated legacy adapter: slow, and its interface name can change between boots",
            WARNING,
            f"IsLegacy=True, MAC {_mac(adapter)}, switch {adapter.switch_name or 'none'}",
            _replace_legacy(vm.name, adapter),
        )
        for adapter in vm.network_adapters
        if adapter.is_legacy
    ]


@rule("mixed-nics", "Legacy and synthetic adapters mixed", WARNING, "docs/ASSESS.md §6; docs/GUEST.md §11")
def mixed_nics(facts: Facts) -> list[Finding]:
    adapters = facts.vm.network_adapters
    legacy = [a for a in adapters if a.is_legacy]
    if not legacy or len(legacy) == len(adapters):
        return []
    kinds = ", ".join(f"{a.name} ({'legacy' if a.is_legacy else 'synthetic'})" for a in adapters)
    return [
        Finding(
            "mixed-nics",
            "Legacy and synthetic adapters side by side: the guest can rename interfaces at random (_tmpNNN) "
            "and lose the network a backup or restore relies on",
            WARNING,
            kinds,
            with_vm_off(
                facts.vm.name,
                *(f"Remove-VMNetworkAdapter -VMName {ps(facts.vm.name)} -Name {ps(a.name)}" for a in legacy),
            ),
        )
    ]


@rule("clustered-dynamic-mac", "Clustered VM with a dynamic MAC", WARNING, "docs/ASSESS.md §6")
def clustered_dynamic_mac(facts: Facts) -> list[Finding]:
    vm = facts.vm
    if not vm.is_clustered:
        return []
    return [
        Finding(
            "clustered-dynamic-mac",
            f"{adapter.name} has a dynamic MAC on a clustered VM: after a failover it can change and the guest "
            "loses its network configuration",
            WARNING,
            f"IsClustered=True, DynamicMacAddressEnabled=True, current MAC {_mac(adapter)}",
            f"Set-VMNetworkAdapter -VMName {ps(vm.name)} -Name {ps(adapter.name)} -StaticMacAddress {ps(_mac(adapter))}"
            "  # while the VM is off",
        )
        for adapter in vm.network_adapters
        if adapter.dynamic_mac
    ]
