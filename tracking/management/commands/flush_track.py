"""Write the track points that the socket server processes still hold in memory, now.

Servers write their buffered fixes every second or so anyway (tracking.history); run this before
reading a track that must be complete to the last fix (a dispute replay, a purge, a deploy).
Every server process reachable over the channel layer (Redis) flushes and answers.
"""

import asyncio

from channels.layers import get_channel_layer
from django.core.management.base import BaseCommand

from tracking import history


class Command(BaseCommand):
    help = "Write the track points buffered by socket server processes to the database now."

    def add_arguments(self, parser):
        parser.add_argument(
            "--wait", type=float, default=2.0, help="seconds to wait for servers to answer"
        )

    def handle(self, *args, wait: float, **options):
        own = history.flush()
        layer = get_channel_layer()
        replies = asyncio.run(_ask_servers(layer, wait)) if layer is not None else []
        for reply in replies:
            self.stdout.write(f"{reply['process']}: wrote {reply['written']} track point(s)")
        total = own + sum(r["written"] for r in replies)
        if not replies:
            self.stdout.write(
                "No socket server answered (none running, or an in-memory channel layer, where "
                "the server writes its buffer every second by itself)."
            )
        self.stdout.write(self.style.SUCCESS(f"{total} track point(s) written."))


async def _ask_servers(layer, wait: float) -> list[dict]:
    reply_to = await layer.new_channel()
    await layer.group_send(history.control_group(), {"type": "history.flush", "reply_to": reply_to})
    replies = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while (left := deadline - loop.time()) > 0:
        try:
            message = await asyncio.wait_for(layer.receive(reply_to), left)
        except TimeoutError:
            break
        if message.get("type") == "history.flushed":
            replies.append(message)
    return replies
