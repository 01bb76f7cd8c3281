# Operation: start (or resume a saved) VM. Parameters: VmId.
# Docs: Start-VM [windows-powershell-docs docset/winserver2022-ps/hyper-v/Start-VM.md].
$vm = Get-HvVm $HvParams.VmId
Start-VM -VM $vm -Confirm:$false
Write-HvResult @{ VM = (ConvertTo-HvVm (Get-HvVm $HvParams.VmId)) }
