"""The PowerShell scripts themselves: present for every operation, syntactically valid, printing
one JSON document, and using only documented cmdlets and WMI classes.

No PowerShell exists for Debian (`apt-cache search powershell` finds none), so the scripts are
parsed with tree-sitter's PowerShell grammar (PyPI tree-sitter-powershell): a parse error or a
missing token fails the test. That checks syntax, not behaviour; behaviour needs a Windows host.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell

from hvbackup.hyperv.host import HyperVHost
from hvbackup.hyperv.scripts import PRELUDE, assemble, operation_names, script_text

SCRIPTS = Path(__file__).parents[2] / "src" / "hvbackup" / "hyperv" / "scripts"
PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))

PSD = "windows-powershell-docs docset/winserver2022-ps/hyper-v/{}.md"
PS51 = "PowerShell-Docs reference/5.1/{}.md"
W32 = "win32 desktop-src/HyperV_v2/{}.md"

# Every cmdlet a script may call, with the page that documents it. A section marks those whose use
# docs/HYPERV.md explains; the others are pages of the same docsets.
ALLOWED_CMDLETS = {
    "Get-VM": (PSD.format("Get-VM"), "docs/HYPERV.md §4"),
    "Get-VMHost": (PSD.format("Get-VMHost"), "docs/HYPERV.md §4"),
    "Get-VMHostSupportedVersion": (PSD.format("Get-VMHostSupportedVersion"), "docs/HYPERV.md §4"),
    "Get-VMHardDiskDrive": (PSD.format("Get-VMHardDiskDrive"), "docs/HYPERV.md §4"),
    "Get-VHD": (PSD.format("Get-VHD"), "docs/HYPERV.md §4"),
    "Get-VMNetworkAdapter": (PSD.format("Get-VMNetworkAdapter"), "docs/HYPERV.md §4"),
    "Get-VMIntegrationService": (PSD.format("Get-VMIntegrationService"), "docs/HYPERV.md §4"),
    "Get-VMFirmware": (PSD.format("Get-VMFirmware"), "docs/HYPERV.md §4"),
    "Get-VMSnapshot": (PSD.format("Get-VMSnapshot"), "docs/HYPERV.md §4"),
    "Get-VMFibreChannelHba": (PSD.format("Get-VMFibreChannelHba"), "docs/HYPERV.md §17"),
    "Get-Command": (PS51.format("Microsoft.PowerShell.Core/Get-Command"), "docs/HYPERV.md §17"),
    "Save-VM": (PSD.format("Save-VM"), "docs/HYPERV.md §8"),
    "Start-VM": (PSD.format("Start-VM"), "docs/HYPERV.md §8"),
    "Stop-VM": (PSD.format("Stop-VM"), "docs/HYPERV.md §8"),
    "New-VM": (PSD.format("New-VM"), "docs/HYPERV.md §7"),
    "Set-VM": (PSD.format("Set-VM"), "docs/HYPERV.md §7"),
    "Set-VMFirmware": (PSD.format("Set-VMFirmware"), "docs/HYPERV.md §7"),
    "Add-VMHardDiskDrive": (PSD.format("Add-VMHardDiskDrive"), "docs/HYPERV.md §7"),
    "Add-VMNetworkAdapter": (PSD.format("Add-VMNetworkAdapter"), "docs/HYPERV.md §7"),
    "Enable-VMIntegrationService": (PSD.format("Enable-VMIntegrationService"), "docs/HYPERV.md §7"),
    "Set-VMMemory": (PSD.format("Set-VMMemory"), "docset"),
    "Get-VMScsiController": (PSD.format("Get-VMScsiController"), "docset"),
    "Add-VMScsiController": (PSD.format("Add-VMScsiController"), "docset"),
    "Remove-VMNetworkAdapter": (PSD.format("Remove-VMNetworkAdapter"), "docset"),
    "Set-VMNetworkAdapterVlan": (PSD.format("Set-VMNetworkAdapterVlan"), "docset"),
    "Remove-VM": (PSD.format("Remove-VM"), "docset"),
    "Get-CimInstance": (PS51.format("CimCmdlets/Get-CimInstance"), "docs/HYPERV.md §5"),
    "Get-CimAssociatedInstance": (PS51.format("CimCmdlets/Get-CimAssociatedInstance"), "docs/HYPERV.md §1"),
    "Invoke-CimMethod": (PS51.format("CimCmdlets/Invoke-CimMethod"), "docs/HYPERV.md §5"),
    "New-CimInstance": (PS51.format("CimCmdlets/New-CimInstance"), "docs/HYPERV.md §1"),
    "ConvertTo-Json": (PS51.format("Microsoft.PowerShell.Utility/ConvertTo-Json"), "docs/HYPERV.md §2"),
    "ConvertFrom-Json": (PS51.format("Microsoft.PowerShell.Utility/ConvertFrom-Json"), "docset"),
    "Write-Output": (PS51.format("Microsoft.PowerShell.Utility/Write-Output"), "docset"),
    "Select-Object": (PS51.format("Microsoft.PowerShell.Utility/Select-Object"), "docset"),
    "Get-Date": (PS51.format("Microsoft.PowerShell.Utility/Get-Date"), "docset"),
    "New-Object": (PS51.format("Microsoft.PowerShell.Utility/New-Object"), "docset"),
    "Where-Object": (PS51.format("Microsoft.PowerShell.Core/Where-Object"), "docset"),
    "ForEach-Object": (PS51.format("Microsoft.PowerShell.Core/ForEach-Object"), "docset"),
    "Start-Sleep": (PS51.format("Microsoft.PowerShell.Utility/Start-Sleep"), "docset"),
    "Get-ChildItem": (PS51.format("Microsoft.PowerShell.Management/Get-ChildItem"), "docset"),
    # restoring a VM onto a host (docs/HYPERV.md §14)
    "Get-VMSwitch": (PSD.format("Get-VMSwitch"), "docs/HYPERV.md §14"),
    "Compare-VM": (PSD.format("Compare-VM"), "docs/HYPERV.md §14"),
    "Import-VM": (PSD.format("Import-VM"), "docs/HYPERV.md §14"),
    "Rename-VM": (PSD.format("Rename-VM"), "docs/HYPERV.md §14"),
    "Set-VMHardDiskDrive": (PSD.format("Set-VMHardDiskDrive"), "docs/HYPERV.md §14"),
    "Connect-VMNetworkAdapter": (PSD.format("Connect-VMNetworkAdapter"), "docs/HYPERV.md §14"),
    "Set-VMNetworkAdapter": (PSD.format("Set-VMNetworkAdapter"), "docs/HYPERV.md §14"),
    "Get-Item": (PS51.format("Microsoft.PowerShell.Management/Get-Item"), "docset"),
    "Join-Path": (PS51.format("Microsoft.PowerShell.Management/Join-Path"), "docset"),
}

# Every WMI class a script may name, with its page (docs/HYPERV.md §1 unless noted).
ALLOWED_CLASSES = {
    "Msvm_ComputerSystem": W32.format("msvm-computersystem"),
    "Msvm_VirtualSystemSnapshotService": W32.format("msvm-virtualsystemsnapshotservice"),
    "Msvm_VirtualSystemSnapshotSettingData": W32.format("msvm-virtualsystemsnapshotsettingdata"),
    "Msvm_VirtualSystemSettingData": W32.format("msvm-virtualsystemsettingdata"),
    "Msvm_VirtualSystemManagementService": W32.format("msvm-virtualsystemmanagementservice"),
    "Msvm_VirtualSystemReferencePoint": W32.format("msvm-virtualsystemreferencepoint"),
    "Msvm_VirtualSystemReferencePointService": W32.format("msvm-virtualsystemreferencepointservice"),
    "Msvm_ReferencePointOfVirtualSystem": "xHyper-VBackup Get-VmReferencePoints (docs/HYPERV.md §3)",
    "Msvm_SnapshotOfVirtualSystem": "xHyper-VBackup Get-VmBackupCheckpoints (docs/HYPERV.md §3)",
    "Msvm_ImageManagementService": W32.format("msvm-imagemanagementservice-getvirtualdiskchanges"),
    "Msvm_ConcreteJob": W32.format("msvm-concretejob"),
    "Msvm_AffectedJobElement": "xHyper-VBackup, os-win jobutils (docs/HYPERV.md §1)",
    "Msvm_ShutdownComponent": W32.format("msvm-shutdowncomponent-initiateshutdown"),
    "Msvm_KvpExchangeComponent": W32.format("msvm-kvpexchangecomponent"),
    "Msvm_KvpExchangeDataItem": W32.format("msvm-kvpexchangedataitem") + " (docs/HYPERV.md §13)",
    "Msvm_SystemDevice": "lis-test KVP_Intrinsic.ps1 (docs/HYPERV.md §4)",
    "Win32_OperatingSystem": "win32 desktop-src/CIMWin32Prov/win32-operatingsystem.md (docs/HYPERV.md §4)",
}

# Python methods of HyperVHost -> the script(s) that implement them on a real host.
OPERATIONS = {
    "host_info": ["get_host"],
    "inventory": ["inventory"],
    "create_recovery_checkpoint": ["set_guest_item", "create_checkpoint", "name_checkpoint", "poll_job"],
    "checkpoint_disks": ["checkpoint_disks"],
    "changed_ranges": ["changed_ranges"],
    "convert_to_reference_point": ["convert_to_reference_point", "poll_job"],
    "list_reference_points": ["list_reference_points"],
    "destroy_reference_point": ["destroy_reference_point", "poll_job"],
    "destroy_checkpoint": ["destroy_checkpoint", "poll_job"],
    "save_vm": ["save_vm"],
    "start_vm": ["start_vm"],
    "stop_vm": ["stop_vm"],
    "request_shutdown": ["request_shutdown"],
    "list_orphans": ["list_orphans"],
    "create_vm": ["create_vm"],
}
# The capabilities a host may offer (HyperVHost.guest_readiness, guest_report) and their scripts.
CAPABILITIES = {"guest_readiness": ["guest_items"], "guest_report": ["guest_items"]}
# Capabilities a host may offer (not abstract): the scripts of PowerShellHost's answers.
RESTORE_CAPABILITIES = {
    "list_switches": ["list_switches"],
    "checkpoint_files": ["checkpoint_files"],
    "import_vm": ["import_vm"],
}


def all_scripts() -> list[str]:
    return [PRELUDE, *operation_names()]


def _walk(node):
    yield node
    for child in node.children:
        yield from _walk(child)


def _nodes(source: bytes, kind: str) -> list[str]:
    tree = PARSER.parse(source)
    return [source[n.start_byte : n.end_byte].decode() for n in _walk(tree.root_node) if n.type == kind]


def _code_without_comments(source: bytes) -> str:
    tree = PARSER.parse(source)
    text = bytearray(source)
    for node in _walk(tree.root_node):
        if node.type == "comment":
            text[node.start_byte : node.end_byte] = b" " * (node.end_byte - node.start_byte)
    return text.decode()


def _syntax_errors(source: bytes) -> list[str]:
    tree = PARSER.parse(source)
    bad = [n for n in _walk(tree.root_node) if n.type == "ERROR" or n.is_missing]
    return [f"line {n.start_point[0] + 1}: {source[n.start_byte : n.end_byte][:60]!r}" for n in bad]


OUR_FUNCTIONS = set(_nodes((SCRIPTS / "_prelude.ps1").read_bytes(), "function_name"))


def test_every_host_operation_has_its_scripts():
    abstract = {name for name in HyperVHost.__abstractmethods__ if name != "open_disk_source"}
    assert abstract == set(OPERATIONS)
    for scripts in OPERATIONS.values():
        for name in scripts:
            assert (SCRIPTS / f"{name}.ps1").is_file(), name
    used = {
        name
        for scripts in (*OPERATIONS.values(), *CAPABILITIES.values(), *RESTORE_CAPABILITIES.values())
        for name in scripts
    }
    assert used == set(operation_names()), "a script no operation uses, or an operation without script"


@pytest.mark.parametrize("name", all_scripts())
def test_script_is_utf8_and_parses_without_errors(name):
    source = (SCRIPTS / f"{name}.ps1").read_bytes()
    source.decode("utf-8")
    assert _syntax_errors(source) == []


def test_the_parser_does_catch_broken_powershell():
    assert _syntax_errors(b"if ($x -eq ) { Get-VM }\n")
    assert _syntax_errors(b"$y = @{ a = 1\n")
    assert _syntax_errors(b"Get-VM | ForEach-Object { $_ \n")


def _header(name: str) -> str:
    lines = script_text(name).splitlines()
    return "\n".join(lines[: next(i for i, text in enumerate(lines) if not text.startswith("#"))])


@pytest.mark.parametrize("name", operation_names())
def test_each_script_cites_its_documentation(name):
    header = _header(name)
    assert header.startswith("# Operation:")
    assert re.search(r"Docs[:\s\[]", header)
    assert re.search(r"\[[^\]]*(docs|desktop-src|Documentation|os-win|sdk-api)", header), header


@pytest.mark.parametrize("name", all_scripts())
def test_each_wmi_class_and_method_a_script_calls_is_cited_in_its_header(name):
    code = _code_without_comments(script_text(name).encode())
    header = _header(name)
    classes = set(re.findall(r"\b(?:Msvm|Win32)_\w+", code))
    methods = set(re.findall(r"Invoke-HvMethod \$\w+ '(\w+)'", code)) | set(re.findall(r"-MethodName (\w+)", code))
    missing = {c for c in classes | methods if c not in header}
    assert not missing, f"{name}.ps1 calls {sorted(missing)} without citing the documentation in its header"


@pytest.mark.parametrize("name", operation_names())
def test_each_script_prints_only_through_write_hvresult(name):
    commands = _nodes(script_text(name).encode(), "command_name")
    assert "Write-HvResult" in commands
    assert not {"Write-Host", "Write-Output", "Out-Host", "Out-String", "ConvertTo-Json"} & set(commands)


def test_the_prelude_prints_one_compressed_json_document_with_a_large_depth():
    code = _code_without_comments((SCRIPTS / "_prelude.ps1").read_bytes())
    function = code[code.index("function Write-HvResult") :].split("\n}\n")[0]
    assert re.search(r"ConvertTo-Json -InputObject \$Result -Depth \$HvJsonDepth -Compress", function)
    depth = int(re.search(r"\$HvJsonDepth = (\d+)", code).group(1))
    assert depth >= 8 and function.count("Write-Output") == 1


def _json_depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((_json_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_json_depth(v) for v in value), default=0)
    return 0


def test_documented_shapes_fit_within_the_json_depth():
    code = script_text(PRELUDE)
    depth = int(re.search(r"\$HvJsonDepth = (\d+)", code).group(1))
    fixtures = Path(__file__).parent / "fixtures"
    deepest = max(_json_depth(json.loads(p.read_text())) for p in fixtures.glob("*.json"))
    # ConvertTo-Json counts the levels below the root; deeper values would be cut to strings.
    assert deepest - 1 <= depth


@pytest.mark.parametrize("name", all_scripts())
def test_scripts_use_only_documented_cmdlets(name):
    commands = set(_nodes((SCRIPTS / f"{name}.ps1").read_bytes(), "command_name"))
    unknown = commands - set(ALLOWED_CMDLETS) - OUR_FUNCTIONS
    assert not unknown, f"{name}.ps1 uses cmdlets missing from the allow-list: {sorted(unknown)}"


@pytest.mark.parametrize("name", all_scripts())
def test_scripts_use_only_documented_wmi_classes(name):
    code = _code_without_comments((SCRIPTS / f"{name}.ps1").read_bytes())
    classes = set(re.findall(r"\b(?:Msvm|Win32|CIM)_\w+", code))
    unknown = classes - set(ALLOWED_CLASSES)
    assert not unknown, f"{name}.ps1 uses WMI classes missing from the allow-list: {sorted(unknown)}"


def test_backup_checkpoint_is_a_recovery_snapshot_with_settings():
    code = _code_without_comments(script_text("create_checkpoint").encode())
    assert "SnapshotType = [uint16]32768" in code
    assert "ConsistencyLevel = [byte]$HvParams.ConsistencyLevel" in code
    assert "-ClientOnly" in code and "Msvm_VirtualSystemSnapshotSettingData" in code


def test_wmi_job_failures_carry_error_code_and_description():
    code = _code_without_comments(script_text(PRELUDE).encode())
    function = code[code.index("function Assert-HvJobSucceeded") :].split("\n}\n")[0]
    assert '$description = "$($Job.ErrorDescription)"' in function
    assert "code = [int]$Job.ErrorCode; description = $description" in function


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"Reason": "it's O'Brien’s ‘quote’ ‚test‛ \"double\" `n $(Get-Date) @{x}"},
        {"Path": "C:\\VMs\\a'b.vhdx", "Names": ["x", None, 1.5, True]},
    ],
)
def test_assembled_scripts_parse_and_keep_parameters_in_one_string(params):
    script = assemble("request_shutdown", params).encode()
    assert _syntax_errors(script) == []
    line = next(text for text in script.decode().splitlines() if text.startswith("$HvParams = "))
    strings = _nodes(line.encode(), "string_literal")
    assert len(strings) == 1 and strings[0] == line[len("$HvParams = ConvertFrom-Json ") :]
    assert line.isascii()
    assert json.loads(strings[0][1:-1].replace("''", "'")) == params


# -- review fixes (issue 13) ---------------------------------------------------------------------


def _function(name: str) -> str:
    code = _code_without_comments(script_text(PRELUDE).encode())
    return code[code.index(f"function {name}") :].split("\n}\n")[0]


def test_change_tracking_query_omits_target_snapshot_id_and_turns_every_failure_into_a_full_read():
    """Review fix 3: an empty TargetSnapshotId is not an absent one; 32779 and CIM exceptions alike."""
    code = _code_without_comments(script_text("changed_ranges").encode())
    assert "TargetSnapshotId" not in code
    assert "ObjectNotFound" not in code  # 32779 no longer escapes as "not found"
    assert re.search(r"\} catch \{.*New-HvError 'ChangeTrackingUnavailable'", code, re.S)
    tries = [
        n for n in _walk(PARSER.parse(script_text("changed_ranges").encode()).root_node) if n.type == "try_statement"
    ]
    assert len(tries) == 1 and b"GetVirtualDiskChanges" in tries[0].text and b"Get-VHD" in tries[0].text


def test_a_job_completed_with_warnings_is_printed_as_warnings():
    """Review fix 5: JobState 32768 keeps its ErrorDescription."""
    assert "$HvWarnings.Add($warning)" in _function("Assert-HvJobSucceeded")
    assert "if ($Job.JobState -eq 32768)" in _function("Assert-HvJobSucceeded")
    assert "$Result['Warnings'] = $HvWarnings.ToArray()" in _function("Write-HvResult")


def test_a_disk_get_vhd_cannot_read_is_printed_with_its_error():
    """Review fix 5: the agreed key VhdError, with Vhd $null; the normal shape is unchanged."""
    from .test_shapes import check_drive, hashtable_key_sets

    function = _function("ConvertTo-HvHardDrive")
    assert "try { $vhd = ConvertTo-HvVhd $Drive.Path } catch { $vhdError =" in function
    keys = hashtable_key_sets("_prelude", "ConvertTo-HvHardDrive")
    normal = next(k for k in keys if "Vhd" in k and "VhdError" not in k)
    assert normal | {"VhdError"} in keys
    for drive in fixture_json("inventory_degraded.json")["VMs"][0]["HardDrives"]:
        check_drive(drive)


def test_fibre_channel_adapters_are_inventoried():
    from .test_shapes import assert_printed_by, check_vm

    (vm,) = fixture_json("inventory_degraded.json")["VMs"]
    check_vm(vm)
    for adapter in vm["FibreChannelAdapters"]:
        assert_printed_by(adapter, "_prelude", "ConvertTo-HvFibreChannelAdapter")
    assert "Get-VMFibreChannelHba -VM $Vm" in _function("ConvertTo-HvVm")


def test_get_host_runs_on_hosts_without_get_vmhostsupportedversion():
    """Review fix 7: the cmdlet arrived with Windows Server 2016; older hosts print no versions."""
    from .test_shapes import assert_printed_by

    code = _code_without_comments(script_text("get_host").encode())
    guard = "if (Get-Command -Name Get-VMHostSupportedVersion -ErrorAction SilentlyContinue) {"
    assert guard in code and code.index(guard) < code.index("@(Get-VMHostSupportedVersion")
    assert_printed_by(fixture_json("get_host_2012r2.json"), "get_host")


def test_job_result_documents_may_carry_warnings():
    from .test_shapes import assert_printed_by

    document = fixture_json("poll_job_warning.json")
    assert all(isinstance(w, str) for w in document.pop("Warnings"))
    assert_printed_by(document, "poll_job")


def fixture_json(name: str) -> dict:
    return json.loads((Path(__file__).parent / "fixtures" / name).read_text())
