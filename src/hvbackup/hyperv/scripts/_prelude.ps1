# hvbackup prelude: functions shared by every operation script. hvbackup.hyperv.scripts.assemble()
# puts it after $HvOperation/$HvParams and before the operation's body, which runs inside
# try { } catch { Write-HvFailure $_ }. Runs on Windows PowerShell 5.1 (the default WinRM endpoint).
#
# Documentation behind each call (MicrosoftDocs repositories; see docs/HYPERV.md):
# - ConvertTo-Json: only -Depth (default 2) and -Compress in 5.1; enums become numbers, so enums
#   are projected as @{name; value}; dates as ISO strings [PowerShell-Docs reference/5.1/
#   Microsoft.PowerShell.Utility/ConvertTo-Json.md].
# - Get-CimInstance (-Namespace -ClassName -Filter; -InputObject re-reads an instance),
#   Get-CimAssociatedInstance (-Association -ResultClassName), Invoke-CimMethod (-MethodName
#   -Arguments), New-CimInstance -ClientOnly [PowerShell-Docs reference/5.1/CimCmdlets/*.md].
# - Msvm_ConcreteJob: JobState New 2, Starting 3, Running 4, Suspended 5, Shutting Down 6,
#   Completed 7, Terminated 8, Killed 9, Exception 10; ErrorCode, ErrorDescription, ErrorSummaryDescription
#   [win32 desktop-src/HyperV_v2/msvm-concretejob.md]; 32768 = completed with warnings (os-win).
# - Method return values 0 / 4096 "job started" / 32768.. [HyperV_v2 msvm-virtualsystemsnapshotservice,
#   msvm-virtualsystemreferencepointservice-destroyreferencepoint.md].
# - Embedded instances serialised with Microsoft.Management.Infrastructure.Serialization.CimSerializer
#   to a Unicode string, as Microsoft's xHyper-VBackup sample does (ConvertTo-CimEmbeddedString)
#   [Virtualization-Documentation hyperv-samples/taylorb-wmi/xhypervbackup].
# - Get-VM, Get-VMHardDiskDrive, Get-VHD, Get-VMNetworkAdapter, Get-VMIntegrationService,
#   Get-VMFirmware, Get-VMSnapshot output properties [windows-powershell-docs docset/winserver2022-ps/
#   hyper-v/<Cmdlet>.md]; Msvm_KvpExchangeComponent.GuestIntrinsicExchangeItems (embedded
#   Msvm_KvpExchangeDataItem XML with Name/Data) [HyperV_v2 msvm-kvpexchangecomponent.md], reached
#   from the VM through Msvm_SystemDevice as Microsoft's lis-test KVP_Intrinsic.ps1 does.
# - Msvm_ComputerSystem: Name = VM GUID, ElementName = display name [HyperV_v2 msvm-computersystem.md].
# - Msvm_SnapshotOfVirtualSystem (VM -> its snapshots, each an Msvm_VirtualSystemSettingData with
#   VirtualSystemType "Microsoft:Hyper-V:Snapshot:Recovery" for backup checkpoints) and
#   Msvm_ReferencePointOfVirtualSystem (VM -> Msvm_VirtualSystemReferencePoint)
#   [HyperV_v2 msvm-virtualsystemsettingdata.md, msvm-virtualsystemreferencepoint.md; xhypervbackup
#   Get-VmBackupCheckpoints, Get-VmReferencePoints].
# - Msvm_AffectedJobElement: job -> the object it created [xhypervbackup; os-win jobutils].

# - Msvm_ConcreteJob JobState 32768 (completed with warnings): the job's ErrorDescription is kept and
#   printed as the document's Warnings (docs/HYPERV.md §17).
# - Get-VMFibreChannelHba (Name, SanName) [windows-powershell-docs docset/winserver2022-ps/hyper-v/
#   Get-VMFibreChannelHba.md]; Get-Command -ErrorAction SilentlyContinue tells a cmdlet a host lacks
#   [PowerShell-Docs reference/5.1/Microsoft.PowerShell.Core/Get-Command.md].

$HvNamespace = 'root\virtualization\v2'
$HvJsonDepth = 10
$HvWarnings = New-Object System.Collections.Generic.List[string]

function Write-HvResult([object]$Result) {
    if ($HvWarnings.Count -gt 0 -and $Result -is [System.Collections.IDictionary] -and -not $Result.Contains('error')) {
        $Result['Warnings'] = $HvWarnings.ToArray()
    }
    $json = ConvertTo-Json -InputObject $Result -Depth $HvJsonDepth -Compress
    # Non-ASCII characters as \uXXXX: the console code page of powershell.exe cannot mangle them.
    $ascii = [regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
    Write-Output $ascii
}

function New-HvError([string]$Kind, [string]$Message, [hashtable]$Extra) {
    $exception = New-Object System.Exception $Message
    $exception.Data['hvKind'] = $Kind
    if ($Extra) {
        foreach ($key in $Extra.Keys) { $exception.Data[$key] = $Extra[$key] }
    }
    return $exception
}

function Write-HvFailure($ErrorRecord) {
    $exception = $ErrorRecord.Exception
    $failure = [ordered]@{ kind = 'Unexpected'; message = $exception.Message; operation = $HvOperation }
    if ($exception.Data.Contains('hvKind')) {
        $failure.kind = $exception.Data['hvKind']
        foreach ($key in @('code', 'description', 'job_state')) {
            if ($exception.Data.Contains($key)) { $failure[$key] = $exception.Data[$key] }
        }
    } else {
        $failure.category = "$($ErrorRecord.CategoryInfo.Category)"
        $failure.position = "$($ErrorRecord.InvocationInfo.PositionMessage)"
    }
    Write-HvResult @{ error = $failure }
}

function ConvertTo-HvEnum($Value) {
    if ($null -eq $Value) { return $null }
    return [ordered]@{ name = "$Value"; value = [int]$Value }
}

function ConvertTo-HvTime($Value) {
    if ($null -eq $Value) { return '' }
    return ([datetime]$Value).ToUniversalTime().ToString('o')
}

function Get-HvComputerSystem([string]$VmId) {
    $id = ([guid]$VmId).ToString()
    $system = Get-CimInstance -Namespace $HvNamespace -ClassName Msvm_ComputerSystem -Filter "Name='$id'"
    if ($null -eq $system) { throw (New-HvError 'VmNotFound' "no VM with id $id") }
    return $system
}

function Get-HvVm([string]$VmId) {
    $id = [guid]$VmId
    $vm = Get-VM -Id $id -ErrorAction SilentlyContinue
    if ($null -eq $vm) { throw (New-HvError 'VmNotFound' "no VM with id $id") }
    return $vm
}

function Get-HvService([string]$ClassName) {
    return Get-CimInstance -Namespace $HvNamespace -ClassName $ClassName
}

function ConvertTo-HvEmbeddedInstance($Instance) {
    $serializer = [Microsoft.Management.Infrastructure.Serialization.CimSerializer]::Create()
    $options = [Microsoft.Management.Infrastructure.Serialization.InstanceSerializationOptions]::None
    return [System.Text.Encoding]::Unicode.GetString($serializer.Serialize($Instance, $options))
}

# Calls a WMI method. Returns the method's output; $null Job means it finished synchronously.
function Invoke-HvMethod($Target, [string]$Method, [hashtable]$Arguments) {
    $output = Invoke-CimMethod -InputObject $Target -MethodName $Method -Arguments $Arguments
    $code = [int]$output.ReturnValue
    if ($code -ne 0 -and $code -ne 4096) {
        throw (New-HvError 'WmiJobError' "$Method returned $code" @{ code = $code; description = (Get-HvReturnText $code) })
    }
    return $output
}

function Get-HvReturnText([int]$Code) {
    $texts = @{
        1 = 'Not Supported'; 2 = 'Failed'; 3 = 'Timeout'; 4 = 'Invalid Parameter'; 5 = 'Invalid State'; 6 = 'Invalid Type'
        32768 = 'Failed'; 32769 = 'Access Denied'; 32770 = 'Not Supported'; 32771 = 'Status is unknown'; 32772 = 'Timeout'
        32773 = 'Invalid parameter'; 32774 = 'System is in use'; 32775 = 'Invalid state for this operation'
        32776 = 'Incorrect data type'; 32777 = 'System is not available'; 32778 = 'Out of memory'; 32779 = 'File not found'
    }
    if ($texts.ContainsKey($Code)) { return $texts[$Code] }
    return "return value $Code"
}

function Test-HvJobRunning($Job) {
    return ($Job.JobState -ge 2 -and $Job.JobState -le 6)
}

function Assert-HvJobSucceeded($Job) {
    if ($Job.JobState -eq 32768) {
        $warning = "$($Job.ErrorDescription)"
        if (-not $warning) { $warning = "$($Job.ErrorSummaryDescription)" }
        if (-not $warning) { $warning = "job $($Job.InstanceID) completed with warnings" }
        $HvWarnings.Add($warning)
    }
    if ($Job.JobState -ne 7 -and $Job.JobState -ne 32768) {
        $description = "$($Job.ErrorDescription)"
        if (-not $description) { $description = "$($Job.ErrorSummaryDescription)" }
        throw (New-HvError 'WmiJobError' "job $($Job.InstanceID) ended in state $($Job.JobState)" @{
            code = [int]$Job.ErrorCode; description = $description; job_state = [int]$Job.JobState })
    }
}

# Waits at most $Seconds for a job; returns the job, finished or not. A failed job throws.
function Wait-HvJob($Job, [double]$Seconds) {
    $deadline = (Get-Date).AddSeconds($Seconds)
    $current = Get-CimInstance -InputObject $Job
    while ((Test-HvJobRunning $current) -and (Get-Date) -lt $deadline) {
        Start-Sleep -Milliseconds 250
        $current = Get-CimInstance -InputObject $current
    }
    if (-not (Test-HvJobRunning $current)) { Assert-HvJobSucceeded $current }
    return $current
}

function ConvertTo-HvPending($Job, [string]$ResultKind) {
    return @{ Pending = [ordered]@{
        JobId = "$($Job.InstanceID)"; ResultKind = $ResultKind; JobState = [int]$Job.JobState
        PercentComplete = [int]$Job.PercentComplete } }
}

function Get-HvJobResult($Job, [string]$ResultKind) {
    $className = @{ checkpoint = 'Msvm_VirtualSystemSettingData'; reference_point = 'Msvm_VirtualSystemReferencePoint' }[$ResultKind]
    if ($null -eq $className) { return $null }
    return Get-CimAssociatedInstance -InputObject $Job -Association Msvm_AffectedJobElement -ResultClassName $className |
        Select-Object -First 1
}

function Get-HvSnapshotSettingData([string]$VmId, [string]$CheckpointId) {
    $system = Get-HvComputerSystem $VmId
    $wanted = 'Microsoft:' + ([guid]$CheckpointId).ToString()
    $snapshot = Get-CimAssociatedInstance -InputObject $system -Association Msvm_SnapshotOfVirtualSystem |
        Where-Object { $_.InstanceID -eq $wanted } | Select-Object -First 1
    if ($null -eq $snapshot) { throw (New-HvError 'ObjectNotFound' "VM $VmId has no checkpoint $CheckpointId") }
    return $snapshot
}

function Get-HvReferencePoint([string]$VmId, [string]$ReferencePointId) {
    $system = Get-HvComputerSystem $VmId
    $point = Get-CimAssociatedInstance -InputObject $system -Association Msvm_ReferencePointOfVirtualSystem |
        Where-Object { $_.InstanceID -eq $ReferencePointId } | Select-Object -First 1
    if ($null -eq $point) { throw (New-HvError 'ObjectNotFound' "VM $VmId has no reference point $ReferencePointId") }
    return $point
}

# Msvm_VirtualSystemSettingData.VirtualSystemType -> Get-VMSnapshot's SnapshotType name and number.
function ConvertTo-HvSnapshotType([string]$VirtualSystemType) {
    $types = [ordered]@{
        'Microsoft:Hyper-V:Snapshot:Recovery' = @('Recovery', 1)
        'Microsoft:Hyper-V:Snapshot:Realized' = @('Standard', 0)
        'Microsoft:Hyper-V:Snapshot:Planned' = @('Planned', 2)
        'Microsoft:Hyper-V:Snapshot:Missing' = @('Missing', 5)
        'Microsoft:Hyper-V:Snapshot:Replica:Standard' = @('Replica', 6)
        'Microsoft:Hyper-V:Snapshot:Replica:ApplicationConsistent' = @('AppConsistentReplica', 7)
    }
    $pair = $types[$VirtualSystemType]
    if ($null -eq $pair) { return [ordered]@{ name = $VirtualSystemType; value = -1 } }
    return [ordered]@{ name = $pair[0]; value = $pair[1] }
}

function ConvertTo-HvCheckpointFromWmi($Snapshot) {
    return [ordered]@{
        Id = ($Snapshot.InstanceID -replace '^Microsoft:', '')
        Name = "$($Snapshot.ElementName)"
        VMId = "$($Snapshot.VirtualSystemIdentifier)"
        SnapshotType = (ConvertTo-HvSnapshotType $Snapshot.VirtualSystemType)
        CreationTime = (ConvertTo-HvTime $Snapshot.CreationTime)
    }
}

function ConvertTo-HvCheckpoint($Snapshot) {
    return [ordered]@{
        Id = "$($Snapshot.Id)"
        Name = "$($Snapshot.Name)"
        VMId = "$($Snapshot.VMId)"
        SnapshotType = (ConvertTo-HvEnum $Snapshot.SnapshotType)
        CreationTime = (ConvertTo-HvTime $Snapshot.CreationTime)
        ParentSnapshotId = "$($Snapshot.ParentSnapshotId)"
    }
}

function ConvertTo-HvReferencePoint($Point) {
    return [ordered]@{
        InstanceID = "$($Point.InstanceID)"
        VirtualSystemIdentifier = "$($Point.VirtualSystemIdentifier)"
        ReferencePointType = [ordered]@{ name = @{ 1 = 'LogBased'; 2 = 'RctBased' }[[int]$Point.ReferencePointType]; value = [int]$Point.ReferencePointType }
        ConsistencyLevel = [ordered]@{ name = @{ 0 = 'Unknown'; 1 = 'ApplicationConsistent'; 2 = 'CrashConsistent' }[[int]$Point.ConsistencyLevel]; value = [int]$Point.ConsistencyLevel }
        VirtualDiskIdentifiers = @($Point.VirtualDiskIdentifiers | ForEach-Object { "$_" })
        ResilientChangeTrackingIdentifiers = @($Point.ResilientChangeTrackingIdentifiers | ForEach-Object { "$_" })
    }
}

function ConvertTo-HvVhd([string]$Path) {
    $vhd = Get-VHD -Path $Path
    return [ordered]@{
        VhdFormat = (ConvertTo-HvEnum $vhd.VhdFormat); VhdType = (ConvertTo-HvEnum $vhd.VhdType)
        Size = $vhd.Size; FileSize = $vhd.FileSize; BlockSize = $vhd.BlockSize
        LogicalSectorSize = $vhd.LogicalSectorSize; PhysicalSectorSize = $vhd.PhysicalSectorSize
        ParentPath = "$($vhd.ParentPath)"; DiskIdentifier = "$($vhd.DiskIdentifier)"
    }
}

# A disk whose file Get-VHD cannot read (missing, or an SMB share out of the session's reach) is
# printed with Vhd $null and the reason as VhdError, so one such disk never fails the inventory.
function ConvertTo-HvHardDrive($Drive) {
    $vhd = $null
    $vhdError = $null
    if ($null -eq $Drive.DiskNumber -and $Drive.Path) {
        try { $vhd = ConvertTo-HvVhd $Drive.Path } catch { $vhdError = "$($_.Exception.Message)" }
    }
    $printed = [ordered]@{
        ControllerType = (ConvertTo-HvEnum $Drive.ControllerType)
        ControllerNumber = $Drive.ControllerNumber; ControllerLocation = $Drive.ControllerLocation
        Path = "$($Drive.Path)"; DiskNumber = $Drive.DiskNumber
        SupportPersistentReservations = [bool]$Drive.SupportPersistentReservations
        Id = "$($Drive.Id)"; Vhd = $vhd
    }
    if ($null -eq $vhdError) { return $printed }
    return [ordered]@{
        ControllerType = $printed.ControllerType
        ControllerNumber = $printed.ControllerNumber; ControllerLocation = $printed.ControllerLocation
        Path = $printed.Path; DiskNumber = $printed.DiskNumber
        SupportPersistentReservations = $printed.SupportPersistentReservations
        Id = $printed.Id; Vhd = $null; VhdError = $vhdError
    }
}

function ConvertTo-HvFibreChannelAdapter($Adapter) {
    return [ordered]@{ Name = "$($Adapter.Name)"; SanName = "$($Adapter.SanName)" }
}

function ConvertTo-HvNetworkAdapter($Adapter) {
    $vlan = $null
    if ($Adapter.VlanSetting -and $Adapter.VlanSetting.AccessVlanId) { $vlan = [int]$Adapter.VlanSetting.AccessVlanId }
    return [ordered]@{
        Name = "$($Adapter.Name)"; MacAddress = "$($Adapter.MacAddress)"
        DynamicMacAddressEnabled = [bool]$Adapter.DynamicMacAddressEnabled; IsLegacy = [bool]$Adapter.IsLegacy
        SwitchName = "$($Adapter.SwitchName)"; VlanId = $vlan
    }
}

function ConvertTo-HvIntegrationService($Service) {
    return [ordered]@{
        Name = "$($Service.Name)"; Enabled = [bool]$Service.Enabled
        PrimaryOperationalStatus = (ConvertTo-HvEnum $Service.PrimaryOperationalStatus)
        PrimaryStatusDescription = "$($Service.PrimaryStatusDescription)"
        SecondaryStatusDescription = "$($Service.SecondaryStatusDescription)"
    }
}

function Get-HvGuestItems([string]$VmId) {
    $items = [ordered]@{}
    $system = Get-HvComputerSystem $VmId
    $kvp = Get-CimAssociatedInstance -InputObject $system -Association Msvm_SystemDevice -ResultClassName Msvm_KvpExchangeComponent |
        Select-Object -First 1
    if ($null -eq $kvp) { return $items }
    foreach ($text in @($kvp.GuestIntrinsicExchangeItems)) {
        if (-not $text) { continue }
        $xml = [xml]$text
        $name = $xml.SelectSingleNode("/INSTANCE/PROPERTY[@NAME='Name']/VALUE")
        $data = $xml.SelectSingleNode("/INSTANCE/PROPERTY[@NAME='Data']/VALUE")
        if ($name -and $data) { $items[$name.InnerText] = $data.InnerText }
    }
    return $items
}

function ConvertTo-HvVm($Vm) {
    $firmware = $null
    if ($Vm.Generation -eq 2) {
        $fw = Get-VMFirmware -VM $Vm
        $firmware = [ordered]@{
            SecureBoot = (ConvertTo-HvEnum $fw.SecureBoot)
            SecureBootTemplate = "$($fw.SecureBootTemplate)"; SecureBootTemplateId = "$($fw.SecureBootTemplateId)"
        }
    }
    $guest = [ordered]@{}
    if ($Vm.State -eq 'Running') {
        try { $guest = Get-HvGuestItems "$($Vm.VMId)" } catch { $guest = [ordered]@{} }
    }
    return [ordered]@{
        VMId = "$($Vm.VMId)"; Name = "$($Vm.Name)"; State = (ConvertTo-HvEnum $Vm.State)
        Generation = $Vm.Generation; Version = "$($Vm.Version)"; IsClustered = [bool]$Vm.IsClustered
        CheckpointType = (ConvertTo-HvEnum $Vm.CheckpointType)
        AutomaticCheckpointsEnabled = [bool]$Vm.AutomaticCheckpointsEnabled
        Heartbeat = (ConvertTo-HvEnum $Vm.Heartbeat)
        OperationalStatus = @($Vm.OperationalStatus | ForEach-Object { ConvertTo-HvEnum $_ })
        ProcessorCount = $Vm.ProcessorCount
        MemoryStartup = $Vm.MemoryStartup; DynamicMemoryEnabled = [bool]$Vm.DynamicMemoryEnabled
        MemoryMinimum = $Vm.MemoryMinimum; MemoryMaximum = $Vm.MemoryMaximum
        Path = "$($Vm.Path)"; ConfigurationLocation = "$($Vm.ConfigurationLocation)"
        SnapshotFileLocation = "$($Vm.SnapshotFileLocation)"
        Firmware = $firmware
        IntegrationServices = @(Get-VMIntegrationService -VM $Vm | ForEach-Object { ConvertTo-HvIntegrationService $_ })
        NetworkAdapters = @(Get-VMNetworkAdapter -VM $Vm | ForEach-Object { ConvertTo-HvNetworkAdapter $_ })
        HardDrives = @(Get-VMHardDiskDrive -VM $Vm | ForEach-Object { ConvertTo-HvHardDrive $_ })
        Checkpoints = @(Get-VMSnapshot -VM $Vm | ForEach-Object { ConvertTo-HvCheckpoint $_ })
        FibreChannelAdapters = @(Get-VMFibreChannelHba -VM $Vm | ForEach-Object { ConvertTo-HvFibreChannelAdapter $_ })
        Guest = $guest
    }
}
