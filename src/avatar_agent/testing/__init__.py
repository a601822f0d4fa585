"""Tools for testing a deployment from the customer's side.

`CustomerClient` (`avatar_agent.testing.client`) is a headless customer: a real
WebRTC peer (aiortc) that joins a call the way the web page does, sends a media
file as its camera and microphone, keeps the avatar's data-channel messages and
counts the frames it receives. Point it at any running server::

    import asyncio

    import aiohttp

    from avatar_agent.testing import CustomerClient

    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            client = CustomerClient("http://127.0.0.1:8080", media=None, consent=False)
            try:
                await client.connect(http)
                spoke = await client.wait_for(lambda: client.rx.speech("end"), within=20)
                assert spoke, "the avatar never finished its greeting"
                await client.hangup(http)
            finally:
                await client.close()

    asyncio.run(main())

`avatar_agent.testing.measure` records the received media in memory and analyses
it (mouth opening, audio envelope, silences); `avatar_agent.testing.measure_call`
uses both to measure lip-sync, first audio and barge-in of a live call.
"""

from avatar_agent.testing.client import CustomerClient, Received

__all__ = ["CustomerClient", "Received"]
