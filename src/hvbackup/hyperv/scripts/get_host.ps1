# Operation: host facts. Parameters: none.
# Docs: Get-VMHost (Name, FullyQualifiedDomainName, LogicalProcessorCount, MemoryCapacity, VirtualMachinePath, VirtualHardDiskPath)
#   [windows-powershell-docs docset/winserver2022-ps/hyper-v/Get-VMHost.md];
#   Get-VMHostSupportedVersion (Name, Version, IsDefault) [.../hyper-v/Get-VMHostSupportedVersion.md];
#   Win32_OperatingSystem (Caption, Version, BuildNumber) [win32 desktop-src/CIMWin32Prov/win32-operatingsystem.md].
$vmHost = Get-VMHost
$os = Get-CimInstance -ClassName Win32_OperatingSystem
$versions = @(Get-VMHostSupportedVersion | ForEach-Object { [ordered]@{ Version = "$($_.Version)"; IsDefault = [bool]$_.IsDefault } })
Write-HvResult ([ordered]@{
    Name = "$($vmHost.Name)"; FullyQualifiedDomainName = "$($vmHost.FullyQualifiedDomainName)"; OsCaption = "$($os.Caption)"; OsVersion = "$($os.Version)"; OsBuild = "$($os.BuildNumber)"
    VirtualMachinePath = "$($vmHost.VirtualMachinePath)"; VirtualHardDiskPath = "$($vmHost.VirtualHardDiskPath)"
    LogicalProcessorCount = $vmHost.LogicalProcessorCount; MemoryCapacity = $vmHost.MemoryCapacity
    SupportedVersions = $versions
})
