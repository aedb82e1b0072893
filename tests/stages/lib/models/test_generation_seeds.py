"""Per-conversation seeds: a sampled completion does not depend on what else is in the batch,
so the endpoint client can batch sampled requests and still cache each as if asked alone, and a
stage sharded by rows (seeding each row by its id) samples the same rows on any shard count."""

import pytest

from stages.lib.models.generation import TransformersGenerator, id_seed
from stages.lib.testing.tiny import tiny_causal_lm


@pytest.fixture(scope="module")
def gen(tmp_path_factory, one_torch_thread):
    path = tiny_causal_lm(tmp_path_factory.mktemp("gen") / "lm", ["alpha beta gamma delta"])
    return TransformersGenerator(path)


def test_batched_sampling_with_seeds_equals_each_alone(gen):
    convs = [[{"role": "user", "content": t}] for t in ("alpha", "beta gamma delta alpha", "gamma")]
    seeds = [7, 8, 9]
    batched = gen.generate_ids(convs, max_new_tokens=6, temperature=1.0, n=2, batch_size=8,
                               seeds=seeds)
    alone = [gen.generate_ids([c], max_new_tokens=6, temperature=1.0, n=2, seed=s)[0]
             for c, s in zip(convs, seeds)]
    assert batched == alone
    assert batched[0][0] != batched[0][1] or batched[1][0] != batched[1][1]   # samples differ


def test_chat_with_seeds_gives_a_conversation_its_completions_alone_or_batched(gen):
    """``chat(..., seeds=)``: conversation i's completions depend on ``seeds[i]`` alone, not on
    its position or its neighbours (what a stage sharded by rows needs)."""
    convs = [[{"role": "user", "content": t}] for t in ("alpha", "beta gamma delta alpha", "gamma")]
    seeds = [id_seed(0, f"q{i}") for i in range(3)]
    kw = dict(max_new_tokens=6, temperature=1.0, n=3, top_p=0.9)
    batched = gen.chat(convs, seeds=seeds, batch_size=8, **kw)
    alone = [gen.chat([c], seeds=[s], batch_size=2, **kw)[0] for c, s in zip(convs, seeds)]
    assert batched == alone
    assert gen.chat(convs[::-1], seeds=seeds[::-1], batch_size=3, **kw) == batched[::-1]
    assert gen.chat(convs[1:], seeds=seeds[1:], **kw) == batched[1:]   # shard 2 of a split
    assert any(len(set(c)) > 1 for c in batched)                       # n draws, not copies
    # without seeds a conversation's position decides (the old contract, kept for other callers)
    assert gen.chat(convs[1:], seed=0, **kw) != gen.chat(convs, seed=0, **kw)[1:]
    assert gen.chat(convs, seeds=seeds, max_new_tokens=4) == gen.chat(convs, max_new_tokens=4)
    with pytest.raises(ValueError, match="seeds: 2 given for 3 conversations"):
        gen.chat(convs, seeds=seeds[:2], **kw)


def test_id_seed_is_stable_and_spread():
    assert id_seed(0, "q1") == 5589877330174476308        # hashlib: the same in every process
    assert len({id_seed(s, f"q{i}") for s in range(4) for i in range(100)}) == 400
    assert all(0 <= id_seed(s, "q") < 2 ** 63 for s in (-1, 0, 2 ** 70))
