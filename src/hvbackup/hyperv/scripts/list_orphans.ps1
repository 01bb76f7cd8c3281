# Operation: what earlier backups may have left for a VM: recovery checkpoints, checkpoints named
# hvbackup-*, and .avhdx files in the VM's disk folders that no disk chain on this host uses.
# Parameters: VmId, Prefix.
# Docs: Get-VMSnapshot -SnapshotType Recovery [windows-powershell-docs docset/winserver2022-ps/hyper-v/
#   Get-VMSnapshot.md]; Get-VMHardDiskDrive, Get-VHD (ParentPath) [.../Get-VMHardDiskDrive.md, Get-VHD.md];
#   differencing disks of checkpoints live "in the same folder as their parent" (docs/HYPERV.md §3);
#   Get-ChildItem -LiteralPath -Filter -File [PowerShell-Docs reference/5.1/Microsoft.PowerShell.Management/Get-ChildItem.md].
$vm = Get-HvVm $HvParams.VmId
$orphans = New-Object System.Collections.Generic.List[object]
foreach ($snapshot in @(Get-VMSnapshot -VM $vm)) {
    $kind = $null
    if ("$($snapshot.SnapshotType)" -eq 'Recovery') { $kind = 'recovery-checkpoint' }
    elseif ("$($snapshot.Name)".StartsWith("$($HvParams.Prefix)")) { $kind = 'checkpoint' }
    if ($kind) {
        $orphans.Add([ordered]@{ Kind = $kind; VMId = "$($vm.VMId)"; VMName = "$($vm.Name)"; Id = "$($snapshot.Id)"
            Name = "$($snapshot.Name)"; CreationTime = (ConvertTo-HvTime $snapshot.CreationTime)
            Detail = "$($snapshot.SnapshotType) checkpoint" })
    }
}
# Every file any disk chain on this host uses: current drives and checkpoint drives, with parents.
$used = New-Object 'System.Collections.Generic.HashSet[string]' ([StringComparer]::OrdinalIgnoreCase)
$folders = New-Object 'System.Collections.Generic.HashSet[string]' ([StringComparer]::OrdinalIgnoreCase)
$allDrives = @(Get-VM | ForEach-Object { Get-VMHardDiskDrive -VM $_; Get-VMSnapshot -VM $_ | ForEach-Object { $_.HardDrives } })
foreach ($drive in $allDrives) {
    $path = "$($drive.Path)"
    while ($path -and $null -eq $drive.DiskNumber -and $used.Add($path)) {
        try { $path = "$((Get-VHD -Path $path).ParentPath)" } catch { $path = '' }
    }
}
foreach ($drive in @(Get-VMHardDiskDrive -VM $vm)) {
    if ($null -eq $drive.DiskNumber -and $drive.Path) { $null = $folders.Add([System.IO.Path]::GetDirectoryName("$($drive.Path)")) }
}
foreach ($folder in $folders) {
    foreach ($file in @(Get-ChildItem -LiteralPath $folder -Filter '*.avhdx' -File -ErrorAction SilentlyContinue)) {
        if (-not $used.Contains($file.FullName)) {
            $orphans.Add([ordered]@{ Kind = 'avhdx'; VMId = "$($vm.VMId)"; VMName = "$($vm.Name)"; Path = $file.FullName
                CreationTime = (ConvertTo-HvTime $file.LastWriteTimeUtc); Detail = 'not part of any disk chain on this host' })
        }
    }
}
Write-HvResult @{ Orphans = $orphans.ToArray() }
