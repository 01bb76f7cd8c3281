# Operation: import a copy of a VM from a captured configuration file, with a new id; it is left Off.
# Parameters: Path (the .vmcx on the host), Destination (folder for the copy's files), Name (the new VM's name).
# Docs: Compare-VM -Path -Copy -GenerateNewId -VirtualMachinePath -VhdDestinationPath -SnapshotFilePath
#   -SmartPagingFilePath returns a compatibility report whose Incompatibilities (Message, MessageId) must be empty
#   before Import-VM -CompatibilityReport imports it [windows-powershell-docs docset/winserver2022-ps/hyper-v/
#   Compare-VM.md, Import-VM.md]; Rename-VM -NewName [.../Rename-VM.md] (docs/HYPERV.md §14).
$destination = "$($HvParams.Destination)"
$report = Compare-VM -Path "$($HvParams.Path)" -Copy -GenerateNewId -VirtualMachinePath $destination `
    -VhdDestinationPath $destination -SnapshotFilePath $destination -SmartPagingFilePath $destination
$problems = @($report.Incompatibilities | ForEach-Object { "$($_.MessageId): $($_.Message)" })
if ($problems.Count -gt 0) {
    throw (New-HvError 'InvalidVmState' ("the host cannot import this configuration: " + ($problems -join '; ')))
}
$vm = Import-VM -CompatibilityReport $report
Rename-VM -VM $vm -NewName "$($HvParams.Name)"
Write-HvResult @{ VM = (ConvertTo-HvVm (Get-HvVm "$($vm.VMId)")) }
