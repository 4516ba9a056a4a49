"""The network thread: the one owner of the WorldClient; frames go out by signal, commands come in by a queue."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq
from PySide6.QtCore import QObject, QThread, Signal, Slot

from bridge.client import text_unused_words
from bridge.host.protocol import EVENT_REFUSED

PING_AFTER_S = 2.0  # with no frames for this long (paused, step mode) ping to notice a dead host; a ping also
# counts as activity on the host, so a paused session is never closed for idling while the editor runs


@dataclass
class ExploreResult:
    """One short preview per latent action, all started from the same frame."""

    start_index: int
    previews: list[list[np.ndarray]] = field(default_factory=list)  # [action][step] (H, W, 3) uint8
    mode_refused: str | None = None  # why the host refused to go back to realtime (it then stays in step mode)


@dataclass
class ResimResult:
    """A branch rebuilt on the host by replaying its actions and events from frame 0."""

    session: dict  # as it runs after the rebuild (its settings and mode)
    last_index: int
    mode_refused: str | None = None  # why the host refused to resume it in realtime (it then stays in step mode)


class HostLost(Exception):
    """The host stopped answering."""


class Stopped(Exception):
    """`stop` was called during a long command: the window closed or reconnected, and waits for this thread to end."""


def describe_error(exc: BaseException, address: str) -> str:
    """A message a user can act on, from any error the client raises."""
    code = getattr(exc, "code", None)
    message = getattr(exc, "message", None) or str(exc)
    if code == "version_mismatch":
        return f"Host at {address} speaks another protocol version: {message}"
    if isinstance(exc, (TimeoutError, HostLost)) or code in ("no_host", "timeout"):
        return (f"No answer from the host at {address}. Is it running? Start one with `worldbridge serve`, "
                f"or run `worldbridge play` without --host to let the editor start its own.")
    if code == "no_session":
        return f"No world is running: press New world. ({message})"
    if code:
        return f"{message} ({code})"
    if isinstance(exc, zmq.ZMQError):
        return (f"The connection to the host at {address} failed ({message}): press Reconnect, or restart the host "
                f"(`worldbridge serve`)")
    return f"{type(exc).__name__}: {message}"


def _is_connection_error(exc: BaseException) -> bool:
    if getattr(exc, "code", None) in ("timeout", "no_host", "closed"):
        return True
    return isinstance(exc, (TimeoutError, HostLost, zmq.ZMQError, ConnectionError))


def _event_refused(message: str) -> bool:
    """The host's words for an event refused at its frame (protocol.EVENT_REFUSED), not an input's unknown action."""
    return message.startswith("event ") and f" {EVENT_REFUSED}" in message


_wake_ids = itertools.count()  # one inproc address per worker's wake-up socket


class WorkerSignals(QObject):
    """What a worker tells the window; WorkerThread relays it through one of these in the window's thread."""

    connected = Signal(dict)  # the host's welcome
    connection_failed = Signal(str)  # could not connect (host down, version mismatch)
    connection_lost = Signal(str)  # was connected, host stopped answering
    session_started = Signal(dict, str)  # session, purpose ("new", "resim")
    frame_received = Signal(object)  # bridge.client.Frame
    done = Signal(str, object)  # command, result
    failed = Signal(str, str, str)  # command, message, error.capability (a refused prompt or event kind) or ""
    progress = Signal(str, int, int)  # command, done, total
    session_ended = Signal(str)  # the host closed the session (idle timeout, fatal error)
    host_recording_stopped = Signal(str)  # (1.3) the host ended its recording by itself (a full disk); why
    event_not_fired = Signal(str, object)  # the backend refused an accepted event when its frame was made: the host's
    # message and the req_id of that event's request (error.event_req_id; None from a host before it named the event)
    client_warned = Signal(str)  # the client's warning, in its words: a text sent beside an image is not used


WINDOW_SIGNALS = tuple(name for name, value in vars(WorkerSignals).items() if isinstance(value, Signal))


class WorldWorker(WorkerSignals):
    """Runs on a QThread; `submit` is the only method other threads call."""

    finished = Signal()

    def __init__(self, address: str, client_name: str = "worldbridge-editor", timeout: float = 5.0):
        super().__init__()
        self.address, self.client_name, self.timeout = address, client_name, timeout
        self._inbox: queue.Queue[tuple[str, dict]] = queue.Queue()
        self._running = True
        self._latest = None  # the newest frame seen (explore starts from it)
        self._had_session = False
        self._last_traffic = time.monotonic()
        self._wake_lock = threading.Lock()  # zmq sockets are not thread-safe: one sender at a time, never a closed one
        self._wake: zmq.Socket | None = None  # submit's signal to the worker thread, waiting in its poller

    # --- any thread ---
    def submit(self, command: str, **kwargs: Any) -> None:
        self._inbox.put((command, kwargs))
        with self._wake_lock:
            if self._wake is not None:
                try:
                    self._wake.send(b"", zmq.NOBLOCK)
                except zmq.Again:  # wake-ups already wait unread: the worker will look at the queue anyway
                    pass

    def stop(self) -> None:
        self._running = False

    # --- worker thread ---
    @Slot()
    def run(self) -> None:
        client, sockets = None, []
        try:
            try:  # made before connecting: a worker that cannot wait for commands never says it is connected
                woken = self._wake_sockets(sockets)
            except zmq.ZMQError as e:
                self.connection_failed.emit(f"The editor could not start its network thread ({e}): close programs or "
                                            "windows you do not need (too many open files?), then press Reconnect")
                return
            try:
                from bridge.client import WorldClient

                client = WorldClient(address=self.address, client_name=self.client_name, timeout=self.timeout,
                                     warn_text_unused=False)  # the window says it (client_warned), not stderr
                welcome = client.connect()
            except Exception as e:  # noqa: BLE001 - every failure becomes a message for the user
                self.connection_failed.emit(describe_error(e, self.address))
                return
            self.connected.emit(welcome)
            self._loop(client, woken)
        finally:
            with self._wake_lock:
                self._wake = None
            for sock in sockets:
                sock.close(linger=0)
            try:
                if client is not None:
                    client.close()
            except Exception:  # noqa: BLE001 - closing a dead connection may fail; nothing to do
                pass
            self.finished.emit()

    def _wake_sockets(self, made: list[zmq.Socket]) -> zmq.Socket:
        """The inproc pair `submit` wakes the worker with: its sending end becomes `_wake`, the end the worker waits on
        is returned; each socket goes in `made` as it is made, so the caller closes them all whatever fails."""
        address, context = f"inproc://worldbridge-wake-{next(_wake_ids)}", zmq.Context.instance()
        made.append(woken := context.socket(zmq.PULL))
        woken.bind(address)
        made.append(wake := context.socket(zmq.PUSH))
        wake.connect(address)
        with self._wake_lock:
            self._wake = wake
        return woken

    def _loop(self, client, woken: zmq.Socket) -> None:
        """Sleep in one poller until the host sends something or `submit` signals a command through `woken` (no added
        input delay, no wake-ups for nothing); with neither for PING_AFTER_S, ping."""
        poller = zmq.Poller()
        poller.register(client.socket, zmq.POLLIN)  # the worker owns the client: it may wait on its socket
        poller.register(woken, zmq.POLLIN)
        while self._running:
            try:
                self._drain(client)
                frames = client.drain_frames(0)  # every frame: the timeline records each one
                for frame in frames:
                    self._emit_frame(frame)
                self._report_host_errors(client)
                now = time.monotonic()
                if not frames and now - self._last_traffic > PING_AFTER_S:
                    client.ping()
                    self._last_traffic = now
                    continue  # its wait filed what came before the answer (frames, host errors): hand them on
                if frames or not self._inbox.empty() or not self._running:
                    continue  # more may be waiting: look again before sleeping
                left = PING_AFTER_S - (time.monotonic() - self._last_traffic)
                if woken in dict(poller.poll(max(1, int(left * 1000)))):
                    while woken.poll(0):
                        woken.recv()
            except Exception as e:  # noqa: BLE001
                if _is_connection_error(e):
                    self.connection_lost.emit(describe_error(e, self.address))
                    return
                self.failed.emit("receive", describe_error(e, self.address), "")

    def _report_host_errors(self, client) -> None:
        """Errors the host sent without a request (a refused input, a session closed for idling)."""
        had_session = client.session is not None or self._had_session
        while client.errors:
            err = client.errors.popleft()
            if err.get("code") == "recording_stopped":
                self.host_recording_stopped.emit(err.get("message", ""))
            elif err.get("code") == "bad_argument" and ("event_req_id" in err
                                                        or _event_refused(err.get("message", ""))):
                self.event_not_fired.emit(err.get("message", ""), err.get("event_req_id"))  # not an unknown action
            else:
                self.failed.emit("host", f"{err.get('message', '')} ({err.get('code', 'error')})", "")
        self._had_session = client.session is not None
        if had_session and client.session is None:
            self.session_ended.emit("the host ended the session; press New world to start another")

    def _emit_frame(self, frame) -> None:
        self._latest = frame
        self._last_traffic = time.monotonic()
        self.frame_received.emit(frame)

    def _drain(self, client) -> None:
        while True:
            try:
                command, kwargs = self._inbox.get_nowait()
            except queue.Empty:
                return
            if command == "quit":
                self._running = False
                return
            try:
                self._run_command(client, command, kwargs)
            except Stopped:
                return
            except Exception as e:  # noqa: BLE001
                if _is_connection_error(e):
                    raise
                self.failed.emit(command, describe_error(e, self.address), getattr(e, "capability", None) or "")

    def _run_command(self, client, command: str, kw: dict) -> None:
        if command == "act":
            client.act(kw["action"], seq=kw.get("seq"))
        elif command == "step":
            self._emit_frame(client.step(kw["action"]))
        elif command == "start":
            purpose, settings, mode = kw.pop("purpose", "new"), kw.pop("settings", None) or {}, kw.get("mode", "realtime")
            session, refused = self._start(client, kw, settings)
            session, mode_refused = self._set_mode(client, session, mode)
            self.session_started.emit(session, purpose)  # the world exists on the host even if its mode was refused
            if refused is not None:
                self.failed.emit("start", f"your settings were not kept for the new world ({refused})", "")
            if mode_refused is not None:
                self.failed.emit("mode", mode_refused, "")
        elif command in ("explore", "resimulate"):
            result = self._explore(client, **kw) if command == "explore" else self._resimulate(client, **kw)
            self._answer(client, command, result)
            if result.mode_refused is not None:
                self.failed.emit("mode", result.mode_refused, "")
        elif command == "ping":
            self._answer(client, command, client.ping())
        elif command in ("event", "reset", "branch", "edit", "settings", "record_start", "record_stop", "status"):
            self._answer(client, command, getattr(client, command)(**kw))
        else:
            raise ValueError(f"unknown worker command {command!r}")
        self._last_traffic = time.monotonic()

    def _answer(self, client, command: str, result: Any) -> None:
        """Emit the frames the client buffered while it waited for the answer before the answer: the host made them
        before it answered, so a settings change is noted on the first frame made after it, not on one of those."""
        for frame in client.drain_frames(0):
            self._emit_frame(frame)
        self.done.emit(command, result)

    def _start(self, client, start: dict, settings: dict) -> tuple[dict, str | None]:
        """Start a world paused (step mode: the host makes only frame 0, which no sampling setting touches) and apply
        `settings` before it makes another, so no frame is made with the host's defaults; returns the session and, if
        the host refused the settings, why (the world then has the host's defaults)."""
        session = self._start_telling(client, {**start, "mode": "step"})
        self._latest = None
        try:
            return self._apply(client, session, settings), None
        except Exception as e:  # noqa: BLE001 - the world runs with the host's defaults; the caller tells the user
            if _is_connection_error(e):
                raise
            return session, describe_error(e, self.address)

    def _start_telling(self, client, start: dict) -> dict:
        """client.start; once the host took a text sent beside an image (the image wins), hands on the client's words
        for it as `client_warned` for the window to say (decided here, not caught: catching warnings is
        process-wide, so another thread's capture or a `-W ignore` would lose them)."""
        session = client.start(**start)
        if words := text_unused_words(start.get("text"), start.get("image"), start.get("sketch")):
            self.client_warned.emit(words)
        return session

    @staticmethod
    def _apply(client, session: dict, settings: dict) -> dict:
        """Send the sampling settings this session's backend has (the rest mean nothing to it); the updated session."""
        have = {k: v for k, v in settings.items() if session.get("settings", {}).get(k) is not None}
        return {**session, "settings": client.settings(**have)["settings"]} if have else session

    def _set_mode(self, client, session: dict, mode: str) -> tuple[dict, str | None]:
        """Leave the step mode a world started in when `mode` is realtime; the session as it now runs and, if the host
        refused the switch, why (the world then stays in step mode: it exists all the same)."""
        if mode == "step":
            return session, None
        try:
            return {**session, "mode": mode, "settings": client.settings(mode=mode)["settings"]}, None
        except Exception as e:  # noqa: BLE001 - the caller tells the user
            if _is_connection_error(e):
                raise
            return {**session, "mode": "step"}, describe_error(e, self.address)

    def _go_on(self) -> None:
        """Between the steps of a long command (a preview, a rebuild): end it once `stop` was called, so closing or
        reconnecting never waits for, or leaves running, the rest of it."""
        if not self._running:
            raise Stopped

    def _wait_for(self, client, index: int, after_epoch: int, timeout: float = 5.0):
        """Read frames until the host's frame `index` of an epoch newer than `after_epoch` arrives (branch re-sends it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for f in client.drain_frames(0.05):
                if f.epoch > after_epoch and f.index == index:
                    return f
        raise HostLost(f"the host did not re-send frame {index} after a branch or edit")

    def _explore(self, client, steps: int, actions: int, resume_mode: str) -> ExploreResult:
        """From the newest frame: for each latent action play `steps` frames, then branch back; restore the mode."""
        client.settings(mode="step")
        while frames := client.drain_frames(0.1):  # frames already in flight
            for f in frames:
                self._emit_frame(f)
        if self._latest is None:
            raise ValueError("no frame yet to explore from; start a world first")
        start, epoch = self._latest.index, self._latest.epoch
        result = ExploreResult(start)
        for a in range(actions):
            client.branch(start)
            epoch = self._wait_for(client, start, epoch).epoch
            frames = []
            for _ in range(steps):
                self._go_on()
                f = client.step(a)
                epoch = f.epoch
                frames.append(f.image)
            result.previews.append(frames)
            self.progress.emit("explore", a + 1, actions)
        client.branch(start)  # back where the user was; the re-sent frame is emitted so the timeline follows
        self._emit_frame(self._wait_for(client, start, epoch))
        result.mode_refused = self._set_mode(client, {}, resume_mode)[1]
        return result

    def _edit(self, client, edit: dict) -> None:
        """Paste an edit's layer into the current frame and emit the edited frame the host re-sends."""
        epoch = self._latest.epoch if self._latest is not None else -1
        reply = client.edit(edit["layer"], edit["x"], edit["y"])
        self._emit_frame(self._wait_for(client, int(reply["frame_index"]), epoch))

    def _resimulate(self, client, start: dict, steps: list[tuple[int, list[dict], list[dict], dict]], resume_mode: str,
                    edits0: list[dict] | None = None, settings0: dict | None = None,
                    resume_settings: dict | None = None) -> ResimResult:
        """Start the branch's world again in step mode with the sampling settings it was made with (`settings0`) and
        replay its actions (settings changes and events before their frames, frame edits right after them; `edits0`
        edit frame 0); then the world goes on with `resume_settings`, as after the host's own branch."""
        session, refused = self._start(client, start, settings0 or {})
        self.session_started.emit(session, "resim")
        if refused is not None:
            self.failed.emit("start", f"the branch's settings were not kept for its rebuild ({refused})", "")
        first = client.drain_frames(self.timeout)
        if not first:
            raise HostLost("the host sent no first frame after start")
        for f in first:
            self._emit_frame(f)
        for edit in edits0 or []:
            self._edit(client, edit)
        for i, (action, fired, edits, settings) in enumerate(steps):
            self._go_on()
            session = self._apply(client, session, settings)
            for ev in fired:
                client.event(event_type=ev.get("event_type"), text=ev.get("text"))
            self._emit_frame(client.step(action))
            for edit in edits:
                self._edit(client, edit)
            if i % 10 == 0 or i == len(steps) - 1:
                self.progress.emit("resimulate", i + 1, len(steps))
        session, mode_refused = self._set_mode(client, self._apply(client, session, resume_settings or {}), resume_mode)
        return ResimResult(session, self._latest.index, mode_refused)


# stopped WorkerThreads whose thread has not ended yet (a connect attempt can take `timeout`): Qt aborts the process if
# a running QThread is destroyed, so they are kept here until their thread finishes
_retiring: set[WorkerThread] = set()
STOP_WAIT_S = 5.0  # how long closing the window waits for its workers before leaving them to end on their own


def wait_for_workers(timeout_s: float) -> bool:
    """Closing the window, and at exit: wait for stopped workers still busy; False if one is still running (the process
    must then leave with os._exit, or Qt aborts it for destroying a running thread)."""
    deadline = time.monotonic() + timeout_s
    for wt in list(_retiring):
        if not wt.thread.wait(max(0, int((deadline - time.monotonic()) * 1000))):
            return False
        _retiring.discard(wt)
    return True


class WorkerThread:
    """A WorldWorker on its own QThread, started and stopped together; the window listens to `signals`."""

    def __init__(self, address: str, timeout: float = 5.0):
        self.thread = QThread()
        self.thread.setObjectName("worldbridge-network")
        self.worker = WorldWorker(address, timeout=timeout)
        self.worker.moveToThread(self.thread)
        # the worker's signals wait in the window thread's event queue, where disconnecting them cannot recall them:
        # they reach this relay there, which a stopped worker's no longer passes on (to a closed or reconnected window)
        self.signals = WorkerSignals()
        for name in WINDOW_SIGNALS:
            getattr(self.worker, name).connect(getattr(self.signals, name))
        self.thread.started.connect(self.worker.run)
        self.worker.finished.connect(self.thread.quit)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """End the worker without waiting for it (reconnecting: it may still be connecting): silenced, so nothing it
        said, even before this, reaches the window (a late "connection failed", a refusal still queued), and kept alive
        in `_retiring` until its thread ends (within a step of a long command, or a connect's timeout);
        `wait_for_workers` joins it."""
        self.worker.stop()
        self.worker.submit("quit")
        self.thread.quit()
        for name in WINDOW_SIGNALS:
            try:
                getattr(self.signals, name).disconnect()
            except (RuntimeError, TypeError):
                pass
        if self.thread.isRunning():
            _retiring.add(self)
            self.thread.finished.connect(lambda: _retiring.discard(self))
