"""Measure the editor against the bare protocol: fps shown vs the host's, and the latency the editor adds.

    python -m editor_gui.measure --fps 24 --fps 60 --seconds 8     (offscreen is fine: QT_QPA_PLATFORM=offscreen)

Protocol latency = Frame.received_ts - client_ts (a headless WorldClient, and the same figure inside the editor).
Editor overhead = (client_ts - key press) + (paint - received_ts): queueing the key to the network thread, and
handing the frame to the UI thread and painting it. Prints one JSON report.
"""

from __future__ import annotations

import json
import random
import sys
import time

import click
import numpy as np


def _pct(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    a = np.asarray(values, np.float64)
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2),
            "max": round(float(a.max()), 2)}


def protocol_only(address: str, fps: float, seconds: float, mode: str) -> dict:
    """A bare WorldClient: input-to-frame latency and frames/s with nothing else in the way."""
    from bridge.client import WorldClient

    lat: list[float] = []
    with WorldClient(address, client_name="measure") as c:
        c.connect()
        c.start(backend="sandbox", mode=mode, fps=fps, seed=1)
        c.next_frame(timeout=5)
        end, n, seq, t0 = time.monotonic() + seconds, 0, 0, time.monotonic()
        while time.monotonic() < end:
            seq += 1
            action = 1 + seq % 2
            if mode == "step":
                f = c.step(action)
                lat.append(f.received_ts - f.client_ts)
                n += 1
                time.sleep(0.01)
                continue
            c.act(action, seq=seq)
            deadline = time.monotonic() + random.uniform(0.08, 0.16)  # de-phase inputs from the host's ticks
            got = False
            while time.monotonic() < deadline:
                f = c.next_frame(timeout=max(0.0, deadline - time.monotonic()))
                if f is None:
                    continue
                n += 1
                if f.seq == seq and not got:
                    lat.append(f.received_ts - f.client_ts)
                    got = True
        frames_per_s = n / (time.monotonic() - t0) if mode == "realtime" else None
        status = c.status()
    return {"mode": mode, "fps_target": fps, "fps_received": frames_per_s and round(frames_per_s, 2),
            "host_fps_measured": status.get("fps_measured"), "latency_ms": _pct(lat)}


def through_editor(address: str, fps: float, seconds: float, mode: str) -> dict:
    """The real window (offscreen works) with synthetic key presses on the viewport."""
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from editor_gui.main_window import MainWindow, StartOptions
    from editor_gui.session_store import PromptSpec

    app = QApplication.instance() or QApplication(sys.argv[:1])
    w = MainWindow(address, StartOptions(backend="sandbox", mode=mode, fps=fps, prompt=PromptSpec(seed=1)))
    w.resize(1280, 800)
    w.show()
    fps_samples: list[float] = []
    state = {"key": Qt.Key.Key_Right, "down": False, "t_end": None}

    def poke() -> None:
        if w.info is None or w.viewport.frame is None:
            QTimer.singleShot(50, poke)
            return
        if state["t_end"] is None:
            state["t_end"] = time.monotonic() + seconds
            w.viewport.setFocus()
            QTimer.singleShot(1000, sample_fps)
        if time.monotonic() > state["t_end"]:
            app.quit()
            return
        if mode == "step":
            QTest.keyClick(w.viewport, state["key"])
        elif state["down"]:
            QTest.keyRelease(w.viewport, state["key"])
            state["key"] = Qt.Key.Key_Left if state["key"] == Qt.Key.Key_Right else Qt.Key.Key_Right
            state["down"] = False
        else:
            QTest.keyPress(w.viewport, state["key"])
            state["down"] = True
        QTimer.singleShot(int(random.uniform(80, 160)), poke)

    def sample_fps() -> None:
        if state["t_end"] is not None and time.monotonic() < state["t_end"]:
            fps_samples.append(w.viewport.stats.fps_shown())
            QTimer.singleShot(500, sample_fps)

    QTimer.singleShot(0, poke)
    guard = QTimer()  # never hang (stopped afterwards, so it cannot end a later run)
    guard.setSingleShot(True)
    guard.timeout.connect(app.quit)
    guard.start(int((seconds + 20) * 1000))
    app.exec()
    guard.stop()
    stats = w.viewport.stats
    result = {"mode": mode, "fps_target": fps,
              "fps_shown_median": round(float(np.median(fps_samples)), 2) if fps_samples else None,
              "protocol_latency_ms": _pct(list(stats.protocol_ms)), "editor_overhead_ms": _pct(list(stats.editor_ms)),
              "key_to_paint_ms": _pct(list(stats.key_to_paint_ms)), "overhead_send_ms": _pct(list(stats.send_ms)),
              "overhead_display_ms": _pct(list(stats.display_ms))}
    w.close()
    return result


@click.command()
@click.option("--fps", "fps_list", type=float, multiple=True, default=[24.0], show_default=True, help="Host target fps (repeatable).")
@click.option("--seconds", type=float, default=8.0, show_default=True, help="How long each run plays.")
def main(fps_list: tuple[float, ...], seconds: float) -> None:
    """Run the bare protocol and the editor against one in-process sandbox host; print JSON."""
    import torch

    from bridge.host.server import run_host_in_thread

    torch.set_num_threads(1)
    host = run_host_in_thread("sandbox", "tcp://127.0.0.1:*")
    report = {"backend": "sandbox (test backend)", "runs": []}
    try:
        for fps in fps_list:
            for mode in ("realtime", "step"):
                if mode == "step" and fps != fps_list[0]:
                    continue  # step mode does not depend on the target fps
                report["runs"].append({"protocol": protocol_only(host.address, fps, seconds, mode),
                                       "editor": through_editor(host.address, fps, seconds, mode)})
    finally:
        host.stop()
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
