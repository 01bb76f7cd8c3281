# Operation: every VM (or one, by id) with disks, NICs, integration services, firmware, checkpoints.
# Parameters: VmId (optional GUID).
# Docs: Get-VM (VMId, Name, State, Generation, Version, IsClustered, CheckpointType, Heartbeat, ...)
#   [windows-powershell-docs docset/winserver2022-ps/hyper-v/Get-VM.md]; the per-VM cmdlets and
#   Msvm_KvpExchangeComponent used by ConvertTo-HvVm are cited in _prelude.ps1.
if ($HvParams.VmId) {
    $vms = @(Get-HvVm $HvParams.VmId)
} else {
    $vms = @(Get-VM)
}
Write-HvResult @{ VMs = @($vms | ForEach-Object { ConvertTo-HvVm $_ }) }
