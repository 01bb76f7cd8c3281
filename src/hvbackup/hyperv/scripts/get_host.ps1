# Operation: host facts. Parameters: none.
# Docs: Get-VMHost (Name, FullyQualifiedDomainName, LogicalProcessorCount, MemoryCapacity, VirtualMachinePath, VirtualHardDiskPath)
#   [windows-powershell-docs docset/winserver2022-ps/hyper-v/Get-VMHost.md];
#   Get-VMHostSupportedVersion (Name, Version, IsDefault) [.../hyper-v/Get-VMHostSupportedVersion.md];
#   Get-Command -ErrorAction SilentlyContinue [PowerShell-Docs reference/5.1/Microsoft.PowerShell.Core/Get-Command.md];
#   Win32_OperatingSystem (Caption, Version, BuildNumber) [win32 desktop-src/CIMWin32Prov/win32-operatingsystem.md].
$vmHost = Get-VMHost
$os = Get-CimInstance -ClassName Win32_OperatingSystem
# Get-VMHostSupportedVersion exists from Windows Server 2016 on; an older host prints no versions
# (and its build, which tells assess and backup it has no recovery checkpoints: docs/HYPERV.md §17).
$versions = @()
if (Get-Command -Name Get-VMHostSupportedVersion -ErrorAction SilentlyContinue) {
    $versions = @(Get-VMHostSupportedVersion | ForEach-Object { [ordered]@{ Version = "$($_.Version)"; IsDefault = [bool]$_.IsDefault } })
}
Write-HvResult ([ordered]@{
    Name = "$($vmHost.Name)"; FullyQualifiedDomainName = "$($vmHost.FullyQualifiedDomainName)"; OsCaption = "$($os.Caption)"; OsVersion = "$($os.Version)"; OsBuild = "$($os.BuildNumber)"
    VirtualMachinePath = "$($vmHost.VirtualMachinePath)"; VirtualHardDiskPath = "$($vmHost.VirtualHardDiskPath)"
    LogicalProcessorCount = $vmHost.LogicalProcessorCount; MemoryCapacity = $vmHost.MemoryCapacity
    SupportedVersions = $versions
})
