# Operation: delete a checkpoint (its differencing disks are merged). Parameters: VmId, CheckpointId, WaitSeconds.
# Docs: Msvm_VirtualSystemSnapshotService.DestroySnapshot(AffectedSnapshot, Job) "may, as a side effect,
#   destroy other snapshots that are dependent" [win32 desktop-src/HyperV_v2/msvm-virtualsystemsnapshotservice.md,
#   destroysnapshot-msvm-virtualsystemsnapshotservice.md].
$snapshot = Get-HvSnapshotSettingData $HvParams.VmId $HvParams.CheckpointId
$service = Get-HvService 'Msvm_VirtualSystemSnapshotService'
$output = Invoke-HvMethod $service 'DestroySnapshot' @{ AffectedSnapshot = $snapshot }
if ([int]$output.ReturnValue -eq 4096) {
    $job = Wait-HvJob $output.Job ([double]$HvParams.WaitSeconds)
    if (Test-HvJobRunning $job) {
        Write-HvResult (ConvertTo-HvPending $job 'none')
        return
    }
}
Write-HvResult @{ Done = $true }
