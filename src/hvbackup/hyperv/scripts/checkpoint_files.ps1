# Operation: the configuration files of a checkpoint, which a backup reads like disks. Parameters: VmId, CheckpointId.
# Docs: Msvm_VirtualSystemSettingData ConfigurationDataRoot, ConfigurationFile (the .vmcx, relative to the root),
#   GuestStateDataRoot, GuestStateFile (the .vmgs) [win32 desktop-src/HyperV_v2/msvm-virtualsystemsettingdata.md];
#   a saved VM's memory state is the .vmrs beside the .vmcx (docs/HYPERV.md §14). Only files that exist are named.
$snapshot = Get-HvSnapshotSettingData $HvParams.VmId $HvParams.CheckpointId
$candidates = @()
if ($snapshot.ConfigurationFile) {
    $vmcx = Join-Path "$($snapshot.ConfigurationDataRoot)" "$($snapshot.ConfigurationFile)"
    $candidates += ,@('vmcx', $vmcx)
    $candidates += ,@('vmrs', [System.IO.Path]::ChangeExtension($vmcx, '.vmrs'))
}
if ($snapshot.GuestStateFile) {
    $candidates += ,@('vmgs', (Join-Path "$($snapshot.GuestStateDataRoot)" "$($snapshot.GuestStateFile)"))
}
$files = @(foreach ($pair in $candidates) {
    $item = Get-Item -LiteralPath $pair[1] -ErrorAction SilentlyContinue
    if ($item) { [ordered]@{ Kind = $pair[0]; Path = "$($item.FullName)"; Size = [int64]$item.Length } }
})
Write-HvResult @{ Files = $files }
