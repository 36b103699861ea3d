"""`python -m synth_pipelines.cli`: the `synth` command."""

from __future__ import annotations

from synth_pipelines.cli import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
