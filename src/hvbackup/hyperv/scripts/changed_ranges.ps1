# Operation: changed byte ranges of a virtual disk since an RCT id, for part of the disk.
# Parameters: Path, LimitId, ByteOffset, ByteLength (0 = to the end), MaxRanges, MaxSeconds.
# Docs: Msvm_ImageManagementService.GetVirtualDiskChanges(Path, LimitId, TargetSnapshotId, ByteOffset,
#   ByteLength, ProcessedByteLength, ChangedByteOffsets, ChangedByteLengths, Job); ProcessedByteLength
#   may be less than ByteLength, so the caller repeats from ByteOffset + ProcessedByteLength
#   [win32 desktop-src/HyperV_v2/msvm-imagemanagementservice-getvirtualdiskchanges.md; sdk-api
#   virtdisk/nf-virtdisk-querychangesvirtualdisk.md]; virtual size from Get-VHD [.../hyper-v/Get-VHD.md].
# Several queries are made in one call, within MaxRanges and MaxSeconds, to save round trips.
# TargetSnapshotId is left out (changes up to the disk's current state, which is the frozen file's):
# an empty string is not an absent value. Every failure, 32779 (file not found), a failed job or a
# CIM exception alike, is ChangeTrackingUnavailable: the caller reads the disk fully (docs/HYPERV.md §17).
try {
    $size = [uint64](Get-VHD -Path $HvParams.Path).Size
    $offset = [uint64]$HvParams.ByteOffset
    $end = $size
    if ([uint64]$HvParams.ByteLength -gt 0) { $end = [Math]::Min($size, $offset + [uint64]$HvParams.ByteLength) }
    $service = Get-HvService 'Msvm_ImageManagementService'
    $offsets = New-Object System.Collections.Generic.List[uint64]
    $lengths = New-Object System.Collections.Generic.List[uint64]
    $deadline = (Get-Date).AddSeconds([double]$HvParams.MaxSeconds)
    $start = $offset
    while ($offset -lt $end -and $offsets.Count -lt [int]$HvParams.MaxRanges -and (Get-Date) -lt $deadline) {
        $output = Invoke-CimMethod -InputObject $service -MethodName GetVirtualDiskChanges -Arguments @{
            Path = "$($HvParams.Path)"; LimitId = "$($HvParams.LimitId)"
            ByteOffset = [uint64]$offset; ByteLength = [uint64]($end - $offset)
        }
        $code = [int]$output.ReturnValue
        if ($code -eq 4096) { $null = Wait-HvJob $output.Job 300 }
        elseif ($code -ne 0) {
            throw (New-HvError 'ChangeTrackingUnavailable' "GetVirtualDiskChanges returned $code ($(Get-HvReturnText $code))" @{ code = $code })
        }
        $processed = [uint64]$output.ProcessedByteLength
        if ($processed -eq 0) { break }
        foreach ($value in @($output.ChangedByteOffsets)) { if ($null -ne $value) { $offsets.Add([uint64]$value) } }
        foreach ($value in @($output.ChangedByteLengths)) { if ($null -ne $value) { $lengths.Add([uint64]$value) } }
        $offset = $offset + $processed
    }
} catch {
    $failure = $_.Exception
    if ($failure.Data.Contains('hvKind') -and $failure.Data['hvKind'] -eq 'ChangeTrackingUnavailable') { throw }
    throw (New-HvError 'ChangeTrackingUnavailable' "GetVirtualDiskChanges failed for $($HvParams.Path): $($failure.Message)")
}
Write-HvResult ([ordered]@{
    VirtualSize = $size; ByteOffset = $start; ProcessedByteLength = ($offset - $start)
    ChangedByteOffsets = $offsets.ToArray(); ChangedByteLengths = $lengths.ToArray()
})
