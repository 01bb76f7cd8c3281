# Operation: give a checkpoint our name (so a later run recognises what it left behind).
# Parameters: VmId, CheckpointId, Name.
# Docs: Msvm_SnapshotOfVirtualSystem association [win32 desktop-src/HyperV_v2/msvm-snapshotofvirtualsystem.md];
#   Msvm_VirtualSystemManagementService.ModifySystemSettings(SystemSettings, Job) with the changed
#   ElementName as an embedded instance [win32 desktop-src/HyperV_v2/modifysystemsettings-msvm-virtualsystemmanagementservice.md].
$snapshot = Get-HvSnapshotSettingData $HvParams.VmId $HvParams.CheckpointId
$snapshot.ElementName = "$($HvParams.Name)"
$service = Get-HvService 'Msvm_VirtualSystemManagementService'
$output = Invoke-HvMethod $service 'ModifySystemSettings' @{ SystemSettings = (ConvertTo-HvEmbeddedInstance $snapshot) }
if ([int]$output.ReturnValue -eq 4096) { $null = Wait-HvJob $output.Job 60 }
$snapshot = Get-HvSnapshotSettingData $HvParams.VmId $HvParams.CheckpointId
Write-HvResult @{ Checkpoint = (ConvertTo-HvCheckpointFromWmi $snapshot) }
