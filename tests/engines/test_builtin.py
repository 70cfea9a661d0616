from domain.engine import EngineRequest, Finish, ReasoningDelta, RefusalDelta, TextDelta
from worker.engines.builtin import BuiltinEngine


async def _run(**fields) -> list:
    request = EngineRequest(model="m", messages=[{"role": "user", "content": "a b c d"}], **fields)
    return [chunk async for chunk in BuiltinEngine().stream(request)]


async def test_echoes_word_by_word():
    chunks = await _run()
    assert [c.text for c in chunks if isinstance(c, TextDelta)] == ["a", " b", " c", " d"]
    assert chunks[-1] == Finish("stop", input_tokens=4, output_tokens=4)


async def test_honours_max_tokens_and_reasoning():
    chunks = await _run(max_tokens=3, reasoning_effort="low")
    assert all(isinstance(c, ReasoningDelta) for c in chunks[:-1])
    assert chunks[-1].reason == "length" and chunks[-1].output_tokens == 3


async def test_continues_a_partial_reply():
    chunks = await _run(assistant_prefix="a b")
    assert [c.text for c in chunks if isinstance(c, TextDelta)] == [" c", " d"]


async def test_refusal_prefix():
    request = EngineRequest(model="m", messages=[{"role": "user", "content": "refuse: no way"}])
    chunks = [c async for c in BuiltinEngine().stream(request)]
    assert [c.text for c in chunks if isinstance(c, RefusalDelta)] == ["no", " way"]
    assert not any(isinstance(c, TextDelta) for c in chunks)


async def test_a_huge_prompt_is_planned_without_holding_the_loop():
    """Splitting megabytes into words runs in a thread, a slice at a time: other coroutines
    get turns before the first chunk arrives, and the words are exactly str.split's."""
    import asyncio

    text = " ".join(f"w{i}" for i in range(600_000))
    turns = 0
    planning = True

    async def ticker() -> None:
        nonlocal turns
        while planning:
            turns += 1
            await asyncio.sleep(0)

    running = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = turns
    stream = BuiltinEngine().stream(EngineRequest(
        model="m", messages=[{"role": "user", "content": text}], max_tokens=3))
    first = await stream.__anext__()
    during = turns - before
    rest = [chunk async for chunk in stream]
    planning = False
    await running
    assert during > 1
    assert [first.text, rest[0].text, rest[1].text] == ["w0", " w1", " w2"]
    assert isinstance(rest[-1], Finish) and rest[-1].input_tokens == 600_000
