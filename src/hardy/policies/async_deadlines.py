"""Async deadlines on an asyncio loop without a loop timer per call: the registry and its decisions.

``asyncio.timeout()`` schedules a timer handle per call and cancels it when
the call leaves: tens of times the cost of the ``await`` it guards. Here
each loop keeps its pending deadlines in one :class:`DeadlineRegistry`, and one loop
timer is armed for the earliest of them:

- **Lanes.** Deadlines of the same duration expire in the order they were
  entered, so each duration has a FIFO :class:`DeadlineLane`. Entering a
  deadline writes an :class:`AsyncDeadline` at its lane's tail; leaving it
  marks it left and, when it is the lane's head (the usual case: calls of
  one duration finish roughly in order), moves the head past it and every
  left one behind it, clearing their slots; an empty lane starts again at
  its first slot, so a steady stream of calls allocates nothing there.
  A left node stuck behind one still running is dropped when that one
  leaves or expires, so a lane holds at most the calls entered during one
  period of its duration.
- **One timer.** The registry remembers when its timer is armed; entering a
  deadline earlier than that (a shorter duration) re-arms it, anything else
  writes nothing but the node. The timer callback (:meth:`DeadlineRegistry.fire`)
  expires every due node, then arms the timer for the earliest pending one.
  A deadline that does not fire costs no loop operation at all, and a
  steady stream of calls of one duration costs one timer per period.
- **Expiry** cancels the task, as ``asyncio.timeout`` does, and the call
  turns that cancellation into a timeout only when it is its own
  (:func:`settle`): its node is expired and (3.11+) ``task.uncancel()``
  brings the task's cancel count back to what it was on entry; a
  cancellation from outside stays a cancellation. When several due
  deadlines belong to one task (nested calls, found late), the tightest is
  expired first and the others on the next turn of the loop, so the
  innermost deadline that passed is the one reported, and an outer one that
  passed too still fires after.

Both cores run this module: compiled into the extension, and as it is in the
twin. Each keeps its own registry on the loop. The dispatch (finding the
loop, the task and the registry, awaiting the call) is the core's: the twin's
is ``hardy._async_deadlines``, the compiled one ``_c/async_timeout.pxi`` with
``_c/first_try.pxi``.

Example::

    lane = registry.lane(seconds)
    node = deadline_enter(registry, lane, loop, None, task, cancelling, now + seconds)
    ...  # await the call
    own_timeout = deadline_settle(lane, node, task, cancelled)
"""

import sys
from time import monotonic as _deadline_clock
from typing import Any

try:
    import cython
except ModuleNotFoundError:  # the twin, where Cython is not installed
    from hardy.policies import _shadow as cython  # type: ignore[no-redef]

# A node's state.
DEADLINE_PENDING = cython.declare(cython.int, 0)
DEADLINE_EXPIRED = cython.declare(cython.int, 1)
DEADLINE_LEFT = cython.declare(cython.int, 2)

# A lane keeps the nodes before its head until this many have left, then
# drops them in one step.
COMPACT_AT = cython.declare(cython.int, 64)

# Task.cancelling() and uncancel() are 3.11+; before, any cancellation of an
# expired call is its timeout.
UNCANCEL = cython.declare(cython.bint, sys.version_info >= (3, 11))
NO_DEADLINE = cython.declare(cython.double, float("inf"))


@cython.final
@cython.cclass
class AsyncDeadline:
    """One pending deadline: the task it cancels, when, and the task's cancel count on entry."""

    __slots__ = ("cancelling", "state", "task", "when")

    task: Any  # None once the call has left or been expired and settled
    when: cython.double
    cancelling: cython.longlong
    state: cython.int


@cython.final
@cython.cclass
class DeadlineLane:
    """The deadlines of one duration, in the order they were entered (and so in the order they pass)."""

    __slots__ = ("head", "live", "nodes", "seconds", "tail")

    nodes: list[Any]  # the AsyncDeadlines from ``head`` to ``tail``; other slots None
    head: cython.longlong
    tail: cython.longlong
    seconds: cython.double
    live: cython.bint  # False once its registry forgot it (no call of its duration was pending)

    def __len__(self) -> int:
        return int(self.tail - self.head)


@cython.cfunc
def new_lane(seconds: cython.double) -> DeadlineLane:
    lane: DeadlineLane = DeadlineLane.__new__(DeadlineLane)
    lane.nodes = []
    lane.head = 0
    lane.tail = 0
    lane.seconds = seconds
    lane.live = True
    return lane


@cython.final
@cython.cclass
class DeadlineRegistry:
    """The pending deadlines of one loop, in lanes by duration, and its one timer.

    Example::

        registry = new_registry()
        registry.lane_sizes()  # {seconds: pending calls}
    """

    __slots__ = ("armed", "handle", "lanes", "last")

    lanes: dict[float, DeadlineLane]
    last: DeadlineLane  # the lane used last: most programs use one duration at a time
    armed: cython.double  # when the timer fires; inf: no timer
    handle: Any  # the loop's TimerHandle, or None

    @cython.ccall
    def lane(self, seconds: cython.double) -> DeadlineLane:
        """The lane of ``seconds``, made on first use."""
        lane: DeadlineLane = self.last
        if lane.live and lane.seconds == seconds:
            return lane
        found = self.lanes.get(seconds)
        if found is None:
            lane = new_lane(seconds)
            self.lanes[seconds] = lane
        else:
            lane = found
        self.last = lane
        return lane

    def lane_sizes(self) -> dict[float, int]:
        """How many calls are pending in each lane (left calls stuck behind a running one included)."""
        return {seconds: len(lane) for seconds, lane in self.lanes.items()}

    def arm(self, loop: Any, when: float) -> None:
        """Arm the timer for ``when`` (monotonic seconds), replacing a later one."""
        if self.handle is not None:
            self.handle.cancel()
        self.armed = when
        self.handle = loop.call_later(max(0.0, when - _deadline_clock()), self.fire, loop)

    def fire(self, loop: Any) -> None:
        """The timer's callback: expire every due deadline (one per task per turn), then re-arm."""
        self.handle = None
        self.armed = NO_DEADLINE
        now: cython.double = _deadline_clock()
        earliest: cython.double = NO_DEADLINE
        due: list[AsyncDeadline] = []
        lane: DeadlineLane
        node: AsyncDeadline
        for seconds, lane in list(self.lanes.items()):
            lane_trim(lane)
            if lane.tail == 0:
                lane.live = False  # a duration no call uses now: forget it
                del self.lanes[seconds]
                continue
            for i in range(lane.head, lane.tail):
                node = lane.nodes[i]
                if node.state != DEADLINE_PENDING:
                    continue
                if node.when > now:
                    earliest = min(earliest, node.when)
                    break
                due.append(node)
        if due:
            # The tightest deadline of a task first: one cancellation per task
            # per turn, so the one reported is the innermost that passed.
            due.sort(key=_when)
            hit: set[int] = set()
            for node in due:
                task = node.task
                if id(task) in hit:
                    earliest = now  # its turn comes next
                    continue
                hit.add(id(task))
                node.state = DEADLINE_EXPIRED
                task.cancel()
            for lane in self.lanes.values():
                lane_trim(lane)
        if earliest < NO_DEADLINE:
            self.arm(loop, earliest)


@cython.cfunc
def new_registry() -> DeadlineRegistry:
    """An empty registry, for one loop."""
    registry: DeadlineRegistry = DeadlineRegistry.__new__(DeadlineRegistry)
    registry.lanes = {}
    registry.last = new_lane(-1.0)
    registry.last.live = False
    registry.armed = NO_DEADLINE
    registry.handle = None
    return registry


def _when(node: AsyncDeadline) -> float:
    return node.when


@cython.cfunc
def lane_trim(lane: DeadlineLane) -> cython.void:
    """Move the lane's head past the deadlines that are no longer pending, clearing their slots."""
    nodes: list[Any] = lane.nodes
    head: cython.longlong = lane.head
    tail: cython.longlong = lane.tail
    node: AsyncDeadline
    while head < tail:
        node = nodes[head]  # never None between the head and the tail
        if node.state == DEADLINE_PENDING:
            break
        nodes[head] = None
        head += 1
    if head == tail:
        head = tail = 0  # empty: start again at the first slot
    elif head >= COMPACT_AT and head * 2 >= tail:
        del nodes[:head]  # the cleared slots before the head
        tail -= head
        head = 0
    lane.head = head
    lane.tail = tail


@cython.cfunc
def deadline_enter(
    registry: DeadlineRegistry,
    lane: DeadlineLane,
    loop: Any,
    node: AsyncDeadline | None,
    task: Any,
    cancelling: cython.longlong,
    when: cython.double,
) -> AsyncDeadline:
    """A pending deadline of ``task`` at ``when``, in ``lane``; the timer is re-armed if it is the earliest.

    ``node`` is a finished deadline no one else holds, to fill again, or None for a new one.
    """
    if node is None:
        node = AsyncDeadline.__new__(AsyncDeadline)
    node.task = task
    node.when = when
    node.cancelling = cancelling
    node.state = DEADLINE_PENDING
    if lane.tail < len(lane.nodes):
        lane.nodes[lane.tail] = node
    else:
        lane.nodes.append(node)
    lane.tail += 1
    if when < registry.armed:
        registry.arm(loop, when)
    return node


@cython.cfunc
def deadline_leave(lane: DeadlineLane, node: AsyncDeadline) -> cython.void:
    """The call left before its deadline passed."""
    node.task = None
    node.state = DEADLINE_LEFT
    if lane.head < lane.tail and lane.nodes[lane.head] is node:
        lane_trim(lane)


@cython.cfunc
@cython.exceptval(-1, check=True)
def deadline_settle(lane: DeadlineLane, node: AsyncDeadline, task: Any, cancelled: cython.bint) -> cython.int:
    """The call ended (``cancelled``: with a ``CancelledError``): 1 if that is its own timeout, else 0.

    A call whose deadline expired but that ended another way (it returned a
    value or raised its own error after the cancellation) keeps that
    outcome, and the cancellation asked for is taken back, as
    ``asyncio.timeout`` does.
    """
    if node.state != DEADLINE_EXPIRED:
        deadline_leave(lane, node)
        return 0
    node.task = None
    if not UNCANCEL:
        return 1 if cancelled else 0
    count = task.uncancel()
    return 1 if cancelled and count <= node.cancelling else 0
