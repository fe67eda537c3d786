"""Live video: a frame source (camera) -> tracked, smoothed faces -> a display sink (OpenCV window), q/Esc quits."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np

from ferlab.errors import FerlabError
from ferlab.predict.video import VideoAnalyzer, VideoConfig, draw_tracked

__all__ = ["CameraError", "FrameSource", "DisplaySink", "CameraSource", "WindowSink", "check_display", "run_live"]

_QUIT_KEYS = {ord("q"), ord("Q"), 27}  # 27 = Esc


class CameraError(FerlabError):
    """No camera, or nowhere to show the live window."""


class FrameSource(Protocol):
    def read(self) -> np.ndarray | None: ...  # the next RGB frame, None at the end
    def close(self) -> None: ...


class DisplaySink(Protocol):
    def show(self, rgb: np.ndarray) -> bool: ...  # False when the user asked to quit
    def close(self) -> None: ...


@contextmanager
def _quiet_opencv() -> Any:
    """Silence OpenCV's own [WARN] lines (e.g. 'can't open camera by index'): our error says it in one line."""
    import cv2

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


class CameraSource:
    """Frames of camera `device` (an index such as 0, or a device path / stream URL) through cv2.VideoCapture."""

    def __init__(self, device: int | str = 0) -> None:
        import cv2

        with _quiet_opencv():
            self._cap = cv2.VideoCapture(device)
            opened = self._cap.isOpened()
        if not opened:
            self._cap.release()
            raise CameraError(f"cannot open camera {device} (no such device, in use, or no permission); "
                              "try another --device")

    def read(self) -> np.ndarray | None:
        import cv2

        ok, bgr = self._cap.read()
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok and bgr is not None else None

    def close(self) -> None:
        self._cap.release()


def check_display() -> None:
    """Raise CameraError when no window can be shown: headless OpenCV build, or no X11/Wayland display on Linux."""
    import cv2

    gui = next((line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
                if line.strip().startswith("GUI:")), "")
    if gui.upper() == "NONE":
        raise CameraError("this OpenCV build has no GUI (opencv-python-headless), so no live window can open; "
                          "install opencv-python instead, or run `ferlab predict VIDEO --out DIR` on a recording")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise CameraError("no display (DISPLAY is not set): ferlab webcam needs a desktop session; "
                          "run `ferlab predict VIDEO --out DIR` on a recording instead")


class WindowSink:
    """An OpenCV window; `show` returns False on q/Esc or when the window is closed."""

    def __init__(self, title: str = "ferlab webcam") -> None:
        import cv2

        check_display()
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as err:
            raise CameraError(f"cannot open a window ({str(err).strip().splitlines()[-1][:160]})") from None

    def show(self, rgb: np.ndarray) -> bool:
        import cv2

        cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        if key in _QUIT_KEYS:
            return False
        return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1

    def close(self) -> None:
        import cv2

        cv2.destroyWindow(self.title)
        cv2.waitKey(1)


def _fps_label(rgb: np.ndarray, fps: float) -> None:
    import cv2

    cv2.putText(rgb, f"{fps:.1f} fps  (q/Esc quits)", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                cv2.LINE_AA)


def run_live(predictor: Any, source: FrameSource, sink: DisplaySink, config: VideoConfig | None = None, *,
             max_frames: int | None = None) -> int:
    """Show each frame of `source` with the tracked overlay until the source ends, the sink quits or max_frames.

    Returns the number of frames shown; source and sink are closed in every case.
    """
    analyzer = VideoAnalyzer(predictor, config)
    shown, fps, last = 0, 0.0, time.perf_counter()
    try:
        while max_frames is None or shown < max_frames:
            rgb = source.read()
            if rgb is None:
                break
            faces = analyzer.process([rgb])[0]
            now = time.perf_counter()
            fps = 0.9 * fps + 0.1 / max(now - last, 1e-6) if shown else 1.0 / max(now - last, 1e-6)
            last = now
            frame = draw_tracked(rgb, faces)
            _fps_label(frame, fps)
            shown += 1
            if not sink.show(frame):
                break
    finally:
        source.close()
        sink.close()
    return shown
