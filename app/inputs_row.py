"""The Inputs row of the Benchmark tab: generated data, a data file, an image folder with
its preprocessing preset, or a text file through a tokenizer file. The choice lives in the
session (the advisor uses it too) and is remembered per model by the main window."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QToolButton,
    QWidget,
)

from app.headless.input_source import KINDS, InputSource
from qcore.bench.images import PRESETS

MAX_SEQ_LENGTH = 8192


class InputsRow(QWidget):
    """Emits ``changed(InputSource)`` when the user picks another source."""

    changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Inputs"))
        self.kind = QComboBox()
        for key, text in KINDS.items():
            self.kind.addItem(text, key)
        self.kind.setToolTip("What the models are fed: accuracy means something only on real "
                             "data")
        self.kind.activated.connect(self._kind_picked)
        self.preset = QComboBox()
        for preset in PRESETS.values():
            self.preset.addItem(preset.name, preset.name)
            self.preset.setItemData(self.preset.count() - 1, preset.description, 3)  # tooltip
        self.preset.setToolTip("How images become model inputs (resize, crop, mean / std)")
        self.preset.activated.connect(lambda _: self._emit())
        self.seq_length = QSpinBox()  # 1 shows "auto": qcore's default
        self.seq_length.setRange(1, MAX_SEQ_LENGTH)
        self.seq_length.setSpecialValueText("length: auto")
        self.seq_length.setPrefix("length ")
        self.seq_length.setSuffix(" tokens")
        self.seq_length.setKeyboardTracking(False)  # typed: one change when done
        self.seq_length.setToolTip("Tokens per line where the model's sequence length is "
                                   "dynamic (qcore bench --seq-length); auto: the longest "
                                   "line. A model with a fixed length uses its own.")
        self.seq_length.valueChanged.connect(lambda _: self._emit())
        self.path = QLabel("")
        self.path.setObjectName("hint")
        self.choose = QToolButton(text="Choose\u2026")
        self.choose.clicked.connect(self._choose)
        for widget in (self.kind, self.choose, self.preset, self.seq_length):
            row.addWidget(widget)
        row.addWidget(self.path, 1)
        self.source = InputSource()
        self.show_source(self.source)

    def show_source(self, source: InputSource) -> None:
        """Show ``source`` without emitting ``changed``."""
        self.source = source
        self.kind.setCurrentIndex(self.kind.findData(source.kind))
        self.preset.setCurrentIndex(max(0, self.preset.findData(source.preset)))
        self.preset.setVisible(source.kind == "images")
        self.seq_length.setVisible(source.kind == "text")
        self.seq_length.blockSignals(True)
        self.seq_length.setValue(max(1, source.seq_length))
        self.seq_length.blockSignals(False)
        self.choose.setVisible(source.kind != "generated")
        if source.kind == "text" and not source.generated:
            self.path.setText(f"{source.path} + {Path(source.tokenizer).name}")
            self.path.setToolTip(f"{source.path}\nthrough {source.tokenizer}")
        else:
            self.path.setText(source.path if not source.generated else "")
            self.path.setToolTip(source.path)

    def _kind_picked(self, _index: int) -> None:
        kind = self.kind.currentData()
        if kind == "generated":
            self._emit(InputSource())
        elif not self._choose():
            self.show_source(self.source)  # dialog cancelled: keep what was

    def _choose(self) -> bool:
        kind = self.kind.currentData()
        start = str(Path(self.source.path).parent) if self.source.path else ""
        if kind == "text":
            return self._choose_text(start)
        if kind == "images":
            path = QFileDialog.getExistingDirectory(self, "Folder of images", start)
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Input data", start,
                                                  "Input data (*.npz *.npy)")
        if not path:
            return False
        self._emit(InputSource(kind, path, self.preset.currentData() or "imagenet"))
        return True

    def _choose_text(self, start: str) -> bool:
        """A text file, then the tokenizer its lines go through."""
        path, _ = QFileDialog.getOpenFileName(self, "Text file: one sentence a line", start,
                                              "Text (*.txt);;All files (*)")
        if not path:
            return False
        known = self.source.tokenizer if self.source.kind == "text" else ""
        tokenizer, _ = QFileDialog.getOpenFileName(
            self, "Tokenizer file", known or str(Path(path).parent),
            "Tokenizer (tokenizer.json vocab.txt *.json *.txt)")
        if not tokenizer:
            return False
        self._emit(InputSource("text", path, self.preset.currentData() or "imagenet",
                               tokenizer, self._length()))
        return True

    def _length(self) -> int:
        value = self.seq_length.value()
        return 0 if value <= 1 else value

    def _emit(self, source: InputSource | None = None) -> None:
        if source is None:
            source = InputSource(self.source.kind, self.source.path, self.preset.currentData(),
                                 self.source.tokenizer, self._length())
        self.show_source(source)
        self.changed.emit(source)
