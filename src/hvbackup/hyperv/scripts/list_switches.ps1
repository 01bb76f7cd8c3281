# Operation: the host's virtual switches, which a restored VM's network adapters may connect to. Parameters: none.
# Docs: Get-VMSwitch (Name, Id, SwitchType) [windows-powershell-docs docset/winserver2022-ps/hyper-v/Get-VMSwitch.md];
#   a switch name is what Add-VMNetworkAdapter -SwitchName takes (docs/HYPERV.md §14).
$switches = @(Get-VMSwitch | ForEach-Object {
    [ordered]@{ Name = "$($_.Name)"; Id = "$($_.Id)"; SwitchType = (ConvertTo-HvEnum $_.SwitchType) } })
Write-HvResult @{ Switches = $switches }
