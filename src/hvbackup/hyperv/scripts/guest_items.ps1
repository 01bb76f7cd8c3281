# Operation: the key/value items the guest publishes for the host (its KVP pool 1), as embedded instances.
# Parameters: VmId, or VmName (one VM of that name).
# Docs: Msvm_ComputerSystem (ElementName = display name, Caption 'Virtual Machine' for a VM)
#   [win32 desktop-src/HyperV_v2/msvm-computersystem.md]; Msvm_KvpExchangeComponent.GuestExchangeItems, an array of embedded Msvm_KvpExchangeDataItem
#   instances (Name, Data, Source) [win32 desktop-src/HyperV_v2/msvm-kvpexchangecomponent.md,
#   msvm-kvpexchangedataitem.md], reached from the VM through Msvm_SystemDevice as Get-HvGuestItems
#   does; the XML is returned as is and parsed by hyperv/kvp.py (docs/HYPERV.md §13).
if ($HvParams.VmId) {
    $system = Get-HvComputerSystem $HvParams.VmId
} else {
    $name = "$($HvParams.VmName)"  # compared in PowerShell, never put into a WQL filter
    $systems = @(Get-CimInstance -Namespace $HvNamespace -ClassName Msvm_ComputerSystem |
        Where-Object { $_.Caption -eq 'Virtual Machine' -and $_.ElementName -ceq $name })
    if ($systems.Count -ne 1) { throw (New-HvError 'VmNotFound' "$($systems.Count) VMs are named '$($HvParams.VmName)'") }
    $system = $systems[0]
}
$kvp = Get-CimAssociatedInstance -InputObject $system -Association Msvm_SystemDevice -ResultClassName Msvm_KvpExchangeComponent |
    Select-Object -First 1
$items = @()
if ($null -ne $kvp) { $items = @($kvp.GuestExchangeItems | Where-Object { $_ }) }
Write-HvResult @{ VMId = "$($system.Name)"; GuestExchangeItems = $items }
