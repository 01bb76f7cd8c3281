"""Host specs: psrp://user@host[:port], local, lab:DIR — parsed, and bad ones named."""

from __future__ import annotations

import pytest

from hvbackup.connect import PASSWORD_ENV, connect, parse_spec, psrp_options
from hvbackup.errors import HvBackupError, UsageError
from hvbackup.hyperv.errors import UnsupportedHost
from hvbackup.hyperv.powershell import PowerShellHost
from hvbackup.hyperv.smb import SmbDiskOpener
from hvbackup.hyperv.transport.psrp import PsrpTransport


def test_psrp_spec_defaults_to_https_5986():
    spec = parse_spec("psrp://backup@hv01.example.com")
    assert (spec.kind, spec.host, spec.port, spec.username) == ("psrp", "hv01.example.com", 5986, "backup")


def test_psrp_spec_with_port_domain_user_and_options():
    spec = parse_spec("psrp://CORP%5Cbackup@hv01:5985?auth=ntlm&ssl=0")
    assert (spec.host, spec.port, spec.username) == ("hv01", 5985, "CORP\\backup")
    assert spec.options == {"auth": "ntlm", "ssl": "0"}
    assert parse_spec("psrp://hv02?ssl=0").port == 5985
    assert parse_spec("psrp://backup@corp.example@hv03").username == "backup@corp.example"
    assert parse_spec("psrp://[fd00::5]:5986").host == "fd00::5"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hyperv://hv01", "unknown host spec"),
        ("psrp://", "no host name"),
        ("psrp://hv01:99999", "bad port"),
        ("psrp://hv01:https", "bad port"),
        ("psrp://hv01?auth=basic", "unknown auth 'basic'"),
        ("psrp://hv01?colour=blue", "unknown option"),
        ("psrp://hv01?ssl=maybe", "must be 1 or 0"),
        ("lab:", "needs a directory"),
    ],
)
def test_bad_specs_are_usage_errors(spec, message):
    with pytest.raises(UsageError, match=message) as caught:
        parse_spec(spec)
    assert caught.value.exit_code == UsageError.exit_code and "\n" not in str(caught.value)


def test_password_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(PASSWORD_ENV, "s3cret")
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    opts = psrp_options(parse_spec(f"psrp://backup@hv01?auth=ntlm&verify={tmp_path}/ca.pem"))
    assert opts.password == "s3cret" and opts.cert_validation == f"{tmp_path}/ca.pem" and opts.auth == "ntlm"
    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(UsageError, match=PASSWORD_ENV):
        psrp_options(parse_spec("psrp://backup@hv01"))
    kerberos = psrp_options(parse_spec("psrp://backup@hv01?auth=kerberos&verify=0"))
    assert kerberos.password is None and kerberos.cert_validation is False


def test_connect_psrp_builds_a_powershell_host_with_smb_disks(monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "pw")
    host = connect("psrp://backup@hv01.example.com")
    assert isinstance(host, PowerShellHost) and isinstance(host.transport, PsrpTransport)
    assert isinstance(host.disk_opener, SmbDiskOpener) and host.disk_opener.host == "hv01.example.com"
    host.close()  # no connection was made yet: nothing to close, and no error


def test_connect_local_without_powershell_is_unsupported(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UnsupportedHost) as caught:
        connect("local")
    assert isinstance(caught.value, HvBackupError)


def test_lab_spec_opens_the_powershell_host_over_the_lab_in_that_folder(tmp_path):
    from hvbackup.hyperv.filesource import LocalFileSource
    from hvbackup.hyperv.powershell import PowerShellHost
    from hvbackup.lab import LabHost
    from hvbackup.lab.transport import LabTransport

    LabHost.create(tmp_path / "lab")
    host = connect(f"lab:{tmp_path / 'lab'}")
    assert isinstance(host, PowerShellHost) and host.disk_opener is LocalFileSource
    assert isinstance(host.transport, LabTransport) and host.transport.lab.directory == tmp_path / "lab"
    assert host.host_info().name == "LAB-HV01"


def test_two_lab_folders_are_two_hosts_though_both_are_named_lab_hv01(tmp_path):
    from hvbackup.lab import LabHost

    first, second = LabHost.create(tmp_path / "one"), LabHost.create(tmp_path / "two")
    hosts = [connect(f"lab:{lab.directory}") for lab in (first, second)]
    assert [h.host_info().name for h in hosts] == ["LAB-HV01", "LAB-HV01"]
    assert hosts[0].identity() != hosts[1].identity()
    assert hosts[0].identity() == first.identity() == connect(f"lab:{first.directory}").identity()


@pytest.mark.parametrize("option", ["verify", "cert", "key"])
def test_a_missing_ca_certificate_or_key_file_is_named_before_connecting(tmp_path, option):
    present = tmp_path / "present.pem"
    present.write_text("pem")
    files = {"cert": present, "key": present, "verify": present} | {option: tmp_path / "missing.pem"}
    spec = parse_spec(f"psrp://hv01?auth=certificate&cert={files['cert']}&key={files['key']}&verify={files['verify']}")
    with pytest.raises(UsageError) as caught:
        psrp_options(spec)
    assert str(caught.value) == f"{option}={tmp_path}/missing.pem in the host spec: no such file"


def test_a_lab_spec_naming_a_file_is_refused(tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(UsageError) as caught:
        connect(f"lab:{tmp_path}/a-file")
    assert str(caught.value) == f"lab:{tmp_path}/a-file: {tmp_path}/a-file is a file, not a lab host folder"
