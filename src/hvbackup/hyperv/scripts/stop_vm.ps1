# Operation: turn the VM off at once (no guest shutdown). Parameters: VmId.
# Docs: Stop-VM -TurnOff [windows-powershell-docs docset/winserver2022-ps/hyper-v/Stop-VM.md].
$vm = Get-HvVm $HvParams.VmId
Stop-VM -VM $vm -TurnOff -Confirm:$false
Write-HvResult @{ VM = (ConvertTo-HvVm (Get-HvVm $HvParams.VmId)) }
