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
