"""Per-conversation seeds: a sampled completion does not depend on what else is in the batch,
so the endpoint client can batch sampled requests and still cache each as if asked alone."""

import pytest

from stages.lib.models.generation import TransformersGenerator
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
