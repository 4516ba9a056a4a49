"""The Unity plugin's C# without Unity: the protocol core's NUnit tests (golden vectors, ZMTP edge cases, the
connection), the Unity-facing scripts compiled against compile-only API stubs, and a mono client that plays a
session against `worldbridge serve` and must see exactly the frames the Python client sees."""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "unity_plugin"
STUBS = PLUGIN / "Tests" / "CompileOnly~"
VECTORS = ROOT / "docs" / "protocol" / "vectors"
NUNIT = Path("/usr/lib/cli/nunit.framework-2.6.3/nunit.framework.dll")

APT = "mono-mcs mono-devel nunit-console libnunit-framework2.6.3-cil"  # as .ci/run installs them


def missing_csharp_tools(which=shutil.which, framework: Path = NUNIT) -> list[str]:
    """What the C# tests need and this machine lacks; the NUnit framework is a package of its own, which nunit-console
    does not pull in with --no-install-recommends."""
    tools = [tool for tool in ("mcs", "mono", "nunit-console") if which(tool) is None]
    return tools + ([str(framework)] if not framework.is_file() else [])


_missing = missing_csharp_tools()
pytestmark = pytest.mark.skipif(bool(_missing), reason=f"needs {', '.join(_missing)}: apt-get install "
                                                      f"--no-install-recommends {APT} (.ci/run installs them)")


def mcs(out: Path, sources: list[Path], refs: tuple[Path | str, ...] = (), defines: tuple[str, ...] = (),
        target: str = "library") -> Path:
    """Compile with the C# subset both mono and Unity accept; warnings are errors."""
    cmd = ["mcs", "-langversion:7.2", "-warnaserror", "-nologo", f"-target:{target}", f"-out:{out}"]
    cmd += [f"-r:{r}" for r in refs] + ([f"-define:{';'.join(defines)}"] if defines else [])
    result = subprocess.run(cmd + [str(s) for s in sources], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"mcs failed for {out.name}:\n{result.stdout}{result.stderr}"
    return out


def cs(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.cs"))
    assert files, f"no C# sources in {folder}"
    return files


# a method with its attribute lines above it (or before it on its line), and a test attribute among them
_CS_METHOD = re.compile(r"^[ \t]*((?:\[.*\][ \t]*\n?[ \t]*)+)(?:public|internal)\b[^(=;{]*?(\w+)\s*\(", re.M)
_CS_TEST = re.compile(r"(?<![\w.])(?:\w+\.)*Test(?:Case(?:Source)?)?\s*[\](,]")


def declared_tests(source: str) -> set[str]:
    """The methods of C# `source` that NUnit runs: those with Test, TestCase or TestCaseSource among their attributes,
    however written ([Test, Timeout(1)], [Test(Description = "…")], [TestCase(new[] { 1 })], stacked, qualified)."""
    code = re.sub(r'"(?:\\.|[^"\\\n])*"', '""', source)  # a "[Test]" inside a string is no attribute
    return {m.group(2) for m in _CS_METHOD.finditer(code) if _CS_TEST.search(m.group(1))}


def assert_every_test_ran(names: set[str], folder: Path) -> None:
    """Each test method declared in `folder` ran: a test left out of the build is not a pass."""
    declared = {m for f in cs(folder) for m in declared_tests(f.read_text())}
    ran = {n.split("(", 1)[0].rsplit(".", 1)[-1] for n in names}
    assert len(declared) >= 5, f"found only {sorted(declared)} in {folder}: has the [Test] syntax changed?"
    assert not declared - ran, f"declared in {folder.name} but did not run: {sorted(declared - ran)}"


TEST_FORMS = """using NUnit.Framework;
namespace T
{
    [TestFixture]
    public class Forms
    {
        [SetUp]
        public void Prepare() { var s = "[Test] public void InAString() {"; }

        // [Test] public void CommentedOut() { }

        [Test]
        public void Plain() { }

        [TestCase(new[] { 1, 2 })]
        [TestCase(new[] { 3 })]
        public void ArrayCases(int[] xs) { }

        [Test, Timeout(1000)]
        public void WithTimeout() { }

        [Test(Description = "a ] inside [text]")]
        public void Described() { }

        [Timeout(5)]
        [Test]
        public async System.Threading.Tasks.Task AfterAnother() { await System.Threading.Tasks.Task.Yield(); }

        [NUnit.Framework.TestCase("x", ExpectedResult = 1)]
        public static int Qualified(string s) => 1;

        [TestCaseSource(nameof(Cases))]
        public void FromSource(int x) { }
        static readonly int[] Cases = { 1 };

        [Test] public void OnOneLine() { }

        [Category("slow")]
        public void NotATest() { }
    }
}
"""
TEST_FORM_NAMES = {"Plain", "ArrayCases", "WithTimeout", "Described", "AfterAnother", "Qualified", "FromSource", "OnOneLine"}


def test_every_way_of_writing_a_test_counts_as_declared(tmp_path: Path):
    """[TestCase(new[] {…})], [Test, Timeout(…)], [Test(Description = …)], stacked and qualified attributes are tests;
    [SetUp], [Category] and text inside strings and comments are not."""
    (tmp_path / "Forms.cs").write_text(TEST_FORMS)
    assert_every_test_ran({f"T.Forms.{name}(1)" for name in TEST_FORM_NAMES}, tmp_path)
    for name in sorted(TEST_FORM_NAMES):
        with pytest.raises(AssertionError, match=rf"did not run: \['{name}'\]"):
            assert_every_test_ran({f"T.Forms.{other}" for other in TEST_FORM_NAMES - {name}}, tmp_path)


def test_without_the_nunit_framework_the_tests_skip_naming_it(tmp_path: Path):
    """nunit-console does not pull in libnunit-framework2.6.3-cil: with only the framework missing the C# tests failed
    on a missing DLL instead of skipping with the apt line."""
    every_tool = lambda tool: f"/usr/bin/{tool}"  # noqa: E731
    absent = tmp_path / "nunit.framework.dll"
    assert missing_csharp_tools(every_tool, absent) == [str(absent)]
    absent.write_bytes(b"")
    assert missing_csharp_tools(every_tool, absent) == []
    assert missing_csharp_tools(lambda tool: None, absent) == ["mcs", "mono", "nunit-console"]
    assert "libnunit-framework2.6.3-cil" in APT.split()


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """WorldBridge.Core.dll and the compile-only Unity stub assemblies, built once per test run."""
    out = tmp_path_factory.mktemp("unity_build")
    mcs(out / "WorldBridge.Core.dll", cs(PLUGIN / "Runtime" / "Core"))
    mcs(out / "UnityEngine.dll", [STUBS / "UnityEngine.cs"])
    mcs(out / "UnityEngine.UI.dll", [STUBS / "UnityEngine.UI.cs"], (out / "UnityEngine.dll",))
    mcs(out / "Unity.InputSystem.dll", [STUBS / "Unity.InputSystem.cs"], (out / "UnityEngine.dll", out / "UnityEngine.UI.dll"))
    mcs(out / "UnityEditor.dll", [STUBS / "UnityEditor.cs"], (out / "UnityEngine.dll",))
    return out


# --- Protocol core: NUnit ---

def test_core_nunit_suite_passes_with_golden_vectors(build: Path, tmp_path: Path):
    tests = mcs(tmp_path / "WorldBridge.Core.Tests.dll", cs(PLUGIN / "Tests" / "Core"),
                (build / "WorldBridge.Core.dll", NUNIT, "System.Core.dll"))
    shutil.copy(build / "WorldBridge.Core.dll", tmp_path)
    result_xml = tmp_path / "nunit.xml"
    env = dict(os.environ, WORLDBRIDGE_VECTORS=str(VECTORS))
    run = subprocess.run(["nunit-console", "-nologo", "-noshadow", f"-xml={result_xml}", str(tests)],
                         capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env)
    assert result_xml.is_file(), f"nunit-console wrote no results:\n{run.stdout}{run.stderr}"
    summary = ET.parse(result_xml).getroot().attrib
    assert run.returncode == 0 and summary["failures"] == "0" and summary["errors"] == "0", run.stdout[-6000:]
    assert int(summary["total"]) >= 30, f"only {summary['total']} NUnit tests ran"
    # skipped would mean the golden vectors were not found: a silent pass is not a pass
    assert summary["ignored"] == "0" and summary["skipped"] == "0" and summary["not-run"] == "0", run.stdout[-3000:]
    names = {case.get("name") for case in ET.parse(result_xml).getroot().iter("test-case")}
    assert_every_test_ran(names, PLUGIN / "Tests" / "Core")


# --- Unity-facing scripts against the compile-only stubs ---

def _nunit_passes(tests: Path, refs: tuple[Path, ...], tmp_path: Path) -> set[str]:
    """Runs an NUnit assembly (built in tmp_path) with `refs` copied beside it; every test must pass. Returns their names."""
    for dll in refs:
        shutil.copy(dll, tmp_path)
    result_xml = tmp_path / "nunit.xml"
    run = subprocess.run(["nunit-console", "-nologo", "-noshadow", f"-xml={result_xml}", str(tests)],
                         capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert result_xml.is_file(), f"nunit-console wrote no results:\n{run.stdout}{run.stderr}"
    summary = ET.parse(result_xml).getroot().attrib
    assert run.returncode == 0 and summary["failures"] == "0" and summary["errors"] == "0", run.stdout[-6000:]
    return {case.get("name") for case in ET.parse(result_xml).getroot().iter("test-case")}


DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"


def dial_logging_core(out: Path, log: Path) -> Path:
    """WorldBridge.Core.dll built in `out` whose WorldBridgeConnection.Connect() also appends the endpoint it dials to
    `log`, a line each: which hosts a test run reaches."""
    source = shutil.copytree(PLUGIN / "Runtime" / "Core", out / "core")
    connection = source / "WorldBridgeConnection.cs"
    text = connection.read_text()
    hook = "        public void Connect()\n        {\n"
    assert text.count(hook) == 1, "WorldBridgeConnection.Connect() changed its form: update the dial log's hook"
    line = f'            System.IO.File.AppendAllText(@"{log}", Options.Endpoint + "\\n");\n'
    connection.write_text(text.replace(hook, hook + line))
    return mcs(out / "WorldBridge.Core.dll", cs(source))


def dialed_endpoints(dialed: Path) -> list[str]:
    """The endpoints the run that `dialed` logged connected to, none of them the default."""
    endpoints = dialed.read_text().split() if dialed.is_file() else []
    assert DEFAULT_ENDPOINT not in endpoints, f"{endpoints.count(DEFAULT_ENDPOINT)} connections to {DEFAULT_ENDPOINT}"
    return endpoints


def test_world_input_checks_nunit(build: Path, tmp_path: Path):
    """The Runtime components' and the Basic World sample's checks, run under mono against Tests/CompileOnly~ (Unity's
    API declared for the compiler). None may connect to the default endpoint: a developer's host (or another job's, on
    a shared machine) listening there would be greeted; the tests add clients with Private.AddClient."""
    dialed = tmp_path / "dialed.txt"
    core = dial_logging_core(tmp_path / "logging", dialed)
    engine = (core, build / "UnityEngine.dll", build / "UnityEngine.UI.dll")
    runtime = mcs(tmp_path / "WorldBridge.Runtime.dll", cs(PLUGIN / "Runtime"), engine)
    sample = mcs(tmp_path / "WorldBridge.Samples.dll", cs(PLUGIN / "Samples~" / "BasicWorld"), engine + (runtime,))
    tests = mcs(tmp_path / "WorldBridge.Runtime.Tests.dll", cs(PLUGIN / "Tests" / "Runtime~"),
                engine + (runtime, sample, NUNIT, "System.Core.dll"))
    names = _nunit_passes(tests, engine, tmp_path)
    assert_every_test_ran(names, PLUGIN / "Tests" / "Runtime~")
    assert dialed_endpoints(dialed), "no test connected: the dial log's hook in Connect() never ran"


def test_editor_window_checks_nunit(build: Path, tmp_path: Path):
    """The editor window's checks, run under mono against Tests/CompileOnly~ with the editor defines Unity compiles it
    with; none connects to the default endpoint."""
    dialed = tmp_path / "dialed.txt"
    core = dial_logging_core(tmp_path / "logging", dialed)
    engine = (core, build / "UnityEngine.dll", build / "UnityEngine.UI.dll", build / "UnityEditor.dll")
    runtime = mcs(tmp_path / "WorldBridge.Runtime.dll", cs(PLUGIN / "Runtime"), engine, ("UNITY_EDITOR",))
    editor = mcs(tmp_path / "WorldBridge.Editor.dll", cs(PLUGIN / "Editor"), engine + (runtime,), ("UNITY_EDITOR",))
    shared = [PLUGIN / "Tests" / "Runtime~" / "Private.cs"]  # the one reflection helper both test builds use
    tests = mcs(tmp_path / "WorldBridge.Editor.Tests.dll", cs(PLUGIN / "Tests" / "Editor~") + shared,
                engine + (runtime, editor, NUNIT, "System.Core.dll"))
    names = _nunit_passes(tests, engine, tmp_path)
    assert_every_test_ran(names, PLUGIN / "Tests" / "Editor~")
    dialed_endpoints(dialed)


VARIANTS = {
    # name: (defines, extra stub assemblies) -- one per way Unity compiles the Runtime assembly
    "player-legacy-input": ((), ()),
    "player-input-system": (("ENABLE_INPUT_SYSTEM", "WORLDBRIDGE_INPUT_SYSTEM"), ("Unity.InputSystem.dll",)),
    "editor-legacy-input": (("UNITY_EDITOR",), ("UnityEditor.dll",)),
    "editor-input-system": (("UNITY_EDITOR", "ENABLE_INPUT_SYSTEM", "WORLDBRIDGE_INPUT_SYSTEM", "UNITY_2022_2_OR_NEWER"),
                            ("UnityEditor.dll", "Unity.InputSystem.dll")),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_unity_scripts_compile_against_the_api_stubs(build: Path, tmp_path: Path, variant: str):
    defines, extra = VARIANTS[variant]
    engine = (build / "WorldBridge.Core.dll", build / "UnityEngine.dll", build / "UnityEngine.UI.dll")
    extra_refs = tuple(build / e for e in extra)
    runtime = mcs(tmp_path / "WorldBridge.Runtime.dll", cs(PLUGIN / "Runtime"), engine + extra_refs, defines)
    mcs(tmp_path / "WorldBridge.Samples.dll", cs(PLUGIN / "Samples~" / "BasicWorld"), engine + extra_refs + (runtime,),
        defines)
    if "UNITY_EDITOR" in defines:
        mcs(tmp_path / "WorldBridge.Editor.dll", cs(PLUGIN / "Editor"), engine + extra_refs + (runtime,), defines)


def test_player_code_cannot_use_the_editor_api(build: Path, tmp_path: Path):
    """Editor-only API outside `#if UNITY_EDITOR` breaks player builds; the player variant must catch it."""
    bad = tmp_path / "Bad.cs"
    bad.write_text("public class Bad { public string P => UnityEditor.AssetDatabase.GetAssetPath(null); }\n")
    with pytest.raises(AssertionError, match="UnityEditor"):
        mcs(tmp_path / "Bad.dll", [bad], (build / "UnityEngine.dll",))


def test_newer_csharp_than_unity_and_mono_share_is_refused(tmp_path: Path):
    src = tmp_path / "Cs8.cs"
    src.write_text("public class Cs8 { public int F(object o) { return o switch { int i => i, _ => 0 }; } }\n")
    with pytest.raises(AssertionError, match="mcs failed"):
        mcs(tmp_path / "Cs8.dll", [src])


# --- Interop with the real host ---

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"worldbridge serve exited: {proc.stderr.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"worldbridge serve did not listen on {port} within {timeout} s")


@pytest.fixture(scope="module")
def interop_exe(build: Path) -> Path:
    return mcs(build / "InteropClient.exe", cs(PLUGIN / "Tests" / "Interop~"), (build / "WorldBridge.Core.dll",),
               target="exe")


def _write_layer(path: Path, size: int = 4) -> Path:
    """A small opaque-red-square RGBA PNG with a transparent border, written the way the Python client encodes layers."""
    import numpy as np

    from bridge.host.pixels import encode_layer

    layer = np.zeros((size, size, 4), np.uint8)
    layer[1:-1, 1:-1] = (255, 0, 0, 255)
    path.write_bytes(encode_layer(layer))
    return path


def _run_interop(exe: Path, endpoint: str, seed: int, actions: list[int], out: Path, *extra: str) -> dict:
    cmd = ["mono", str(exe), "--endpoint", endpoint, "--seed", str(seed), "--actions", ",".join(map(str, actions)),
           "--out", str(out), *extra]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"mono interop client failed:\n{run.stdout}{run.stderr}"
    lines = out.read_text().splitlines()
    parsed: dict = {"frames": []}
    for line in lines:
        kind, _, rest = line.partition(" ")
        if kind == "after_edit":  # "after_edit frame INDEX EPOCH ACTION SIZE DIGEST"
            index, epoch, action, size, digest = rest.split()[1:]
            parsed["after_edit"] = (int(index), int(epoch), int(action), size, digest)
        elif kind == "frame":
            index, epoch, action, size, digest = rest.split()
            parsed["frames"].append((int(index), int(epoch), int(action), size, digest))
        else:
            parsed[kind] = rest
    return parsed


def _python_hashes(endpoint: str, seed: int, actions: list[int]) -> list[tuple[int, int, str]]:
    from bridge.client import WorldClient

    with WorldClient(endpoint, client_name="pytest-interop") as client:
        client.start(backend="sandbox", mode="step", seed=seed)
        first = client.next_frame(timeout=10)
        frames = [first] + [client.step(a) for a in actions]
    return [(f.index, f.action, hashlib.sha256(f.image.tobytes()).hexdigest()) for f in frames]


def test_mono_client_plays_the_sandbox_like_the_python_client(interop_exe: Path, tmp_path: Path):
    port = _free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    host = subprocess.Popen([sys.executable, "-m", "bridge.cli", "serve", "--backend", "sandbox", "--bind", endpoint,
                             "--recordings", str(tmp_path / "recordings")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        _wait_for_port(port, host)
        rng = random.Random(1234)
        actions = [rng.choice([0, 1, 2, 2, 2, 3, 5, 6]) for _ in range(100)]
        layer = _write_layer(tmp_path / "layer.png")
        got = _run_interop(interop_exe, endpoint, 7, actions, tmp_path / "frames.txt", "--edit", f"{layer}:10:20")

        assert got["session"].split()[1] == "sandbox", got["session"]
        declared, caps = got["capabilities"].split()
        assert declared == "declared" and "edit" not in caps.split(",") and "events" in caps.split(","), caps
        frames = got["frames"]
        assert [f[0] for f in frames] == list(range(101)), "frame indices must be 0..100 with no gaps"
        assert all(f[1] == 0 for f in frames) and all(f[3] == "64x64" for f in frames)
        assert [f[2] for f in frames] == [-1] + actions, "each frame must carry the action that produced it"
        assert len({f[4] for f in frames}) > 20, "the world should change as the player moves"
        event_type, caption, frame_events = got["event"].split("\t")
        assert caption and caption in frame_events.split("|"), f"{event_type}: the caption must show on the next frame"
        assert "dropped=0" in got["stats"], got["stats"]
        assert got["closed"] == "Closed"
        # protocol 1.1: the sandbox cannot edit; the host says so with a typed error and the world goes on
        outcome, _, message = got["edit"].partition("\t")
        assert outcome == "error unsupported" and "cannot edit" in message, got["edit"]
        assert got["after_edit"][:2] == (102, 0), "after a refused edit the next input makes frame 102 of epoch 0"

        python = _python_hashes(endpoint, 7, actions)
        assert [(f[0], f[2], f[4]) for f in frames] == python, "mono and Python clients saw different frames"
    finally:
        host.terminate()
        host.wait(timeout=10)


def _python_edit_hashes(endpoint: str, seed: int, actions: list[int], layer: bytes, x: int, y: int) -> list[tuple]:
    """What the Python client sees for the same world-model session: the frames, the edit's answer, the edited frame."""
    from bridge.client import WorldClient

    with WorldClient(endpoint, client_name="pytest-interop") as client:
        client.start(backend="world_model", mode="step", seed=seed)
        frames = [client.next_frame(timeout=30)] + [client.step(a) for a in actions]
        ok = client.edit(layer, x, y, timeout=30)
        frames += [client.next_frame(timeout=10), client.step(0)]
    digest = [(f.index, f.epoch, f.action, hashlib.sha256(f.image.tobytes()).hexdigest()) for f in frames]
    return digest + [(ok["epoch"], ok["frame_index"], list(frames[-2].events))]


def test_mono_client_edits_a_served_world_model(interop_exe: Path, tmp_path: Path):
    """Protocol 1.1 `edit` against `worldbridge serve --checkpoint` (an untrained micro world: plumbing, not quality):
    ok with a new epoch, the edited frame re-sent with events ["edit"], the world going on from it - and the same
    pixels the Python client gets for the same seed, inputs and layer."""
    from test_model_data import save_random_world  # tests/ is on sys.path under pytest, as for the model tests

    world = save_random_world(tmp_path / "world")
    port = _free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    host = subprocess.Popen([sys.executable, "-m", "bridge.cli", "serve", "--checkpoint", str(world), "--bind", endpoint,
                             "--recordings", str(tmp_path / "recordings")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        _wait_for_port(port, host)
        layer = _write_layer(tmp_path / "layer.png")
        actions = [1, 2, 3]
        got = _run_interop(interop_exe, endpoint, 11, actions, tmp_path / "frames.txt", "--backend", "world_model",
                           "--event", "none", "--edit", f"{layer}:5:6")
        assert got["session"].split()[1] == "world_model", got["session"]
        declared, caps = got["capabilities"].split()
        assert declared == "declared" and "edit" in caps.split(","), caps
        outcome, _, events = got["edit"].partition("\t")
        assert outcome == "ok 1 3" and events == "edit", got["edit"]
        frames = got["frames"]
        assert [f[:2] for f in frames] == [(0, 0), (1, 0), (2, 0), (3, 0), (3, 1)], "the edited frame 3 comes in epoch 1"
        assert frames[-1][4] != frames[-2][4], "the edited frame must differ from the frame before the edit"
        assert got["after_edit"][:3] == (4, 1, 0), "the world goes on from the edited frame, in the new epoch"

        python = _python_edit_hashes(endpoint, 11, actions, layer.read_bytes(), 5, 6)
        mono = [(f[0], f[1], f[2], f[4]) for f in frames] + [got["after_edit"][:3] + (got["after_edit"][4],)]
        assert python[-1] == (1, 3, ["edit"])
        assert mono == python[:-1], "mono and Python clients saw different frames around the edit"
    finally:
        host.terminate()
        host.wait(timeout=10)


def test_mono_client_answers_heartbeats(interop_exe: Path, tmp_path: Path):
    """A host with 50 ms heartbeats drops a silent peer after 250 ms unless it answers PING with PONG."""
    from bridge.host.backends import resolve_backend
    from bridge.host.server import Host

    host = Host(resolve_backend("sandbox"), bind="tcp://127.0.0.1:*", heartbeat=True, heartbeat_ivl_ms=50,
                recordings_dir=tmp_path / "recordings")
    runner = threading.Thread(target=host.run, daemon=True)
    runner.start()
    try:
        got = _run_interop(interop_exe, host.address, 3, [2] * 10, tmp_path / "frames.txt",
                           "--idle-after", "5", "--idle-ms", "1200", "--event", "none")
        assert [f[0] for f in got["frames"]] == list(range(11)), "the connection did not survive the idle pause"
    finally:
        host.stop()
        runner.join(timeout=10)  # run() closes the host on its way out
