"""A cancel that arrives together with a Modbus answer: Python 3.11's wait_for (pymodbus'
execute awaits the answer with it) returns the answer and drops the cancel. The connection
must end the request cancelled all the same, and a stop must end a task that drops one cancel
(CI once hung 300 s on a device polling on after its cancel)."""

from __future__ import annotations

import asyncio

import pytest

from cityops.running import cancel_until_done
from edge_agents.drivers.modbus.connection import ModbusConnection


class _Answer:
    registers = (7,)

    def isError(self) -> bool:  # pymodbus' name
        return False


class _ClientAnsweringWithACancel:
    """Answers each request through wait_for, and cancels the asking task in the same loop
    turn as the answer comes (or has `race` do it): the race of the field, every time."""

    connected = True

    def __init__(self, race=None) -> None:
        self.answered = 0
        self.race = race or (lambda task: task.cancel())

    async def read_input_registers(self, *_args: object, **_kwargs: object) -> _Answer:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        answer: asyncio.Future = loop.create_future()

        def both() -> None:
            answer.set_result(_Answer())
            self.race(task)

        loop.call_soon(both)
        response = await asyncio.wait_for(answer, 5.0)
        self.answered += 1
        return response

    def close(self) -> None:
        return None


async def _request(connection: ModbusConnection, held: bool) -> object:
    if not held:
        return await connection.call("read_input_registers", 1, 0, count=1)
    async with connection.exclusive(deadline_held=True):
        return await connection.call("read_input_registers", 1, 0, count=1)


@pytest.mark.parametrize("held", [False, True], ids=["own deadline", "poll's deadline"])
async def test_a_cancel_arriving_with_the_answer_cancels_the_request(held: bool) -> None:
    connection = ModbusConnection("127.0.0.1", 1, timeout_s=1.0)
    client = _ClientAnsweringWithACancel()
    connection._client = client  # type: ignore[assignment]
    task = asyncio.create_task(_request(connection, held))
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.answered == 1, "the answer came: wait_for returned it"
    assert task.cancelled()
    assert connection._client is None, "a cancelled request leaves a fresh connection"


async def test_a_poll_whose_deadline_passes_with_the_answer_times_out() -> None:
    # the poll's own deadline cancels too: that cancel, dropped, would let the poll run on
    connection = ModbusConnection("127.0.0.1", 1, timeout_s=1.0)
    deadline: list[asyncio.Timeout] = []
    client = _ClientAnsweringWithACancel(race=lambda _task: deadline[0].reschedule(0.0))
    connection._client = client  # type: ignore[assignment]

    async def poll() -> None:
        async with connection.exclusive(deadline_held=True), asyncio.timeout(5.0) as poll:
            deadline.append(poll)
            await connection.call("read_input_registers", 1, 0, count=1)

    with pytest.raises(TimeoutError):
        await asyncio.create_task(poll())
    assert client.answered == 1


async def test_a_stop_ends_a_task_that_drops_a_cancel() -> None:
    dropped = 0

    async def drops_the_first_cancel() -> None:
        nonlocal dropped
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            dropped += 1
            asyncio.current_task().uncancel()  # as wait_for does, in effect
        await asyncio.Event().wait()

    task = asyncio.create_task(drops_the_first_cancel())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_until_done([task], every_s=0.05), 5.0)
    assert dropped == 1 and task.cancelled()
