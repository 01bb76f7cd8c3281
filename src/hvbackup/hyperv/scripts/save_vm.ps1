# Operation: save the VM's state ("similar to hibernating"). Parameters: VmId.
# Docs: Save-VM [windows-powershell-docs docset/winserver2022-ps/hyper-v/Save-VM.md].
$vm = Get-HvVm $HvParams.VmId
Save-VM -VM $vm -Confirm:$false
Write-HvResult @{ VM = (ConvertTo-HvVm (Get-HvVm $HvParams.VmId)) }
