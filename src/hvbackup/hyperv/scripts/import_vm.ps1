# Operation: import a copy of a VM from a captured configuration file, with a new id; it is left Off.
# Parameters: Path (the .vmcx on the host), Destination (folder for the copy's files), Name (the new VM's name),
#   Config (hvbackup VmConfig JSON: its disks' controller addresses, its adapters' switch and MAC choice),
#   DiskPaths (the restored disks, in the order of Config.disks).
# Docs: Compare-VM -Path -Copy -GenerateNewId -VirtualMachinePath -VhdDestinationPath -SnapshotFilePath
#   -SmartPagingFilePath returns a compatibility report (VM, Incompatibilities with Message and MessageId); the
#   report's VM is changed to resolve them (Set-VMHardDiskDrive -Path, Connect-VMNetworkAdapter -SwitchName) and
#   Import-VM -CompatibilityReport imports it [windows-powershell-docs docset/winserver2022-ps/hyper-v/Compare-VM.md,
#   Import-VM.md, Set-VMHardDiskDrive.md, Connect-VMNetworkAdapter.md]; Rename-VM -NewName; Set-VMNetworkAdapter
#   -DynamicMacAddress / -StaticMacAddress [.../Rename-VM.md, Set-VMNetworkAdapter.md] (docs/HYPERV.md §14).
$config = $HvParams.Config
$diskPaths = @($HvParams.DiskPaths)
$destination = "$($HvParams.Destination)"
$report = Compare-VM -Path "$($HvParams.Path)" -Copy -GenerateNewId -VirtualMachinePath $destination `
    -VhdDestinationPath $destination -SnapshotFilePath $destination -SmartPagingFilePath $destination
$disks = @($config.disks)
for ($i = 0; $i -lt $disks.Count; $i++) {
    $disk = $disks[$i]
    Get-VMHardDiskDrive -VM $report.VM -ControllerType "$($disk.controller_type.name)" `
        -ControllerNumber ([int]$disk.controller_number) -ControllerLocation ([int]$disk.controller_location) |
        Set-VMHardDiskDrive -Path "$($diskPaths[$i])"
}
$nics = @($config.network_adapters)
$adapters = @(Get-VMNetworkAdapter -VM $report.VM)
for ($i = 0; $i -lt [Math]::Min($nics.Count, $adapters.Count); $i++) {
    if ($nics[$i].switch_name) { Connect-VMNetworkAdapter -VMNetworkAdapter $adapters[$i] -SwitchName "$($nics[$i].switch_name)" }
}
$report = Compare-VM -CompatibilityReport $report
$problems = @($report.Incompatibilities | ForEach-Object { "$($_.MessageId): $($_.Message)" })
if ($problems.Count -gt 0) {
    throw (New-HvError 'InvalidVmState' ("the host cannot import this configuration: " + ($problems -join '; ')))
}
$vm = Import-VM -CompatibilityReport $report
try {
    Rename-VM -VM $vm -NewName "$($HvParams.Name)"
    $adapters = @(Get-VMNetworkAdapter -VM $vm)
    for ($i = 0; $i -lt [Math]::Min($nics.Count, $adapters.Count); $i++) {
        if ($nics[$i].dynamic_mac) { Set-VMNetworkAdapter -VMNetworkAdapter $adapters[$i] -DynamicMacAddress }
    }
} catch {
    Remove-VM -VM $vm -Force
    throw
}
Write-HvResult @{ VM = (ConvertTo-HvVm (Get-HvVm "$($vm.VMId)")) }
