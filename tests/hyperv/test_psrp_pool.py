"""PsrpTransport's long-lived pool against a loopback WinRM stand-in (tests/hyperv/psrp_server.py).

What WinRM does to a pool that lives for a whole backup (docs/HYPERV.md §15): it counts every
pipeline never terminated against MaxConcurrentCommandsPerShell (pypsrp#148), it forgets a shell
left idle (IdleTimeout, pypsrp#21), and the connection can die while a script runs. Each test
runs pypsrp's real client over HTTPS with NTLM against the stand-in's WSMan and PSRP.
"""

from __future__ import annotations

import time

import pytest

from hvbackup.hyperv.errors import TransportError
from hvbackup.hyperv.transport.psrp import PsrpOptions, PsrpTransport

from .psrp_server import PASSWORD, USER, Endpoint, WinRMStandIn, serve


def transport(endpoint: Endpoint, **kw) -> PsrpTransport:
    base = dict(
        host="127.0.0.1",
        port=endpoint.port,
        auth="ntlm",
        username=USER,
        password=PASSWORD,
        cert_validation=str(endpoint.ca_file),
        connection_timeout=5,
        operation_timeout=5,
        read_timeout=10,
    )
    return PsrpTransport(PsrpOptions(**(base | kw)))


def echo(script: str) -> str:
    return f"ran {script}"


@pytest.mark.slow
def test_1200_calls_through_one_pool_when_the_shell_allows_1000_open_commands(tmp_path):
    winrm = WinRMStandIn(answer=echo, max_commands_per_shell=1000)
    with serve(tmp_path, winrm) as endpoint:
        host = transport(endpoint)
        for call in range(1200):
            assert host.run(f"call {call}", timeout=10) == f"ran call {call}"
        host.close()
    assert winrm.errors == []
    assert winrm.commands_refused == 0 and winrm.shells_created == 1  # one pool, never refused, never reopened
    assert len(winrm.scripts_run) == 1200


def test_a_pool_the_host_forgot_while_idle_is_checked_and_reopened_before_the_call(tmp_path):
    winrm = WinRMStandIn(answer=echo, idle_timeout=1.0)
    with serve(tmp_path, winrm) as endpoint:
        host = transport(endpoint, pool_idle_check=0.5)
        assert host.run("Get-VM", timeout=10) == "ran Get-VM"
        time.sleep(1.5)  # a long disk read: the host forgets the idle shell
        assert host.run("Get-VMSnapshot", timeout=10) == "ran Get-VMSnapshot"
        host.close()
    assert winrm.errors == []
    assert winrm.shells_forgotten == 1 and winrm.shells_created == 2
    assert winrm.health_checks == 1
    # The health check found it gone (then the dropped shell's Delete is refused); no command was sent into the void.
    assert winrm.unknown_shell_requests == ["Get", "Delete"]
    assert winrm.scripts_run == ["Get-VM", "Get-VMSnapshot"]


def test_a_call_refused_by_a_forgotten_pool_before_its_check_is_due_runs_once_on_a_new_pool(tmp_path):
    winrm = WinRMStandIn(answer=echo, idle_timeout=0.5)
    with serve(tmp_path, winrm) as endpoint:
        host = transport(endpoint)  # the default check interval is longer than this host's idle timeout
        assert host.run("Get-VM", timeout=10) == "ran Get-VM"
        time.sleep(1.0)
        assert host.run("Get-VMSnapshot", timeout=10) == "ran Get-VMSnapshot"
        host.close()
    assert winrm.errors == []
    assert winrm.unknown_shell_requests[0] == "Command"  # refused: the pipeline never started
    assert winrm.shells_created == 2
    assert winrm.scripts_run == ["Get-VM", "Get-VMSnapshot"]  # each script ran exactly once


def test_a_call_whose_script_had_started_when_the_connection_died_is_not_run_again_and_says_why(tmp_path):
    winrm = WinRMStandIn(answer=echo)
    with serve(tmp_path, winrm) as endpoint:
        host = transport(endpoint)
        assert host.run("Get-VM", timeout=10) == "ran Get-VM"
        winrm.hang_up_after_command = True
        with pytest.raises(TransportError) as caught:
            host.run("Checkpoint-VM", timeout=10)
        assert winrm.scripts_run == ["Get-VM", "Checkpoint-VM"]  # run once, not twice
        assert host.run("Get-VM", timeout=10) == "ran Get-VM"  # the next call gets a new pool
        host.close()
    text = str(caught.value)
    assert "\n" not in text and PASSWORD not in text
    assert text.startswith(
        f"127.0.0.1:{endpoint.port}: the connection failed after the script had started"
        " (the host closed the connection without answering); it is not run again"
    )
    assert "it is not run again" in text and "taking a checkpoint must not happen twice" in text
    assert winrm.connections_hung_up == 1 and winrm.shells_created == 2


def test_a_new_pool_that_refuses_the_command_is_not_retried(tmp_path):
    winrm = WinRMStandIn(answer=echo, max_commands_per_shell=0)
    with serve(tmp_path, winrm) as endpoint:
        host = transport(endpoint)
        with pytest.raises(TransportError) as caught:
            host.run("Get-VM", timeout=10)
        host.close()
    assert str(caught.value).startswith(f"127.0.0.1:{endpoint.port}: WinRM fault w:InternalError:")
    assert "maximum number of concurrent commands per shell" in str(caught.value)
    assert winrm.commands_refused == 1 and winrm.shells_created == 1 and winrm.scripts_run == []


def test_every_call_terminates_its_pipeline(tmp_path):
    winrm = WinRMStandIn(answer=echo, max_commands_per_shell=5)
    with serve(tmp_path, winrm) as endpoint:
        host = transport(endpoint)
        for call in range(3):
            host.run(f"call {call}", timeout=10)
            assert winrm.open_commands() == [0]
        host.close()
    assert winrm.shells == {}  # closing the transport deletes the shell
