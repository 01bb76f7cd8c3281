# Operation: ask the guest to shut down cleanly; returns once the request is accepted. Parameters: VmId, Reason.
# Docs: Msvm_ShutdownComponent.InitiateShutdown(Force, Reason) (32780 system not ready, 32782 shutdown
#   in progress) [win32 desktop-src/HyperV_v2/msvm-shutdowncomponent-initiateshutdown.md]; the component
#   is found by SystemName = VM GUID as OpenStack os-win does [openstack/os-win vmutils].
$system = Get-HvComputerSystem $HvParams.VmId
$component = Get-CimInstance -Namespace $HvNamespace -ClassName Msvm_ShutdownComponent -Filter "SystemName='$($system.Name)'"
if ($null -eq $component) {
    throw (New-HvError 'InvalidVmState' "VM $($system.ElementName) has no working Shutdown integration service")
}
$output = Invoke-HvMethod $component 'InitiateShutdown' @{ Force = $false; Reason = "$($HvParams.Reason)" }
Write-HvResult @{ Done = $true }
