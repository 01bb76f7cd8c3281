# Operation: check a WMI job that an earlier call left running; return its result once it is done.
# Parameters: JobId, ResultKind ('checkpoint', 'reference_point' or 'none'), WaitSeconds.
# Docs: Msvm_ConcreteJob (InstanceID, JobState, PercentComplete, ErrorCode, ErrorDescription)
#   [win32 desktop-src/HyperV_v2/msvm-concretejob.md]; Msvm_AffectedJobElement [HyperV_v2/msvm-affectedjobelement.md].
$jobId = "$($HvParams.JobId)"
if ($jobId -notmatch '^[A-Za-z0-9{}:-]+$') { throw (New-HvError 'ObjectNotFound' "not a job id: $jobId") }
$job = Get-CimInstance -Namespace $HvNamespace -ClassName Msvm_ConcreteJob -Filter "InstanceID='$jobId'"
if ($null -eq $job) { throw (New-HvError 'ObjectNotFound' "job $jobId no longer exists") }
$job = Wait-HvJob $job ([double]$HvParams.WaitSeconds)
if (Test-HvJobRunning $job) {
    Write-HvResult (ConvertTo-HvPending $job $HvParams.ResultKind)
    return
}
$result = Get-HvJobResult $job $HvParams.ResultKind
switch ($HvParams.ResultKind) {
    'checkpoint' { Write-HvResult @{ Checkpoint = (ConvertTo-HvCheckpointFromWmi $result) } }
    'reference_point' { Write-HvResult @{ ReferencePoint = (ConvertTo-HvReferencePoint $result) } }
    default { Write-HvResult @{ Done = $true } }
}
