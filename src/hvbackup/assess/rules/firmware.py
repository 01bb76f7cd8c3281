"""Generation 2 Secure Boot template (docs/ASSESS.md §8)."""

from __future__ import annotations

from hvbackup.assess.finding import WARNING, Finding
from hvbackup.assess.remedies import ps, with_vm_off
from hvbackup.assess.rules.registry import Facts, rule

UEFI_CA_TEMPLATE = "MicrosoftUEFICertificateAuthority"
UEFI_CA_TEMPLATE_ID = "272e7447-90a4-4563-a4b9-8e4ab00526ce"


@rule(
    "secure-boot-template",
    'Secure Boot template not "Microsoft UEFI Certificate Authority"',
    WARNING,
    "docs/ASSESS.md §8",
)
def secure_boot_template(facts: Facts) -> list[Finding]:
    vm, firmware = facts.vm, facts.vm.firmware
    if vm.generation != 2 or firmware is None or not firmware.secure_boot:
        return []
    if firmware.secure_boot_template == UEFI_CA_TEMPLATE or firmware.secure_boot_template_id == UEFI_CA_TEMPLATE_ID:
        return []
    return [
        Finding(
            "secure-boot-template",
            f"Secure Boot uses the template {firmware.secure_boot_template or firmware.secure_boot_template_id}: "
            "Linux boot loaders are signed by the Microsoft UEFI CA, so a restored VM with this template does not boot",
            WARNING,
            f"SecureBoot=On, SecureBootTemplate={firmware.secure_boot_template}",
            with_vm_off(vm.name, f"Set-VMFirmware -VMName {ps(vm.name)} -SecureBootTemplate {UEFI_CA_TEMPLATE}"),
        )
    ]
