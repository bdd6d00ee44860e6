"""The progress entries of nested steps (those a flow node runs), placed and bounded.

A job instance's ``steps`` in progress list its own steps in order, each flow step followed by
the entries of the steps it ran (``each[0]/build``, ``each[1]/build``, ``pick/deploy``), nested
as deep as the flow steps are. A loop can run a thousand iterations of several steps, and the
progress is both the ``progress`` query's answer and the run's result, which Temporal refuses
over 2 MB: so the run keeps at most :data:`MAX_NESTED_ENTRIES` *finished* nested entries and
drops the oldest beyond that (the flow step's own entry and outputs still tell the whole story).

Adding and dropping entries is O(1); the job's list is rebuilt only when progress is read
(:meth:`StepTree.sync`), so a loop starting hundreds of iterations at once stays cheap.
"""

from __future__ import annotations

from collections import deque

from ..runs import JobProgress, StepProgress

MAX_NESTED_ENTRIES = 500
"""Finished nested step entries kept in a run's progress (about 150 KB without their outputs)."""


class StepTree:
    """The step entries of one job instance: its own, then each flow step's nested ones after it."""

    __slots__ = ("_children", "_dirty", "_job", "_parent", "_top")

    def __init__(self, job: JobProgress) -> None:
        self._job = job
        self._top = list(job.steps)
        # Keyed by id(): entries are mutable models (unhashable, and comparing them is costly);
        # each is held here while listed. Dicts keep insertion order and remove in O(1).
        self._children: dict[int, dict[int, StepProgress]] = {}
        self._parent: dict[int, StepProgress] = {}
        self._dirty = False

    def add(self, parent: StepProgress, entries: list[StepProgress]) -> None:
        """List ``entries`` (steps ``parent`` runs) after ``parent``'s earlier nested entries."""
        children = self._children.setdefault(id(parent), {})
        for entry in entries:
            children[id(entry)] = entry
            self._parent[id(entry)] = parent
        self._dirty = True

    def append(self, entry: StepProgress) -> None:
        """List ``entry`` after the job's own steps (a compensation of one of them)."""
        self._top.append(entry)
        self._dirty = True

    def remove(self, entry: StepProgress) -> None:
        """Stop listing ``entry`` and whatever it ran."""
        parent = self._parent.pop(id(entry), None)
        if parent is None:
            return
        self._children[id(parent)].pop(id(entry), None)
        stack = [entry]
        while stack:
            for child in self._children.pop(id(stack.pop()), {}).values():
                self._parent.pop(id(child), None)
                stack.append(child)
        self._dirty = True

    def sync(self) -> None:
        """Rebuild the job's ``steps`` list if entries were added or removed since the last time."""
        if not self._dirty:
            return
        out: list[StepProgress] = []
        stack = list(reversed(self._top))
        while stack:
            entry = stack.pop()
            out.append(entry)
            stack.extend(reversed(list(self._children.get(id(entry), {}).values())))
        self._job.steps = out
        self._dirty = False


class NestedBudget:
    """Run-wide bound on listed nested entries: the oldest finished ones go first."""

    __slots__ = ("_finished", "limit")

    def __init__(self, limit: int | None = None) -> None:
        self.limit = MAX_NESTED_ENTRIES if limit is None else limit
        self._finished: deque[tuple[StepTree, StepProgress]] = deque()

    def finished(self, tree: StepTree, entry: StepProgress) -> None:
        """``entry`` (listed in ``tree``) reached its final status."""
        self._finished.append((tree, entry))
        while len(self._finished) > self.limit:
            old_tree, old = self._finished.popleft()
            old_tree.remove(old)
