"""Every error a host request handler sends names the field, the bad value (or its type) and the fix, with the
documented code (docs/protocol.md §4-§5); table-driven, one host per module."""

import json

import pytest
import zmq
from test_host_server import CounterWorld
from test_model_data import save_random_world

from bridge.backend import Prompt
from bridge.host import protocol as P
from bridge.host.protocol import ProtocolError
from bridge.host.server import recording_path, run_host_in_thread
from bridge.host.session import Session


class TypedOnlyWorld(CounterWorld):
    """TEST-ONLY: typed events (`boom`), no free text, as a world model trained without events.json."""

    capabilities = ["events"]


class NoEventsWorld(CounterWorld):
    """TEST-ONLY: no events of any kind."""

    event_types: list[str] = []


class TextOnlyWorld(CounterWorld):
    """TEST-ONLY: free-text events only."""

    event_types: list[str] = []
    capabilities = ["text_events"]


@pytest.mark.parametrize("world, event_type, text, says", [
    (TypedOnlyWorld, None, "make it snow", "test counter world cannot take free-text events (session.capabilities "
                                           "lack text_events): send an `event_type` instead, one of ['boom']"),
    (NoEventsWorld, None, "make it snow", "test counter world cannot take free-text events (session.capabilities "
                                          "lack text_events): this backend takes no events (session.capabilities "
                                          "lists what it can do)"),
    (NoEventsWorld, "boom", None, "test counter world cannot take typed events (session.capabilities lack events): "
                                  "this backend takes no events (session.capabilities lists what it can do)"),
    (TextOnlyWorld, "boom", "boom", "test counter world cannot take typed events (session.capabilities lack "
                                    "events): send free `text` instead"),
])
def test_an_event_outside_the_sessions_capabilities_is_unsupported(world, event_type, text, says):
    s = Session(world(), mode="step")
    s.begin(Prompt(seed=1))
    with pytest.raises(ProtocolError) as e:
        s.queue_event(event_type, text)
    assert (e.value.code, e.value.message) == ("unsupported", says) and not s.pending_events
    assert e.value.capability == ("events" if event_type else "text_events")  # the `error` key clients grey out by


def test_events_waiting_to_fire_are_bounded():
    s = Session(TypedOnlyWorld(), mode="step")
    s.begin(Prompt(seed=1))
    for _ in range(1024):
        s.queue_event("boom", None)
    with pytest.raises(ProtocolError) as e:  # a step client that never steps cannot fill the host's memory
        s.queue_event("boom", None)
    assert (e.value.code, e.value.message) == ("busy", "1024 events already wait to fire, in turn: wait for "
                                                       "their frames before sending more")
    s.step(0)  # one fired: room for one more
    assert s.queue_event("boom", None) == "boom" and len(s.pending_events) == 1024


@pytest.mark.parametrize("world, event_type, text, caption", [
    (TypedOnlyWorld, "boom", "ignored: the type fires", "boom"),
    (TextOnlyWorld, None, "make it snow", "make it snow"),
])
def test_an_event_inside_the_sessions_capabilities_is_queued(world, event_type, text, caption):
    s = Session(world(), mode="step")
    s.begin(Prompt(seed=1))
    assert s.queue_event(event_type, text) == caption and len(s.pending_events) == 1


def _client(address: str, minor: int | None) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    hello = {"type": "hello", "protocol_major": 1, **({} if minor is None else {"protocol_minor": minor})}
    assert _ask(sock, hello)["type"] == "welcome"
    return sock


def _ask(sock: zmq.Socket, msg: dict) -> dict:
    """The answer to `msg`, past any frames."""
    sock.send(P.encode(msg))
    while True:
        assert sock.poll(5000), f"no answer to {msg}"
        reply = P.decode(sock.recv_multipart()[0])
        if reply["type"] != "frame":
            return reply


@pytest.mark.parametrize("minor, code", [(3, "unsupported"), (1, "unsupported"), (0, "bad_argument"),
                                         (None, "bad_argument")])  # a hello without protocol_minor speaks 1.0
def test_a_free_text_event_without_text_events_gets_the_code_the_client_knows(minor, code):
    with run_host_in_thread(TypedOnlyWorld) as h:
        sock = _client(h.address, minor)
        assert _ask(sock, {"type": "start", "req_id": 1, "mode": "step"})["type"] == "session"
        err = _ask(sock, {"type": "event", "req_id": 2, "text": "make it snow"})
        assert (err["type"], err["code"], err["req_id"]) == ("error", code, 2)
        assert "lack text_events" in err["message"] and err["capability"] == "text_events"  # every minor gets the key
        sock.close(0)


@pytest.mark.parametrize("minor, code", [(2, "unsupported"), (0, "bad_argument")])
def test_an_edit_the_world_cannot_make_gets_the_code_the_client_knows(minor, code):
    with run_host_in_thread("sandbox") as h:
        sock = _client(h.address, minor)
        assert _ask(sock, {"type": "start", "req_id": 1, "mode": "step"})["type"] == "session"
        err = _ask(sock, {"type": "edit", "req_id": 2, "layer": b"png", "x": 0, "y": 0})
        assert (err["type"], err["code"], err["req_id"], err["fatal"]) == ("error", code, 2, False)
        assert "session.capabilities" in err["message"]
        sock.close(0)


class FootageWorld(CounterWorld):
    """TEST-ONLY: a world trained on 10 fps footage, as `data import --fps 10` (docs/data.md) makes one."""

    fps = 10.0


class TooFastWorld(CounterWorld):
    """TEST-ONLY: footage faster than a session may tick (protocol §6: fps 1-120)."""

    fps = 240.0


@pytest.mark.parametrize("world, asked, ticks", [
    (FootageWorld, None, 10.0),  # the world's own footage rate, not 24: 24 played it 2.4x too fast
    ("sandbox", None, 15.0),  # the sandbox game's rate (bridge.worlds.sandbox.SANDBOX_FPS)
    (CounterWorld, None, 24.0),  # a backend that states no rate: the documented default
    (TooFastWorld, None, 120.0),  # its rate, held to the range a client may set
    (FootageWorld, 30.0, 30.0),  # a client that asks for a rate still gets it
])
def test_a_session_ticks_at_its_worlds_own_rate_unless_the_client_asks_for_one(world, asked, ticks):
    with run_host_in_thread(world) as h:
        sock = _client(h.address, 3)
        session = _ask(sock, {"type": "start", "req_id": 1, **({} if asked is None else {"fps": asked})})
        assert (session["fps"], session["settings"]["fps"]) == (ticks, ticks)
        assert _ask(sock, {"type": "status", "req_id": 2})["fps_target"] == ticks  # the rate it ticks at
        sock.close(0)


def test_a_trained_world_plays_at_the_fps_of_the_footage_it_was_trained_on(tmp_path):
    """A world trained on footage imported at `--fps 10` keeps 10 in its config.json; the host played it at 24."""
    world = save_random_world(tmp_path / "world")
    config = json.loads((world / "config.json").read_text(encoding="utf-8"))
    config["world"]["fps"] = 10.0  # as `train` writes it from the dataset's manifest
    (world / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with run_host_in_thread(world) as h:
        sock = _client(h.address, 3)
        session = _ask(sock, {"type": "start", "req_id": 1, "mode": "realtime"})
        assert (session["backend_kind"], session["fps"]) == ("world_model", 10.0)
        sock.close(0)


@pytest.mark.parametrize("path, says", [
    (".wbrec", "/.wbrec must end in .wbrec after a file name, e.g. run1.wbrec"),
    ("sub/", "/sub must end in .wbrec after a file name, e.g. run1.wbrec"),
    ("x.txt", "/x.txt must end in .wbrec after a file name, e.g. run1.wbrec"),
    ("a\0.wbrec", "recording path 'a\\x00.wbrec' holds a NUL byte: remove it"),
    ("../x.wbrec", "recording path ../x.wbrec is outside "),
    ("", "recording path is empty: give a file name ending in .wbrec, or leave `path` out"),  # not the default name
    ("a\x01.wbrec", "recording path 'a\\x01.wbrec' holds a control character ('\\x01'): remove it"),
    ("a?b.wbrec", "recording path 'a?b.wbrec' holds '?', which Windows refuses in a file name"),
    ("C:\\rec\\a.wbrec", "recording path 'C:\\\\rec\\\\a.wbrec' holds ':', which Windows refuses"),
    ("sub./a.wbrec", "recording path 'sub./a.wbrec' has a name ending in a dot or space ('sub.')"),
    ("sub /a.wbrec", "('sub ')"),
    ("con.wbrec", "recording path 'con.wbrec' uses CON, a device name on Windows"),
    ("sub\\Lpt3.x.wbrec", "uses LPT3, a device name on Windows"),
    ("user://runs/a.wbrec", "recording path 'user://runs/a.wbrec' is a user:// path, but recordings are written on "
                            "the host, relative to its recordings folder: send a relative path such as a.wbrec"),
])
def test_record_start_names_the_bad_path_and_the_fix(tmp_path, path, says):
    with run_host_in_thread(CounterWorld, recordings_dir=tmp_path) as h:
        sock = _client(h.address, 3)
        assert _ask(sock, {"type": "start", "mode": "step"})["type"] == "session"
        err = _ask(sock, {"type": "record_start", "req_id": 4, "path": path})
        assert (err["code"], err["req_id"]) == ("bad_argument", 4) and says in err["message"]
        assert not list(tmp_path.iterdir())  # nothing written
        sock.close(0)


def test_record_start_reads_backslashes_as_folders_and_the_suffix_in_any_case(tmp_path):
    with run_host_in_thread(CounterWorld, recordings_dir=tmp_path) as h:
        sock = _client(h.address, 3)
        assert _ask(sock, {"type": "start", "mode": "step"})["type"] == "session"
        ok = _ask(sock, {"type": "record_start", "req_id": 4, "path": "takes\\Run1.WBREC"})
        assert ok["type"] == "ok" and ok["path"] == str(tmp_path / "takes" / "Run1.WBREC")
        assert (tmp_path / "takes" / "Run1.WBREC").is_file()
        sock.close(0)


@pytest.mark.parametrize("path, windows, out", [
    ("C:\\Users\\me\\a.wbrec", True, "C:/Users/me/a.wbrec"),  # a Windows host's own drive, e.g. the demo's --out
    ("sub\\a.wbrec", False, "sub/a.wbrec"),
    ("../a.wbrec", False, "../a.wbrec"),  # left to the containment check, which names the folder
])
def test_recording_paths_are_read_the_same_on_every_host(path, windows, out):
    assert recording_path(path, windows) == out


def test_a_drive_letter_is_refused_on_a_host_that_is_not_windows():
    with pytest.raises(ProtocolError, match="holds ':'"):
        recording_path("C:/a.wbrec", False)


def test_a_windows_host_takes_a_unc_path_only_when_it_records_anywhere():
    """A network share is any path the host's user can write (--record-anywhere), never inside --recordings; refused
    from its text, before the host looks the share up on the network."""
    with pytest.raises(ProtocolError, match=r"'\\\\\\\\nas\\\\takes\\\\a.wbrec' is a network \(UNC\) path, but a "
                                            r"record_start path is relative to the host's --recordings folder: send a "
                                            r"relative path such as a.wbrec \(.*--record-anywhere") as e:
        recording_path("\\\\nas\\takes\\a.wbrec", True)
    assert e.value.code == "bad_argument"
    assert recording_path("\\\\nas\\takes\\a.wbrec", True, anywhere=True) == "//nas/takes/a.wbrec"
    with pytest.raises(ProtocolError, match=r"'//\./pipe/x.wbrec' is a Windows device path, not a file"):
        recording_path("//./pipe/x.wbrec", True, anywhere=True)  # a named pipe: anywhere or not
    assert recording_path("//nas/takes/a.wbrec", False) == "//nas/takes/a.wbrec"  # elsewhere: the containment check


def test_a_host_on_windows_refuses_a_unc_record_start_path_without_looking_it_up(tmp_path, monkeypatch):
    import functools
    import pathlib

    import bridge.host.server as server

    # the host's path check as on Windows: the process's platform stays, so no other win32 branch runs on this OS
    monkeypatch.setattr(server, "recording_path", functools.partial(recording_path, windows=True))
    resolved, resolve = [], pathlib.Path.resolve
    monkeypatch.setattr(pathlib.Path, "resolve", lambda self, *a: resolved.append(str(self)) or resolve(self, *a))
    with run_host_in_thread(CounterWorld, recordings_dir=tmp_path) as h:
        sock = _client(h.address, 3)
        assert _ask(sock, {"type": "start", "mode": "step"})["type"] == "session"
        err = _ask(sock, {"type": "record_start", "req_id": 4, "path": "\\\\nas\\takes\\a.wbrec"})
        assert (err["code"], err["req_id"]) == ("bad_argument", 4) and "network (UNC) path" in err["message"]
        assert not any("nas" in p for p in resolved)  # a lookup of a share that does not answer stalls the host
        sock.close(0)


@pytest.mark.parametrize("knob, value", [("cfg", -1), ("temperature", -0.5), ("top_p", 2.0), ("steps", -1)])
def test_the_sandbox_refuses_a_setting_out_of_range_though_it_ignores_it(knob, value):
    with run_host_in_thread("sandbox") as h:
        sock = _client(h.address, 3)
        assert _ask(sock, {"type": "start", "mode": "step"})["type"] == "session"
        err = _ask(sock, {"type": "settings", "req_id": 5, knob: value})
        assert (err["type"], err["code"], err["req_id"]) == ("error", "bad_argument", 5)
        assert err["message"].startswith(f"{knob} {value:g} is outside its range: ")
        assert _ask(sock, {"type": "settings", "req_id": 6})["settings"][knob] is None  # unchanged: nil
        sock.close(0)


SMALL = 64 * 1024  # a host limit small enough to go over cheaply


@pytest.mark.parametrize("msg, says, raise_helps", [
    ({"type": "start", "req_id": 4, "mode": "step", "text": "a long prompt " * 6000},
     "`start` message of 840", False),
    ({"type": "start", "req_id": 4, "mode": "step", "image": b"\0" * 70_000}, "its image is 70000 bytes: use a "
                                                                               "smaller image", True),
    ({"type": "start", "req_id": 4, "mode": "step", "sketch": b"\0" * 70_000}, "its sketch is 70000 bytes: use a "
                                                                                "smaller sketch", True),
    ({"type": "edit", "req_id": 4, "layer": b"\0" * 70000, "x": 0, "y": 0}, "its layer is 70000 bytes: use a "
                                                                            "smaller layer", True),
])
def test_too_large_names_the_part_that_is_too_big_and_its_fix(msg, says, raise_helps):
    with run_host_in_thread(CounterWorld, limits=P.Limits(max_message_bytes=SMALL)) as h:
        sock = _client(h.address, 3)
        err = _ask(sock, msg)
        assert (err["code"], err["req_id"]) == ("too_large", 4) and says in err["message"], err["message"]
        assert f"over the host's {SMALL}-byte limit" in err["message"]
        if raise_helps:  # a bigger limit lets it through
            assert err["message"].endswith(", or start the host with a larger `worldbridge serve --max-message-bytes`")
        else:  # a string holds at most 4096 bytes whatever the limit: a bigger limit would not help
            assert err["message"].endswith("its text is 84000 bytes: use a shorter text (at most 4096 bytes)")
            assert "image" not in err["message"] and "max-message-bytes" not in err["message"]
        sock.close(0)


def test_too_large_from_extra_parts_or_undecodable_bytes_says_what_is_usually_big_and_how_to_raise_the_limit():
    general = ("images, sketches and layers are what make messages big: send smaller ones, or start the host with a "
               "larger `worldbridge serve --max-message-bytes`")
    with run_host_in_thread(CounterWorld, limits=P.Limits(max_message_bytes=SMALL)) as h:
        sock = _client(h.address, 3)
        sock.send_multipart([P.encode({"type": "ping", "req_id": 4, "client_ts": 1.0}), b"\0" * 70_000])
        assert sock.poll(5000)
        err = P.decode(sock.recv_multipart()[0])
        assert err["code"] == "too_large" and err["message"].endswith(general), err["message"]  # not "its client_ts"
        sock.close(0)
    with pytest.raises(ProtocolError) as e:
        P.decode(b"\xc1" * 100, 10)  # not even decoded: the host cannot tell which part is big
    assert e.value.code == "too_large" and e.value.message == ("message of 100 bytes is over the host's 10-byte "
                                                               f"limit: {general}")


def _frame(sock: zmq.Socket) -> dict:
    """The next frame header, past any other message."""
    while True:
        assert sock.poll(5000), "no frame"
        msg = P.decode(sock.recv_multipart()[0])
        if msg["type"] == "frame":
            return msg


def test_what_a_client_written_from_the_protocol_doc_alone_relies_on(tmp_path):
    """docs/protocol.md left these out; a client written from it alone guessed them (§4, §8 "Written down")."""
    with run_host_in_thread("sandbox", recordings_dir=tmp_path) as h:
        sock, other = _client(h.address, 3), _client(h.address, 3)
        assert _ask(other, {"type": "start", "req_id": 1})["type"] == "session"
        for msg, code, says in [
            ({"type": "start", "req_id": 2, "backend": "world_model"}, "bad_argument", "this host serves ['sandbox']"),
            ({"type": "input", "req_id": 3}, "bad_message", "`input` needs `action`"),
        ]:
            err = _ask(sock, msg)
            assert (err["type"], err["code"], err["req_id"]) == ("error", code, msg["req_id"]) and says in err["message"]
        assert _ask(sock, {"type": "ping", "req_id": 4})["client_ts"] is None  # `client_ts` may be left out
        assert _ask(sock, {"type": "start", "req_id": 5, "fps": 50.0})["type"] == "session"
        first = [_frame(sock) for _ in range(3)]  # realtime ticks before any input apply action 0
        assert [f["action"] for f in first] == [-1, 0, 0] and {f["seq"] for f in first} == {None}
        assert _ask(sock, {"type": "status", "req_id": 6})["sessions"] == 2  # every client's sessions
        for msg, says in [({"type": "event", "req_id": 7, "text": " "}, "event needs `event_type` or some `text`"),
                          ({"type": "record_stop", "req_id": 8}, "not recording"),
                          ({"type": "settings", "req_id": 9, "mode": "step"}, None),
                          ({"type": "input", "req_id": 10, "action": 2}, None)]:
            reply = _ask(sock, msg) if msg["type"] != "input" else (sock.send(P.encode(msg)), _frame(sock))[1]
            if says:
                assert (reply["code"], reply["req_id"]) == ("bad_argument", msg["req_id"]) and says in reply["message"]
        assert (reply["action"], reply["client_ts"], reply["seq"]) == (2, None, None)  # `client_ts` echoed nil
        assert _ask(sock, {"type": "record_start", "req_id": 11})["type"] == "ok"
        err = _ask(sock, {"type": "record_start", "req_id": 12})
        assert (err["code"], err["req_id"]) == ("bad_argument", 12) and "send record_stop first" in err["message"]
        assert _ask(sock, {"type": "record_stop", "req_id": 13})["type"] == "ok"
        err = _ask(sock, {"type": "hello", "req_id": 14, "protocol_major": 1, "client": "x" * 5000})
        assert (err["code"], err["req_id"], err["fatal"]) == ("bad_message", 14, False)
        assert _ask(sock, {"type": "status", "req_id": 15})["session_id"] is not None  # the session goes on
        for s in (sock, other):
            s.close(0)
