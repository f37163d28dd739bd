"""Views prepared off the UI thread: a view plan (the neighbourhood or collapsed-block graph and
its quick layout), then Graphviz's layout, each cached per view key.

A newer request makes the results of older ones stale: they are cached but not shown. The
busy card over the graph appears only when a job runs longer than ``BUSY_DELAY_MS``.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from app.headless.blocks import Block
from app.headless.layout import GraphLayout, LayoutCache
from app.headless.view_plan import ViewPlan, ViewSpec, graphviz_layout, plan_view
from app.workers import Job, JobPool
from qcore.ir import Graph

SYNC_PLAN_OPS = 300  # smaller graphs plan their view on the UI thread (a few ms)
BUSY_DELAY_MS = 250


class BusyCard(QFrame):
    """'Laying out ...' with a Cancel button, over the top of the graph view."""

    def __init__(self, over: QAbstractScrollArea, cancel: Callable[[], None],
                 running: Callable[[], bool]) -> None:
        super().__init__(over)
        self.setObjectName("busyCard")
        self.over, self.running = over, running
        row = QHBoxLayout(self)
        self.label = QLabel("Laying out\u2026")
        button = QPushButton("Cancel")
        button.clicked.connect(cancel)
        row.addWidget(self.label)
        row.addWidget(button)
        self.timer = QTimer(self, singleShot=True, interval=BUSY_DELAY_MS)
        self.timer.timeout.connect(self._appear)
        self.hide()

    def start(self, text: str) -> None:
        """Show ``text`` if the job still runs after the delay."""
        self.label.setText(text)
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self.hide()

    def place(self, viewport: QWidget) -> None:
        vp = viewport.geometry()
        self.adjustSize()
        self.move(vp.center().x() - self.width() // 2, vp.top() + 40)

    def _appear(self) -> None:
        if self.running():
            self.place(self.over.viewport())
            self.show()
            self.raise_()


class ViewLoader:
    """Plans and lays out views in workers for one panel; calls back on the UI thread:
    ``planned(key, plan)``, ``laid_out(plan, layout)`` and ``failed(exc)``, for the latest
    request only."""

    def __init__(self, jobs: JobPool, busy: BusyCard,
                 planned: Callable[[tuple, ViewPlan], None],
                 laid_out: Callable[[ViewPlan, GraphLayout], None],
                 failed: Callable[[BaseException], None]) -> None:
        self.jobs, self.busy = jobs, busy
        self.planned, self.laid_out, self.failed = planned, laid_out, failed
        self.layouts = LayoutCache()  # (generation, snapshot, view) -> GraphLayout
        self.plans = LayoutCache()  # (generation, snapshot, view) -> ViewPlan
        self.blocks: dict[tuple, dict[str, Block]] = {}  # (generation, snapshot) -> blocks
        self.job: Job | None = None  # the job preparing the latest request
        self._job_key: tuple | None = None  # the view key that job works on
        self._token = 0

    def clear(self) -> None:
        self.layouts.clear()
        self.plans.clear()
        self.blocks.clear()

    def begin(self, key: tuple) -> bool:
        """A new request for view ``key``: older ones go stale and their job is cancelled.
        False if this very view is being prepared already."""
        if self.job is not None and self._job_key == key:
            return False
        self._job_key = key
        self._token += 1
        if self.job is not None:
            self.job.cancel()
            self.job = None
        self.busy.stop()
        return True

    def load(self, key: tuple, graph: Graph, spec: ViewSpec) -> None:
        """The view ``key`` of ``graph``: from the cache, planned here (small graphs) or in a
        worker."""
        plan, layout = self.plans.get(key), self.layouts.get(key)
        if plan is not None and layout is not None:
            self.laid_out(plan, layout)
            return
        token = self._token
        if plan is not None:
            self._have_plan(token, key, plan)
            return
        blocks = self.blocks.get(key[:2])
        if len(graph.nodes) <= SYNC_PLAN_OPS:  # small: no worker round trip
            self._have_plan(token, key, plan_view(graph, spec, blocks))
            return
        job = Job(plan_view, graph, spec, blocks, name="view")
        job.signals.result.connect(lambda plan: self._have_plan(token, key, plan))
        self._start(job, token, "Preparing the view\u2026")

    def _have_plan(self, token: int, key: tuple, plan: ViewPlan) -> None:
        self.plans.put(key, plan)
        self.blocks[key[:2]] = plan.blocks
        if token == self._token:
            self.job = None
            self.planned(key, plan)

    def lay_out(self, key: tuple, plan: ViewPlan) -> None:
        """Graphviz's layout of ``plan`` in a worker (the latest request's plan)."""
        token = self._token

        def done(layout: GraphLayout) -> None:
            self.layouts.put(key, layout)
            if token == self._token:
                self.laid_out(plan, layout)

        job = Job(graphviz_layout, plan, name="layout")
        job.signals.result.connect(done)
        what = f"Laying out {plan.size} nodes with Graphviz"
        self._start(job, token, what + (" (quick layout shown)\u2026" if plan.quick else "\u2026"))

    def _start(self, job: Job, token: int, text: str) -> None:
        job.signals.error.connect(lambda exc: self.failed(exc) if token == self._token else None)
        job.signals.finished.connect(lambda: self._finished(job))
        self.job = self.jobs.start(job)
        self.busy.start(text)

    def _finished(self, job: Job) -> None:
        if job is self.job:
            self.job = None
            self.busy.stop()

    def cancel(self) -> bool:
        """Stop the running job (its results go stale); False if none runs."""
        if self.job is None:
            return False
        self.job.cancel()
        self.job = None
        self._token += 1
        self.busy.stop()
        return True
