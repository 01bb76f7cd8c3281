# Operation: convert a recovery checkpoint into a reference point (the checkpoint is deleted, its
# differencing disks merged). Parameters: VmId, CheckpointId, WaitSeconds.
# Docs: Msvm_VirtualSystemSnapshotService.ConvertToReferencePoint(AffectedSnapshot, ReferencePointSettings,
#   ResultingReferencePoint, Job): "Only recovery snapshots can be converted"
#   [win32 desktop-src/HyperV_v2/msvm-virtualsystemsnapshotservice-converttoreferencepoint.md];
#   the reference point via Msvm_AffectedJobElement as Microsoft's sample does (Convert-VmBackupCheckpoint)
#   [Virtualization-Documentation hyperv-samples/taylorb-wmi/xhypervbackup];
#   Msvm_VirtualSystemReferencePoint properties [HyperV_v2/msvm-virtualsystemreferencepoint.md].
$snapshot = Get-HvSnapshotSettingData $HvParams.VmId $HvParams.CheckpointId
$service = Get-HvService 'Msvm_VirtualSystemSnapshotService'
$output = Invoke-HvMethod $service 'ConvertToReferencePoint' @{ AffectedSnapshot = $snapshot }
if ([int]$output.ReturnValue -eq 4096) {
    $job = Wait-HvJob $output.Job ([double]$HvParams.WaitSeconds)
    if (Test-HvJobRunning $job) {
        Write-HvResult (ConvertTo-HvPending $job 'reference_point')
        return
    }
    $point = Get-HvJobResult $job 'reference_point'
} else {
    $point = Get-CimInstance -InputObject $output.ResultingReferencePoint
}
Write-HvResult @{ ReferencePoint = (ConvertTo-HvReferencePoint $point) }
