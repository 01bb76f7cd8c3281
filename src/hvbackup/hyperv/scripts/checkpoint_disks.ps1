# Operation: the virtual disks of a checkpoint (their paths are the frozen files to read).
# Parameters: VmId, CheckpointId.
# Docs: Get-VMSnapshot -Id (VMSnapshot with HardDrives) [windows-powershell-docs docset/winserver2022-ps/
#   hyper-v/Get-VMSnapshot.md]; Get-VHD [.../hyper-v/Get-VHD.md] via ConvertTo-HvHardDrive in _prelude.ps1.
$snapshot = Get-VMSnapshot -Id ([guid]$HvParams.CheckpointId) -ErrorAction SilentlyContinue
if ($null -eq $snapshot -or "$($snapshot.VMId)" -ne ([guid]$HvParams.VmId).ToString()) {
    throw (New-HvError 'ObjectNotFound' "VM $($HvParams.VmId) has no checkpoint $($HvParams.CheckpointId)")
}
Write-HvResult @{ HardDrives = @($snapshot.HardDrives | ForEach-Object { ConvertTo-HvHardDrive $_ }) }
