# Operation: put one key/value item into the guest's host->guest pool (KVP pool 0).
# Parameters: VmId, Name, Data.
# Docs: Msvm_VirtualSystemManagementService.ModifyKvpItems(TargetSystem, DataItems[], Job) fails when
#   the item does not exist, AddKvpItems when it does; each DataItems element is an embedded
#   Msvm_KvpExchangeDataItem with Name, Data and Source 0 (host) [win32 desktop-src/HyperV_v2/
#   modifykvpitems-msvm-virtualsystemmanagementservice.md, addkvpitems-msvm-virtualsystemmanagementservice.md,
#   msvm-kvpexchangedataitem.md]; New-CimInstance -ClientOnly [PS51 CimCmdlets] (docs/HYPERV.md §13).
$system = Get-HvComputerSystem $HvParams.VmId
$service = Get-HvService 'Msvm_VirtualSystemManagementService'
$item = New-CimInstance -Namespace $HvNamespace -ClassName Msvm_KvpExchangeDataItem -ClientOnly -Property @{
    Name = "$($HvParams.Name)"; Data = "$($HvParams.Data)"; Source = [uint16]0 }
$arguments = @{ TargetSystem = $system; DataItems = @(ConvertTo-HvEmbeddedInstance $item) }
$method = 'ModifyKvpItems'
try {
    $output = Invoke-HvMethod $service $method $arguments
    if ([int]$output.ReturnValue -eq 4096) { $null = Wait-HvJob $output.Job 60 }
} catch {
    $method = 'AddKvpItems'
    $output = Invoke-HvMethod $service $method $arguments
    if ([int]$output.ReturnValue -eq 4096) { $null = Wait-HvJob $output.Job 60 }
}
Write-HvResult @{ VMId = "$($system.Name)"; Name = "$($HvParams.Name)"; Method = $method }
