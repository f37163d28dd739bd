"""Remembered state (QSettings): geometry, docks, last folder, recent files, options."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "QuantInspector"
APPLICATION = "Quant Inspector"
MAX_RECENT = 10
DEFAULT_TUNE_BUDGET = 120  # seconds, qcore's TuneSettings.budget_s


class AppSettings:
    """A thin typed wrapper; pass a QSettings (e.g. an .ini file in tests) to isolate it."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self.qs = settings or QSettings(ORGANIZATION, APPLICATION)

    # ---- window ---------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        value = self.qs.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def window_state(self) -> QByteArray | None:
        value = self.qs.value("window/state")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.qs.setValue("window/geometry", geometry)
        self.qs.setValue("window/state", state)

    # ---- folders and files -------------------------------------------------------------
    def last_folder(self) -> str:
        folder = str(self.qs.value("files/last_folder", "") or "")
        return folder if folder and Path(folder).is_dir() else str(Path.home())

    def remember_folder(self, path: str | Path) -> None:
        path = Path(path)
        self.qs.setValue("files/last_folder", str(path if path.is_dir() else path.parent))

    def recent_files(self) -> list[str]:
        value = self.qs.value("files/recent", [])
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in (value or []) if v]

    def add_recent(self, path: str | Path) -> list[str]:
        path = str(Path(path).resolve())
        files = [path] + [f for f in self.recent_files() if f != path]
        files = files[:MAX_RECENT]
        self.qs.setValue("files/recent", files)
        self.remember_folder(path)
        return files

    def clear_recent(self) -> None:
        self.qs.setValue("files/recent", [])

    # ---- options -------------------------------------------------------------------------
    def value(self, key: str, default: object) -> object:
        value = self.qs.value(f"options/{key}", default)
        if isinstance(default, bool) and isinstance(value, str):
            return value.lower() == "true"
        if isinstance(default, int) and not isinstance(default, bool):
            try:
                return int(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return default
        return value

    def set_value(self, key: str, value: object) -> None:
        self.qs.setValue(f"options/{key}", value)

    def tune_for_speed(self) -> bool:
        """The Configuration panel's "Tune for speed" box (``qcore convert --tune``)."""
        return bool(self.value("tune", False))

    def set_tune_for_speed(self, on: bool) -> None:
        self.set_value("tune", bool(on))

    def tune_engine(self) -> str:
        """The engine "Tune for speed" measures on ("" for the target's own)."""
        value = str(self.value("tune_engine", ""))
        return value if value in ("", "onnxruntime", "openvino") else ""

    def set_tune_engine(self, engine: str) -> None:
        self.set_value("tune_engine", engine)

    def tune_budget(self) -> int:
        """Seconds "Tune for speed" may spend searching (``--tune-budget``)."""
        value = self.value("tune_budget", DEFAULT_TUNE_BUDGET)
        return max(1, value if isinstance(value, int) else DEFAULT_TUNE_BUDGET)

    def set_tune_budget(self, seconds: int) -> None:
        self.set_value("tune_budget", int(seconds))

    def model_inputs(self, model: str | Path) -> object:
        """What the user fed ``model`` last time (an ``InputSource`` as JSON), or None."""
        return self.qs.value(f"inputs/{_key(model)}", None)

    def set_model_inputs(self, model: str | Path, text: str) -> None:
        self.qs.setValue(f"inputs/{_key(model)}", text)

    def sync(self) -> None:
        self.qs.sync()


def _key(model: str | Path) -> str:
    """A settings key for a model path (QSettings treats '/' as a group separator)."""
    return str(Path(model).resolve()).replace("/", "|").replace("\\", "|")
