"""`worldbridge serve`, `keys` and `bench` as users run them."""

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.client import ProtocolError, WorldClient
from bridge.files import umask
from bridge.host.backends import SANDBOX_NOTICE, resolve_backend
from bridge.host.bench import bench
from bridge.host.cli import keys, serve
from bridge.host.protocol import Limits
from helpers import ROOT, cli_env
from test_model_data import DAMAGE, USAGE_DAMAGE, damaged_checkpoint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(*args: str, backend: tuple[str, ...] = ("--backend", "sandbox"),
            env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, int]]:
    """`serve` with `backend` on a free loopback port; leaving the block SIGTERMs it, which must exit 0."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bridge.cli", "serve", *backend, "--bind", f"tcp://127.0.0.1:{port}",
                             *args], stderr=subprocess.PIPE, text=True, env=env)
    try:
        yield proc, port
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_runs_says_which_backend_and_stops_on_sigterm():
    with serving() as (proc, port):
        line = proc.stderr.readline()
        assert "serving SANDBOX GAME (test backend, not the world model): sandbox game;" in line and f"127.0.0.1:{port}" in line
        with WorldClient(f"tcp://127.0.0.1:{port}", timeout=10) as c:
            s = c.start(mode="step")
            assert s["backend_kind"] == "sandbox" and c.step(1).index == 1


def test_serve_confines_recordings_to_its_folder(tmp_path):
    with serving("--recordings", str(tmp_path / "rec")) as (proc, port):
        proc.stderr.readline()
        with WorldClient(f"tcp://127.0.0.1:{port}", timeout=10) as c:
            c.start(mode="step")
            with pytest.raises(ProtocolError, match="--record-anywhere") as e:
                c.record_start(str(tmp_path / "mine" / "a.wbrec"))
            assert str((tmp_path / "rec").resolve()) in e.value.message and not (tmp_path / "mine").exists()
            assert c.record_start("a.wbrec")["path"] == str(tmp_path / "rec" / "a.wbrec")


def test_serve_allows_record_anywhere_on_loopback_only(tmp_path):
    from zmq.auth import create_certificates

    secret = Path(create_certificates(str(tmp_path), "host")[1])
    res = CliRunner().invoke(serve, ["--backend", "sandbox", "--bind", "tcp://0.0.0.0:5599", "--curve-secret",
                                     str(secret), "--record-anywhere"])
    assert res.exit_code != 0 and "--record-anywhere is for hosts bound to loopback only" in res.output


@pytest.mark.parametrize("content", [b"", b"\x00\xffnot a key"])
def test_serve_names_a_curve_secret_that_holds_no_secret_key(tmp_path, content):
    secret = tmp_path / "host.key_secret"
    secret.write_bytes(content)
    res = CliRunner().invoke(serve, ["--backend", "sandbox", "--bind", "tcp://0.0.0.0:5599", "--curve-secret", str(secret)])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    assert f"--curve-secret {secret} holds no CURVE secret key: pass the host.key_secret file" in res.output


def test_serve_refuses_public_bind_without_keys():
    res = CliRunner().invoke(serve, ["--backend", "sandbox", "--bind", "tcp://0.0.0.0:5599"])
    assert res.exit_code != 0 and "worldbridge keys" in res.output


def test_default_backend_falls_back_to_sandbox_loudly(monkeypatch, tmp_path):
    import bridge.host.backends as B

    monkeypatch.setattr(B, "DEFAULT_WORLD", tmp_path / "missing")
    spec = resolve_backend()
    assert spec.kind == "sandbox" and spec.notice == SANDBOX_NOTICE
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setattr(B, "DEFAULT_WORLD", tmp_path)
    assert resolve_backend().kind == "world_model" and resolve_backend().checkpoint == str(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        resolve_backend(checkpoint=tmp_path / "nope")
    with pytest.raises(ValueError, match="not both"):
        resolve_backend("sandbox", tmp_path)


@pytest.mark.parametrize("backend, checkpoint", [("sandbox", "run"), ("sandbx", None)])
def test_resolve_backend_words_its_refusals_for_python_not_for_a_command_line(backend, checkpoint):
    """`resolve_backend("sandbx")` said "use --backend sandbox or --checkpoint PATH" to a Python caller."""
    with pytest.raises(ValueError) as e:
        resolve_backend(backend, checkpoint)
    assert "backend='sandbox' or checkpoint=PATH" in str(e.value) and "--" not in str(e.value), e.value


@pytest.mark.parametrize("asked, env, want", [(None, None, 1), (None, "2", "torch"), (2, None, 2), (0, None, "torch"),
                                               (1, "2", 1)])
def test_the_world_runs_on_one_cpu_thread_unless_told_otherwise(monkeypatch, asked, env, want):
    import torch

    from bridge.host.backends import set_cpu_threads

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    if env is not None:
        monkeypatch.setenv("OMP_NUM_THREADS", env)
    try:
        torch.set_num_threads(3)  # stands for PyTorch's own default (every core, or OMP_NUM_THREADS)
        assert set_cpu_threads(asked) == (3 if want == "torch" else want) == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_keys_writes_curve_pairs_and_never_overwrites(tmp_path):
    runner = CliRunner()
    res = runner.invoke(keys, ["--out", str(tmp_path / "k")])
    assert res.exit_code == 0 and "--curve-secret" in res.output
    from zmq.auth import load_certificate

    public, secret = load_certificate(str(tmp_path / "k" / "host.key_secret"))
    assert len(public) == 40 and len(secret) == 40
    assert oct(os.stat(tmp_path / "k" / "host.key_secret").st_mode)[-3:] == "600"
    assert oct(os.stat(tmp_path / "k" / "host.key").st_mode)[-3:] == oct(0o666 & ~umask())[-3:]
    res = runner.invoke(keys, ["--out", str(tmp_path / "k")])
    assert res.exit_code != 0 and "never overwritten" in res.output


def test_bench_json_has_the_promised_fields():
    res = CliRunner().invoke(bench, ["--json", "--backend", "sandbox", "--frames", "40", "--host", "thread",
                                     "--no-scaling"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    assert report["backend_kind"] == "sandbox" and report["backend_name"] == "sandbox game"
    for key in ("in_process", "end_to_end"):
        assert set(report[key]) == {"fps", "latency_ms_p50", "latency_ms_p95"} and report[key]["fps"] > 0
    assert report["end_to_end"]["latency_ms_p50"] >= report["in_process"]["latency_ms_p50"]
    assert 0 < report["protocol_overhead_ms_p95"] < 50
    assert "thread" in report["host"]


@pytest.mark.parametrize("how", DAMAGE)
def test_serve_refuses_a_bad_checkpoint_at_startup(tmp_path, how, monkeypatch):
    from bridge.host.server import Host

    monkeypatch.setattr(Host, "run", lambda self: None)  # a host that did start returns at once instead of serving
    res = CliRunner().invoke(serve, ["--checkpoint", str(damaged_checkpoint(tmp_path, how)), "--bind",
                                     "tcp://127.0.0.1:*"])
    code = 2 if how in USAGE_DAMAGE else 1
    assert res.exit_code == code and res.output.count("Error: ") == 1 and str(tmp_path / "ck") in res.output, res.output
    assert "serving" not in res.output


@pytest.mark.parametrize("bind", ["garbage", "tcp://0.0.0.0", "tcp://127.0.0.1:99999", "udp://1.2.3.4:5"])
def test_serve_names_an_invalid_endpoint(bind, monkeypatch):
    from bridge.host.server import Host

    monkeypatch.setattr(Host, "run", lambda self: None)
    res = CliRunner().invoke(serve, ["--backend", "sandbox", "--bind", bind])
    assert res.exit_code == 1 and "not a valid endpoint" in res.output and "beyond this machine" not in res.output


def test_keys_writes_each_secret_unreadable_to_others_from_its_first_byte(tmp_path, monkeypatch):
    import zmq.auth

    masks = []
    real = zmq.auth.create_certificates
    monkeypatch.setattr(zmq.auth, "create_certificates", lambda *a: (masks.append(umask()), real(*a))[1])
    before = umask()
    assert CliRunner().invoke(keys, ["--out", str(tmp_path / "k")]).exit_code == 0
    assert masks == [0o077, 0o077] and umask() == before  # written under 077, and the user's umask is back


@pytest.mark.parametrize("where", ["/sys/worldbridge-keys", "/proc/worldbridge-keys"])
def test_keys_in_an_unwritable_place_is_one_clear_error(where):
    res = CliRunner().invoke(keys, ["--out", where])
    assert res.exit_code == 1 and res.output.startswith("Error: cannot write keys") and "Traceback" not in res.output


def test_keys_quotes_the_path_it_tells_you_to_paste(tmp_path):
    import shlex

    out = tmp_path / "k ü"
    res = CliRunner().invoke(keys, ["--out", str(out)])
    assert res.exit_code == 0 and f"--curve-secret {shlex.quote(str(out / 'host.key_secret'))}\n" in res.output


def test_preload_reads_the_world_on_a_thread_that_ends_and_passes_its_errors_on():
    """torch's OpenMP workers live as long as the thread that started them: a world loaded on the main thread made
    the demo's host thread run at half speed (15 against 30 frames/s), so preload must not touch torch there."""
    import threading

    from bridge.host.backends import BackendSpec, preload

    seen = []

    class Probe(BackendSpec):
        def create(self):
            seen.append(threading.current_thread())
            if self.checkpoint == "bad":
                raise ValueError("bad checkpoint: retrain it")
            return "world"

    spec = preload(Probe("world_model", checkpoint="good"))
    assert spec.factory() == "world" and len(seen) == 1  # sessions spawn from that one load
    assert seen[0] is not threading.main_thread() and not seen[0].is_alive()
    with pytest.raises(ValueError, match="bad checkpoint: retrain it"):
        preload(Probe("world_model", checkpoint="bad"))


def test_serve_loads_the_text_encoder_once_bound_only_for_worlds_that_read_text(tmp_path, monkeypatch):
    from bridge import DEFAULT_WORLD
    from bridge.host.server import Host
    from bridge.prompts import text_encoder

    warmed, bound = [], []
    monkeypatch.setattr(text_encoder, "warm_up", lambda names: warmed.append((names, list(bound))))
    monkeypatch.setattr(Host, "run", lambda self: bound.append(self.address) or None)
    monkeypatch.setattr(Host, "__init__", lambda self, *a, **kw: (bound.append("bound"),
                                                                  setattr(self, "address", "x"))[0])
    assert CliRunner().invoke(serve, []).exit_code == 0  # the embedded world reads text prompts and events
    assert warmed == [(["minilm"], ["bound"])]  # after binding, before serving
    assert CliRunner().invoke(serve, ["--backend", "sandbox"]).exit_code == 0  # the game matches words itself
    plain = tmp_path / "plain"
    plain.mkdir()
    for f in ("config.json", "model.safetensors"):  # a world model without prompt training
        (plain / f).symlink_to(DEFAULT_WORLD / f)
    monkeypatch.setattr("bridge.host.backends.preload", lambda spec: spec)
    assert CliRunner().invoke(serve, ["--checkpoint", str(plain)]).exit_code == 0
    assert len(warmed) == 1


def test_serve_refuses_ipc_where_zeromq_has_no_ipc_transport(tmp_path, monkeypatch):
    """libzmq on Windows is often built without ipc://: say so and name the fix before the world loads."""
    import zmq

    from bridge.host.server import Host

    has = zmq.has
    monkeypatch.setattr(zmq, "has", lambda what: False if what == "ipc" else has(what))
    monkeypatch.setattr(Host, "run", lambda self: None)
    res = CliRunner().invoke(serve, ["--backend", "sandbox", "--bind", f"ipc://{tmp_path}/wb.sock"])
    assert res.exit_code == 1 and "has no ipc:// transport" in res.output, res.output
    assert "use tcp://127.0.0.1:PORT" in res.output and "another host" not in res.output
    with pytest.raises(OSError, match="has no ipc:// transport.*use tcp://127.0.0.1:PORT"):
        Host("sandbox", bind=f"ipc://{tmp_path}/wb.sock")  # a host made in a program says the same


def test_a_bind_error_asks_about_another_host_only_when_the_port_is_taken(monkeypatch):
    import zmq

    from bridge.host.server import Host

    first = Host("sandbox", bind="tcp://127.0.0.1:*")
    try:
        with pytest.raises(OSError, match="is another host running\\? pick another port"):
            Host("sandbox", bind=first.address)
    finally:
        first.close()

    def refuse(self, addr):
        raise zmq.ZMQError(zmq.EPROTONOSUPPORT)

    monkeypatch.setattr(zmq.Socket, "bind", refuse)
    with pytest.raises(OSError) as e:
        Host("sandbox", bind="tcp://127.0.0.1:*")
    assert "cannot bind tcp://127.0.0.1:*: Protocol not supported" in str(e.value)
    assert "another host" not in str(e.value)


@pytest.mark.parametrize("folder", ["my keys", "R&D", "100%", "a|b"])
def test_keys_on_windows_quotes_for_cmd_and_says_what_protects_the_secret(tmp_path, monkeypatch, folder):
    """cmd.exe does not read shlex's single quotes, runs what follows an unquoted & or | as a command of its own, and
    umask does nothing on Windows."""
    from types import SimpleNamespace

    import bridge.values as values

    out = tmp_path / folder
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(values, "os", SimpleNamespace(name="nt"))  # os.name itself would make pathlib's Path Windows'
    res = CliRunner().invoke(keys, ["--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f'--curve-secret "{out / "host.key_secret"}"\n' in res.output
    assert f"wrote {out / 'host.key'}(_secret) and {out / 'client.key'}(_secret)\n" in res.output
    assert "protected only by the permissions of its folder" in res.output and "user profile" in res.output


@pytest.mark.parametrize("word, quoted", [("plain", "plain"), ("a&b", '"a&b"'), ("x|y", '"x|y"'), ("100%", '"100%"'),
                                          ("(a)<b>^", '"(a)<b>^"'), ("C:\\my dir\\", '"C:\\my dir\\\\"'),
                                          ("C:\\a&b\\", '"C:\\a&b\\\\"'), ('say "hi"&', '"say \\"hi\\"&"')])
def test_a_word_for_cmd_exe_is_quoted_where_cmd_exe_would_split_it(monkeypatch, word, quoted):
    """list2cmdline follows the C runtime's rules only: `a&b` passed unquoted, and cmd.exe ran `b` as a command."""
    from bridge.values import shell_quote

    monkeypatch.setattr(os, "name", "nt")
    got = shell_quote(word)
    monkeypatch.undo()
    assert got == quoted


def test_keys_elsewhere_says_nothing_about_windows(tmp_path):
    res = CliRunner().invoke(keys, ["--out", str(tmp_path / "k")])
    assert res.exit_code == 0 and "user profile" not in res.output and "'" not in res.output


def test_keys_reads_its_key_files_as_utf8_whatever_the_locale(tmp_path):
    res = subprocess.run([sys.executable, "-X", "warn_default_encoding", "-m", "bridge.cli", "keys", "--out",
                          str(tmp_path / "k")], capture_output=True, text=True, env=cli_env(), timeout=60)
    assert res.returncode == 0, res.stderr
    assert "cli.py" not in res.stderr, res.stderr  # no EncodingWarning: a text file opened in the locale's encoding


def test_serve_stops_cleanly_on_ctrl_break(monkeypatch):
    """SIGTERM never fires on Windows: Ctrl+Break (SIGBREAK, stood in for by SIGUSR1 here) stops the host cleanly."""
    from bridge.host.server import Host
    from waiting import wait_until

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    signal.signal(signal.SIGUSR1, lambda *_: None)  # without serve's handler the signal does nothing
    monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR1, raising=False)
    stopped = []

    def run(self):
        os.kill(os.getpid(), signal.SIGUSR1)
        stopped.append(wait_until(self._stopping.is_set, timeout=2))
        self.close()

    monkeypatch.setattr(Host, "run", run)
    try:
        res = CliRunner().invoke(serve, ["--backend", "sandbox", "--bind", "tcp://127.0.0.1:*"])
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
    assert res.exit_code == 0 and stopped == [True] and "host stopped" in res.output, res.output


def test_serve_max_message_bytes_raises_the_limit_a_too_large_answer_names(monkeypatch):
    from bridge.host.server import Host

    seen = []
    monkeypatch.setattr(Host, "run", lambda self: None)
    monkeypatch.setattr(Host, "__init__", lambda self, *a, **kw: (seen.append(kw["limits"]),
                                                                  setattr(self, "address", "x"))[0])
    res = CliRunner().invoke(serve, ["--backend", "sandbox", "--max-message-bytes", str(64 << 20)])
    assert res.exit_code == 0, res.output
    assert seen[0].max_message_bytes == 64 << 20 and seen[0].max_sessions == 64  # the rest as before
    assert CliRunner().invoke(serve, ["--backend", "sandbox"]).exit_code == 0
    assert seen[1] == Limits()  # every limit option left out: the protocol's defaults, from their one source
    res = CliRunner().invoke(serve, ["--backend", "sandbox", "--max-message-bytes", "100"])
    assert res.exit_code != 0 and "--max-message-bytes" in res.output and len(seen) == 2
