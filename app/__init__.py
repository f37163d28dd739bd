"""Quant Inspector: the PySide6 desktop app over qcore (browse passes, skip ops, convert, bench)."""
