"""Typed op statuses and reasons: what the passes decided about an op, and why.

``OpStatus`` values compare equal to their text (``"int8"``), so reports and JSON keep the
words users know. A :class:`Reason` is the user-facing text of a :class:`ReasonKind` with
its detail; code decides by ``reason.kind``, never by parsing the text.
"""

from __future__ import annotations

from enum import Enum


class OpStatus(str, Enum):
    """Where an op stands after the placement pass."""

    UNDECIDED = ""  # placement not run yet, or the op was added by a later pass
    FAKE = "fake"  # a QuantizeLinear / DequantizeLinear of the quant model
    INT8 = "int8"
    FP32 = "fp32"

    def __str__(self) -> str:
        return self.value


class RunStatus(str, Enum):
    """How one measurement went (a benchmark, an accuracy comparison, a per-op profile)."""

    OK = "ok"
    SKIPPED = "skipped"  # the engine cannot run this model
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class ReasonKind(Enum):
    """Why an op has its status, with the text shown to users (``{}``: the detail)."""

    NONE = ("none", "")
    OTHER = ("other", "{}")  # free text
    FAKE_LEFT = ("fake_left", "quantization op left in place")
    RESTORED_CLAMP = ("restored", "restored: {}")
    NO_KERNEL = ("no_kernel", "no INT8 kernel for this op type")
    NO_KERNEL_ON_TARGET = ("no_kernel_on_target", "no INT8 kernel for this op type on {}")
    CHANGES_VALUES = ("changes_values",
                      "changes values (only nearest Resize / single-output MaxPool keep int8)")
    NOT_SELECTED = ("not_selected", "type not in ops_to_quantize")
    SKIPPED = ("skipped", "skipped by id (op_ids_to_skip)")
    UNSUPPORTED_FORM = ("unsupported_form", "{}")  # e.g. a weight that is not constant
    MISSING_SCALE = ("missing_scale", "missing scale: {}")
    NO_NEIGHBOUR = ("no_neighbour",
                    "input comes from FP32: quantizing before a data-movement op gains nothing")
    FLOAT_ACTIVATION = ("float_activation",
                        "runs in float after the INT8 op: its output scale cannot clamp it")
    KEEPS_ORT_FLOAT = ("keeps_ort_float", "keeps ONNX Runtime from quantizing the float op")
    NOT_QUANT = ("not_quant",
                 "not a quant model: it has no QuantizeLinear / DequantizeLinear to convert")
    # ``qcore convert --tune`` timed the model both ways: "0.41 ms vs 0.58 ms INT8 in this model"
    TUNED = ("tuned", "measured {}")  # shown as "FP32: measured ..."

    def __init__(self, code: str, template: str) -> None:
        self.code, self.template = code, template

    @property
    def user_choice(self) -> bool:
        """True for the reasons a user chose (skip by id, types not ticked, ``--tune``)."""
        return self in (ReasonKind.SKIPPED, ReasonKind.NOT_SELECTED, ReasonKind.TUNED)


class Reason(str):
    """The text of ``kind`` with ``detail`` filled in; a ``str``, so it prints and compares as
    the text users read, and carries ``kind`` for code."""

    kind: ReasonKind
    detail: str

    def __new__(cls, kind: ReasonKind = ReasonKind.NONE, detail: str = "") -> Reason:
        text = kind.template.replace("{}", detail, 1)
        reason = super().__new__(cls, text)
        reason.kind, reason.detail = kind, detail
        return reason

    def __getnewargs__(self) -> tuple[ReasonKind, str]:  # type: ignore[override]
        return self.kind, self.detail

    def __repr__(self) -> str:
        return f"Reason({self.kind.name}, {self.detail!r})" if self.detail else \
            f"Reason({self.kind.name})"


    @classmethod
    def of(cls, text: str) -> Reason:
        """``text`` as a reason: itself if it is one, else free text (``OTHER``)."""
        if isinstance(text, Reason):
            return text
        return cls(ReasonKind.OTHER, text) if text else NO_REASON


NO_REASON = Reason()
