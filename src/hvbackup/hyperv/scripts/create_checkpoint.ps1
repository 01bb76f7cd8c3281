# Operation: create a recovery checkpoint (backup snapshot) of a VM.
# Parameters: VmId, ConsistencyLevel (1 application, 2 crash), IgnoreNonSnapshottableDisks (bool),
#   Name (ElementName to give the checkpoint), WaitSeconds.
# Docs: Msvm_VirtualSystemSnapshotService.CreateSnapshot(AffectedSystem, SnapshotSettings, SnapshotType,
#   ResultingSnapshot, Job) [win32 desktop-src/HyperV_v2/createsnapshot-msvm-virtualsystemsnapshotservice.md];
#   SnapshotType 32768 = recovery snapshot as Microsoft's sample passes it [Virtualization-Documentation
#   hyperv-samples/taylorb-wmi/xhypervbackup New-VmBackupCheckpoint];
#   Msvm_VirtualSystemSnapshotSettingData (ConsistencyLevel uint8, IgnoreNonSnapshottableDisks)
#   [HyperV_v2/msvm-virtualsystemsnapshotsettingdata.md];
#   result via Msvm_AffectedJobElement from the job [xhypervbackup; HyperV_v2/msvm-concretejob.md];
#   renaming with Msvm_VirtualSystemManagementService.ModifySystemSettings(SystemSettings)
#   [HyperV_v2/modifysystemsettings-msvm-virtualsystemmanagementservice.md].
$system = Get-HvComputerSystem $HvParams.VmId
$service = Get-HvService 'Msvm_VirtualSystemSnapshotService'
$settings = New-CimInstance -Namespace $HvNamespace -ClassName Msvm_VirtualSystemSnapshotSettingData -ClientOnly -Property @{
    ConsistencyLevel = [byte]$HvParams.ConsistencyLevel
    IgnoreNonSnapshottableDisks = [bool]$HvParams.IgnoreNonSnapshottableDisks
}
$output = Invoke-HvMethod $service 'CreateSnapshot' @{
    AffectedSystem = $system
    SnapshotSettings = (ConvertTo-HvEmbeddedInstance $settings)
    SnapshotType = [uint16]32768
}
if ($null -ne $output.Job -and [int]$output.ReturnValue -eq 4096) {
    $job = Wait-HvJob $output.Job ([double]$HvParams.WaitSeconds)
    if (Test-HvJobRunning $job) {
        Write-HvResult (ConvertTo-HvPending $job 'checkpoint')
        return
    }
    $snapshot = Get-HvJobResult $job 'checkpoint'
} else {
    $snapshot = Get-CimInstance -InputObject $output.ResultingSnapshot
}
Write-HvResult @{ Checkpoint = (ConvertTo-HvCheckpointFromWmi $snapshot) }
