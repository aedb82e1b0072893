"""The fused query embedding."""

import numpy as np

from stages.reinforced_ir.fusion import TOPIC_PREFIX, fuse


def test_fuse_by_hand():
    q = np.array([[1.0, 2.0], [0.0, 0.0]])
    a = np.array([[3.0, -1.0], [5.0, 5.0]])
    assert np.allclose(fuse(q, a), [[1.4, 1.4], [1.0, 1.0]])      # 0.8 q + 0.2 a
    assert np.allclose(fuse(q, a, query_weight=1.0), q)


def test_topic_prefix_is_the_papers():
    assert TOPIC_PREFIX == "Generate the topic about this passage: "
