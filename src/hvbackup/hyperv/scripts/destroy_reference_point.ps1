# Operation: delete a reference point. Parameters: VmId, ReferencePointId, WaitSeconds.
# Docs: Msvm_VirtualSystemReferencePointService.DestroyReferencePoint(AffectedReferencePoint, Job)
#   [win32 desktop-src/HyperV_v2/msvm-virtualsystemreferencepointservice-destroyreferencepoint.md];
#   Microsoft's sample Remove-VmReferencePoint [hyperv-samples/taylorb-wmi/xhypervbackup].
$point = Get-HvReferencePoint $HvParams.VmId $HvParams.ReferencePointId
$service = Get-HvService 'Msvm_VirtualSystemReferencePointService'
$output = Invoke-HvMethod $service 'DestroyReferencePoint' @{ AffectedReferencePoint = $point }
if ([int]$output.ReturnValue -eq 4096) {
    $job = Wait-HvJob $output.Job ([double]$HvParams.WaitSeconds)
    if (Test-HvJobRunning $job) {
        Write-HvResult (ConvertTo-HvPending $job 'none')
        return
    }
}
Write-HvResult @{ Done = $true }
