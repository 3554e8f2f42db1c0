"""Throwaway TLS material for tests: a CA, a server certificate for localhost/127.0.0.1 and a
client certificate, made with the openssl command line."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import stop_process


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def have_openssl() -> bool:
    return shutil.which("openssl") is not None


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_tls_files(directory: Path) -> TlsFiles:
    d = directory
    d.mkdir(parents=True, exist_ok=True)
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "2", "-subj", "/CN=modelwatch-test-ca", cwd=d)  # fmt: skip
    (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, ext in (("server", "server.ext"), ("client", "client.ext")):
        _run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
             f"{name}.csr", "-subj", f"/CN={'localhost' if name == 'server' else 'client'}",
             cwd=d)  # fmt: skip
        _run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", ext,
             cwd=d)  # fmt: skip
    return TlsFiles(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem",
                    d / "client.key")  # fmt: skip


def stunnel_binary() -> str | None:
    return shutil.which("stunnel4") or shutil.which("stunnel")


class TlsTerminator:
    """Debian's stunnel in front of a plaintext broker: TLS on ``accept_port`` (client
    certificates signed by the test CA required: mTLS), plaintext to ``connect_port``.
    Started in the foreground, stopped by its pid."""

    def __init__(self, accept_port: int, connect_port: int, tls: TlsFiles, workdir: Path,
                 require_client_cert: bool = True) -> None:
        self.accept_port = accept_port
        self.connect_port = connect_port
        self.tls = tls
        self.workdir = workdir
        self.require_client_cert = require_client_cert
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> TlsTerminator:
        binary = stunnel_binary()
        if binary is None:
            raise RuntimeError("stunnel4 is not installed (apt-get install stunnel4)")
        verify = ("verifyChain = yes\nrequireCert = yes\n" if self.require_client_cert
                  else "verifyChain = no\n")  # fmt: skip
        conf = self.workdir / "stunnel.conf"
        conf.write_text(
            "foreground = yes\n"
            f"output = {self.workdir / 'stunnel.log'}\n"
            "[kafka]\n"
            f"accept = 127.0.0.1:{self.accept_port}\n"
            f"connect = 127.0.0.1:{self.connect_port}\n"
            f"cert = {self.tls.server_cert}\n"
            f"key = {self.tls.server_key}\n"
            f"CAfile = {self.tls.ca}\n" + verify
        )
        self.proc = subprocess.Popen(
            [binary, str(conf)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc)
