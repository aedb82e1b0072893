"""``rag dag``: print a recipe's DAG as text, mermaid or graphviz dot."""

from __future__ import annotations

EXAMPLES = """examples:
  rag dag conf/dynamicrag_demo.yaml
  rag dag conf/dynamicrag_llama3.yaml --format mermaid > dag.mmd   # for mermaid-cli (mmdc)
  rag dag conf/dynamicrag_llama3.yaml --format dot | dot -Tpng > dag.png"""


def add_arguments(p) -> None:
    from orchestrator.cli.common import add_recipe_arguments

    add_recipe_arguments(p, "dag")
    p.add_argument("--format", choices=["text", "mermaid", "dot"], default="text",
                   help="text (default): a line per step; mermaid or dot: a graph")


def render(dag, fmt: str) -> str:
    """The DAG in ``fmt``: one line per step (text), or a mermaid / dot graph."""
    lines = []
    if fmt == "text":
        for name, step in dag.steps.items():
            extra = []
            if step.shards > 1:
                extra.append(f"{step.shards} shards")
            if step.gpus:
                extra.append(f"{step.gpus} GPU/shard")
            ins = ", ".join(f"{k}<-{w}" for k, w in step.inputs.items())
            outs = ", ".join(f"{o}:{t['type']}" for o, t in step.stage.outputs.items())
            lines.append(f"{name} [{step.stage.name}{'; ' + ', '.join(extra) if extra else ''}]"
                         f"  in: {ins or '-'}  out: {outs}")
        for name, path in dag.sources.items():   # None: the recipe leaves the path unset
            lines.append(f"source {name}: {'(no path set)' if path is None else path}")
        return "\n".join(lines)
    if fmt == "mermaid":
        lines.append("flowchart LR")
        for name in dag.sources:
            lines.append(f"  {name}[({name})]")
        for name, step in dag.steps.items():
            label = step.stage.name + (f" x{step.shards}" if step.shards > 1 else "")
            lines.append(f"  {name}[\"{name}<br/>{label}\"]")
            for iname, w in step.inputs.items():
                lines.append(f"  {w.node} -->|{edge_label(dag, w, iname)}| {name}")
        return "\n".join(lines)
    lines.append("digraph ragline {\n  rankdir=LR;")
    for name in dag.sources:
        lines.append(f'  "{name}" [shape=cylinder];')
    for name, step in dag.steps.items():
        label = step.stage.name + (f" x{step.shards}" if step.shards > 1 else "")
        lines.append(f'  "{name}" [shape=box, label="{name}\\n{label}"];')
        for iname, w in step.inputs.items():
            lines.append(f'  "{w.node}" -> "{name}" [label="{edge_label(dag, w, iname)}"];')
    lines.append("}")
    return "\n".join(lines)


def edge_label(dag, wire, input_name: str) -> str:
    """An edge's label: the input it feeds, after the output it reads when its producer has
    several and it is named otherwise (``dpo→items``: ``label`` gives bc, sft and dpo; the input
    name alone hid which).

    >>> from types import SimpleNamespace as NS
    >>> label = NS(stage=NS(outputs={"bc": 0, "sft": 0, "dpo": 0}))
    >>> dag = NS(steps={"label": label, "gen": NS(stage=NS(outputs={"out": 0}))})
    >>> Wire = lambda node, output: NS(node=node, output=output)
    >>> edge_label(dag, Wire("label", "dpo"), "items"), edge_label(dag, Wire("label", "bc"), "bc")
    ('dpo→items', 'bc')
    >>> edge_label(dag, Wire("gen", "out"), "x")
    'x'
    """
    producer = dag.steps.get(wire.node)
    if (wire.output in (None, input_name) or producer is None
            or len(producer.stage.outputs) < 2):
        return input_name
    return f"{wire.output}→{input_name}"


def main(args) -> int:
    import sys

    from orchestrator.cli.common import load, recipe_notes
    from orchestrator.logs import console, escape

    _, members, dags = load(args)
    sys.stdout.write(render(dags[0], args.format) + "\n")
    if len(dags) > 1:   # -m: one DAG is drawn, and the user is told which
        console().print(f"[yellow]note:[/] drawn for member 0 of {len(dags)} "
                        f"({escape(' '.join(members[0].overrides))}); to draw another, give its "
                        "overrides without -m", soft_wrap=True)
    for note in recipe_notes(members):   # on stderr: `--format dot | dot` reads stdout
        console().print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    return 0
