# Operation: build a new VM from a saved configuration (for a restore); it is left Off.
# Parameters: Name, Path (the folder of the restored disks; optional), Config (hvbackup VmConfig JSON, its version
#   already chosen among the host's supported ones and, for Secure Boot, the template by name: docs/HYPERV.md §14),
#   DiskPaths (same order as Config.disks).
# Docs [windows-powershell-docs docset/winserver2022-ps/hyper-v/<Cmdlet>.md]: New-VM -Name -Generation -NoVHD
#   -Version -MemoryStartupBytes [-Path]; Set-VM -ProcessorCount -CheckpointType; Set-VMMemory
#   -DynamicMemoryEnabled -MinimumBytes -MaximumBytes; Set-VMFirmware -EnableSecureBoot -SecureBootTemplate;
#   Get-VMScsiController / Add-VMScsiController; Add-VMHardDiskDrive -ControllerType -ControllerNumber
#   -ControllerLocation -Path; Get-VMNetworkAdapter / Remove-VMNetworkAdapter / Add-VMNetworkAdapter
#   -SwitchName -IsLegacy -StaticMacAddress; Set-VMNetworkAdapterVlan -Access -VlanId;
#   Enable-VMIntegrationService -Name; Remove-VM -Force (undo on failure). Restore steps: docs/HYPERV.md §7.
#   New-VM always adds one network adapter ("Hyper-V automatically creates a virtual machine with one
#   virtual network adapter", New-VM.md -SwitchName), so it is removed before the recorded ones are added.
$config = $HvParams.Config
$diskPaths = @($HvParams.DiskPaths)
$newVm = @{ Name = "$($HvParams.Name)"; Generation = [int16]$config.generation; NoVHD = $true
    Version = "$($config.version)"; MemoryStartupBytes = [int64]$config.memory.startup_bytes }
if ($HvParams.Path) { $newVm.Path = "$($HvParams.Path)" }
$vm = New-VM @newVm
try {
    Set-VM -VM $vm -ProcessorCount ([int64]$config.processor_count) -CheckpointType "$($config.checkpoint_type.name)"
    if ($config.memory.dynamic) {
        Set-VMMemory -VM $vm -DynamicMemoryEnabled $true -MinimumBytes ([int64]$config.memory.minimum_bytes) -MaximumBytes ([int64]$config.memory.maximum_bytes)
    }
    if ([int]$config.generation -eq 2 -and $config.firmware) {
        if ($config.firmware.secure_boot -and $config.firmware.secure_boot_template) {
            Set-VMFirmware -VM $vm -EnableSecureBoot On -SecureBootTemplate "$($config.firmware.secure_boot_template)"
        } elseif ($config.firmware.secure_boot) {
            Set-VMFirmware -VM $vm -EnableSecureBoot On
        } else {
            Set-VMFirmware -VM $vm -EnableSecureBoot Off
        }
    }
    $disks = @($config.disks)
    for ($i = 0; $i -lt $disks.Count; $i++) {
        $disk = $disks[$i]
        if ($disk.controller_type.name -eq 'SCSI') {
            while (@(Get-VMScsiController -VM $vm).Count -le [int]$disk.controller_number) { Add-VMScsiController -VM $vm }
        }
        Add-VMHardDiskDrive -VM $vm -ControllerType "$($disk.controller_type.name)" -ControllerNumber ([int]$disk.controller_number) `
            -ControllerLocation ([int]$disk.controller_location) -Path "$($diskPaths[$i])"
    }
    Get-VMNetworkAdapter -VM $vm | Remove-VMNetworkAdapter -Confirm:$false
    foreach ($nic in @($config.network_adapters)) {
        $add = @{ VM = $vm; Name = "$($nic.name)"; IsLegacy = [bool]$nic.is_legacy }
        if ($nic.switch_name) { $add.SwitchName = "$($nic.switch_name)" }
        if (-not $nic.dynamic_mac -and $nic.mac_address) { $add.StaticMacAddress = ("$($nic.mac_address)" -replace '[^0-9A-Fa-f]', '') }
        $adapter = Add-VMNetworkAdapter @add -Passthru
        if ($nic.vlan_id) { Set-VMNetworkAdapterVlan -VMNetworkAdapter $adapter -Access -VlanId ([int]$nic.vlan_id) }
    }
    foreach ($serviceName in @($config.enabled_services)) {
        Enable-VMIntegrationService -VM $vm -Name "$serviceName" -ErrorAction SilentlyContinue
    }
} catch {
    Remove-VM -VM $vm -Force
    throw
}
Write-HvResult @{ VM = (ConvertTo-HvVm (Get-HvVm "$($vm.VMId)")) }
