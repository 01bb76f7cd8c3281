# Operation: the reference points of a VM. Parameters: VmId.
# Docs: association Msvm_ReferencePointOfVirtualSystem from Msvm_ComputerSystem, as in Microsoft's
#   sample (Get-VmReferencePoints) [Virtualization-Documentation hyperv-samples/taylorb-wmi/xhypervbackup];
#   Msvm_VirtualSystemReferencePoint [win32 desktop-src/HyperV_v2/msvm-virtualsystemreferencepoint.md].
$system = Get-HvComputerSystem $HvParams.VmId
$points = @(Get-CimAssociatedInstance -InputObject $system -Association Msvm_ReferencePointOfVirtualSystem)
Write-HvResult @{ ReferencePoints = @($points | ForEach-Object { ConvertTo-HvReferencePoint $_ }) }
