"""One channel-layer subscription per order group per process, fanned out to its order sockets.

With Channels' usual pattern every watcher's consumer has a channel of its own in every group:
each push is copied into one layer queue per watcher, decoded once per watcher, and dispatched
through each consumer's receive loop (a task and an asyncio.wait per message). Order groups are
the hot path of live tracking (every rider fix, to every watcher), so the order sockets of a
process share one channel per order group instead: the relay task of that group receives and
decodes each push once and hands it to the watchers' handlers in turn. Everything else (group
names, payloads, the layer, ordering within an order) is unchanged; a watcher that is slow
delays only the other watchers of the same order, and is coalesced (tracking.consumers).

The fan-out belongs to the event loop (one per server process; tests run a loop per scenario).
"""

import asyncio
import logging
import weakref

from channels.layers import get_channel_layer

logger = logging.getLogger("tracking.pipeline")

_by_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _Group:
    __slots__ = ("name", "members", "channel", "ready", "task")

    def __init__(self, name: str):
        self.name = name
        self.members: list = []  # the consumers, in joining order
        self.channel = ""
        self.ready = asyncio.get_running_loop().create_future()
        self.task = None


class OrderFanout:
    def __init__(self, layer):
        self.layer = layer
        self.groups: dict[str, _Group] = {}

    async def join(self, name: str, consumer) -> None:
        """Returns once pushes to the group reach `consumer` (so a snapshot read afterwards
        misses nothing)."""
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = _Group(name)
            try:
                group.channel = await self.layer.new_channel()
                await self.layer.group_add(name, group.channel)
            except BaseException as exc:
                self.groups.pop(name, None)
                group.ready.set_exception(exc)
                group.ready.exception()  # retrieved: joiners waiting get it raised
                raise
            group.task = asyncio.get_running_loop().create_task(self._relay(group))
            group.ready.set_result(None)
        group.members.append(consumer)
        await asyncio.shield(group.ready)

    async def leave(self, name: str, consumer) -> None:
        group = self.groups.get(name)
        if group is None or consumer not in group.members:
            return
        group.members.remove(consumer)
        if group.members or not group.ready.done():
            return
        del self.groups[name]
        if group.task is not None:
            group.task.cancel()  # its receive() unsubscribes the channel (pub/sub layer)
        try:
            await self.layer.group_discard(name, group.channel)
        except Exception:
            logger.exception("tracking: could not leave %s", name)

    async def _relay(self, group: _Group) -> None:
        receive = self.layer.receive
        while True:
            message = await receive(group.channel)
            handler_name = message.get("type", "").replace(".", "_")
            for consumer in tuple(group.members):
                try:
                    await consumer.deliver(handler_name, message)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("tracking: relaying %s to a watcher", handler_name)


def order_fanout() -> OrderFanout:
    loop = asyncio.get_running_loop()
    fanout = _by_loop.get(loop)
    if fanout is None:
        fanout = _by_loop[loop] = OrderFanout(get_channel_layer())
    return fanout
