"""Every command in README.md is run by a test (issue 21 §2): a README command no test runs is a
defect, and this module fails naming it.

README.md's fenced ```bash blocks are parsed into commands, one per logical line (backslash
continuations and a quoted argument spanning lines joined; trailing `# comments` and `&`
dropped; `export X=$(cmd)` and `X=$(cmd)` read as `cmd`; `draft|show` and `owner|admin` expand
to each alternative, `[--select X]` to the command without and with it, and a comment
`# also list, revoke` to those sub-commands of the same group). COVERAGE maps each command, by a
normalised prefix, to the tests that run it; the tests below hold the table to the README and to
the test suite, and run the commands that no other test runs, as a user types them: the `synth`
console script in a subprocess, on its own SYNTH_HOME, and the README's curl requests, parsed
from the README, sent to a live `synth serve`.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.helpers import free_port, stop_process

REPO = Path(__file__).parent.parent
README = REPO / "README.md"
MAKEFILE = REPO / "Makefile"
SYNTH = str(Path(sys.executable).parent / "synth")


@dataclass(frozen=True)
class ByCI:
    """A README command that no test runs, because the CI itself is that command."""

    reason: str


CLI = "tests/test_cli.py"
HERE = "tests/test_readme_commands.py"
DEMO = f"{CLI}::test_demo_fills_every_bucket_through_dagster_runs"
IMAGES = "tests/test_imagesets_cli.py::test_the_readme_image_commands_in_order"
TABULAR = "tests/test_tabular_jobs.py::test_full_flow_over_http_and_the_cli"
SECURITY = "tests/test_persona_cli.py::test_keys_apikeys_and_audit_verify"
HOLDS = "tests/test_check_holds.py::test_a_person_lifts_a_hold_from_the_cli_and_the_lift_is_audited"
SERVED = f"{HERE}::test_synth_serve_answers_on_its_port"
PERSONA_CURLS = f"{HERE}::test_the_persona_curls_create_a_persona_and_upload_its_export"
ROLES = f"{HERE}::test_apikeys_create_an_admin_list_and_revoke"
CELERY = "tests/test_celery_execution.py"

# README command (a normalised prefix: the program, its sub-commands, the options that matter)
# -> the tests that run it (pytest node ids; a parametrised test without its [param]).
COVERAGE: dict[str, tuple[str, ...] | ByCI] = {
    "make demo": (DEMO, f"{HERE}::test_make_demo_is_synth_demo_on_the_local_instance"),
    "make test": ByCI(
        ".ci/run runs `make test`: CI is this command "
        "(test_make_test_is_the_test_suite_and_what_ci_runs holds the recipe to it)"
    ),
    "dagster job backfill": (
        "tests/test_dagster_cli.py::test_backfill_command_in_the_readme_runs_against_the_workspace",
    ),
    "synth serve": (SERVED,),
    "synth serve --workers": (f"{HERE}::test_synth_serve_workers_2_starts_two_and_answers",),
    "synth request --wait --out": (f"{CLI}::test_request_waits_downloads_and_verifies",),
    "synth tabular draft": (TABULAR,),
    "synth tabular show": (TABULAR,),
    "synth tabular show --json": (TABULAR,),
    "synth tabular edit": (TABULAR,),
    "synth tabular confirm": (TABULAR,),
    "synth tabular confirm --rows": (TABULAR,),
    "synth tabular status": (TABULAR,),
    "synth tabular status --out": (TABULAR,),
    "synth tabular fit --rows": (
        "tests/test_fitted_jobs.py::test_the_cli_fits_a_sample_and_shows_the_inferred_schema",
    ),
    "synth tabular fit-tables --key --rows": (
        "tests/test_fitted_multitable_jobs.py::"
        "test_samples_by_path_need_an_admin_and_the_cli_creates_the_job",
    ),
    "synth tabular fit-tables --key --rows --out": (
        "tests/test_fitted_jobs.py::"
        "test_tables_joined_by_keys_are_fitted_and_written_with_every_key_intact",
    ),
    "synth keys generate": (SECURITY, SERVED),
    "synth keys rotate": (SECURITY,),
    "export SYNTH_PERSONA_BASE_MODEL=": (
        f"{HERE}::test_base_models_are_local_directories",
        "tests/test_personas_flow.py::test_persona_end_to_end_and_revocation_leaves_no_text",
    ),
    "synth apikeys create --role owner": (SECURITY, PERSONA_CURLS),
    "synth apikeys create --role admin": (ROLES,),
    "synth apikeys list": (SECURITY, ROLES),
    "synth apikeys revoke": (SECURITY, ROLES),
    "curl POST /personas": (PERSONA_CURLS,),
    "curl POST /personas/$ID/sources": (PERSONA_CURLS,),
    "export SYNTH_FLUX_BASE_MODEL=": (
        f"{HERE}::test_base_models_are_local_directories",
        "tests/test_flux_flow.py::test_subject_to_lora_to_generation_and_revocation",
    ),
    "curl POST /subjects": (f"{HERE}::test_the_subject_curl_creates_a_subject",),
    "synth flux generate --n --out": (
        "tests/test_flux_flow.py::test_subject_to_lora_to_generation_and_revocation",
    ),
    "synth inventory": (f"{HERE}::test_synth_inventory_prints_levels_against_targets", DEMO),
    "synth demo --per-bucket": (DEMO,),
    "synth checks run": (f"{HERE}::test_synth_checks_run_runs_every_check",),
    "synth checks run --select": (
        f"{HERE}::test_synth_checks_run_select_runs_one_assets_checks",
        f"{CLI}::test_checks_run_prints_results_and_fails_on_error_severity",
    ),
    "synth checks holds": (HOLDS,),
    "synth checks lift --reason": (HOLDS,),
    "synth audit verify": (SECURITY, HOLDS),
    "synth db upgrade": (f"{HERE}::test_synth_db_upgrade_migrates_to_the_head_revision",),
    "synth images profile": (IMAGES,),
    "synth images profile --out": (IMAGES,),
    "synth images generate": (IMAGES,),
    "synth images generate --count --backend --out": (IMAGES,),
    "synth images validate": (IMAGES,),
    "synth images validate --out": (IMAGES,),
    "synth images export": (IMAGES,),
    "synth images export --format --to": (IMAGES,),
    "synth images register": (IMAGES,),
    "synth images register --count": (IMAGES,),
    "synth images status": (IMAGES,),
    "curl POST /imagesets": (f"{HERE}::test_the_imagesets_curl_registers_a_set",),
    "make workers": (
        f"{CELERY}::test_make_workers_starts_default_and_gpu_workers_and_ctrl_c_stops_them",
    ),
    "export SYNTH_CELERY_BROKER_URL=": (
        f"{CELERY}::test_the_broker_down_at_submit_fails_the_run_naming_it_and_records_nothing",
        f"{CELERY}::test_a_refill_of_all_ten_buckets_runs_on_the_celery_workers",
    ),
    "export SYNTH_CELERY_BACKEND_URL=": (
        f"{CELERY}::test_a_refill_of_all_ten_buckets_runs_on_the_celery_workers",
    ),
    "python benchmarks/contact_sheet.py --out": (
        f"{HERE}::test_the_contact_sheet_command_writes_the_readmes_faces_sheet",
    ),
}


# -- the README as commands ----------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One README command: `text` the line as the README shows it (comment and `&` dropped,
    `$(cmd)` unwrapped), `argv` this expansion of it, `tokens` normalised for matching, `line`
    its line number in README.md."""

    text: str
    argv: tuple[str, ...]
    tokens: tuple[str, ...]
    line: int

    @property
    def key(self) -> str:
        return " ".join(self.tokens)


def bash_blocks(markdown: str) -> Iterator[tuple[int, list[str]]]:
    """(line number of the block's first line, its lines) for every ```bash block."""
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i + 1
            end = start
            while lines[end].strip() != "```":
                end += 1
            yield start + 1, lines[start:end]
            i = end
        i += 1


def split_comment(line: str) -> tuple[str, str]:
    """(the code, the comment) of a shell line: a `#` outside quotes, at the start or after a
    blank, starts the comment."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def logical_lines(first: int, lines: list[str]) -> Iterator[tuple[int, str, str]]:
    """(line number, code, comment) per logical line: backslash continuations joined, and a
    quoted argument that spans lines (curl's `-d '{...}'`) kept whole."""
    buffer, start = "", first
    for number, line in enumerate(lines, first):
        if not buffer:
            start = number
        code, comment = split_comment(line)
        if code.endswith("\\"):
            buffer += code[:-1] + " "
            continue
        candidate = buffer + line
        code, comment = split_comment(candidate)
        try:
            shlex.split(code)
        except ValueError:  # a quote still open: the argument goes on on the next line
            buffer = candidate + "\n"
            continue
        buffer = ""
        if code.strip():
            yield start, code.strip(), comment


ASSIGNED_COMMAND = re.compile(r"^(?:export\s+)?[A-Za-z_]\w*=\$\((?P<cmd>.+)\)$", re.S)
ALTERNATIVES = re.compile(r"^[\w:*./=-]+(?:\|[\w:*./=-]+)+$")
ALSO = re.compile(r"^also ([\w-]+(?:, [\w-]+)*)$")


def expansions(tokens: list[str], comment: str) -> list[list[str]]:
    """The commands one README line stands for: `a|b` alternatives, `[optional]` parts, and the
    sub-commands an `# also x, y` comment names."""
    optional: list[tuple[int, int]] = []
    i = 0
    while i < len(tokens):
        if tokens[i].startswith("[") and " " not in tokens[i]:
            j = i
            while not tokens[j].endswith("]"):
                j += 1
            optional.append((i, j))
            i = j
        i += 1
    variants = [tokens]
    for i, j in reversed(optional):
        inner = [t.strip("[]") for t in tokens[i : j + 1]]
        variants = [
            v
            for base in variants
            for v in (base[:i] + base[j + 1 :], base[:i] + inner + base[j + 1 :])
        ]
    choices = [
        [
            t.split("|") if ALTERNATIVES.match(t) else [t]
            for t in variant  # a quoted "a|b" has blanks or quotes; only bare words expand
        ]
        for variant in variants
    ]
    commands = [list(p) for choice in choices for p in product(*choice)]
    also = ALSO.match(comment)
    if also:
        commands += [[*tokens[:2], word] for word in also.group(1).split(", ")]
    return commands


def normalise(tokens: list[str]) -> tuple[str, ...]:
    """Tokens for matching: the program by its name (`.venv/bin/dagster` is `dagster`), no
    redirection, no `…`; a curl request as `curl METHOD /path`."""
    out: list[str] = [Path(tokens[0]).name]
    rest = iter(tokens[1:])
    for token in rest:
        if token == ">":
            next(rest, None)
        elif token != "…" and not token.startswith(">"):
            out.append(token)
    if out[0] == "curl":
        request = CurlRequest.parse(out)
        return ("curl", request.method, urlsplit(request.url).path)
    return tuple(out)


def readme_commands(markdown: str | None = None) -> list[Command]:
    """Every command in the README's ```bash blocks, in order."""
    markdown = README.read_text() if markdown is None else markdown
    commands = []
    for first, lines in bash_blocks(markdown):
        for line, code, comment in logical_lines(first, lines):
            code = code.removesuffix("&").rstrip() if not code.endswith("&&") else code
            assigned = ASSIGNED_COMMAND.match(code)
            if assigned:
                code = assigned.group("cmd")
            for tokens in expansions(shlex.split(code), comment):
                commands.append(Command(code, tuple(tokens), normalise(tokens), line))
    return commands


def matches(key: str, tokens: tuple[str, ...]) -> bool:
    """Whether COVERAGE's `key` names the command: the same program and sub-command, and the
    key's other tokens in the command, in order (`NAME=` stands for any `NAME=value`)."""
    wanted = key.split()

    def same(w: str, t: str) -> bool:
        return t == w or (w.endswith("=") and t.startswith(w))

    if len(tokens) < 2 or not all(map(same, wanted[:2], tokens[:2])):
        return False
    remaining = iter(tokens)
    return all(any(same(w, t) for t in remaining) for w in wanted)


def coverage_for(command: Command) -> str | None:
    """The most specific COVERAGE key that names `command`."""
    keys = [key for key in COVERAGE if matches(key, command.tokens)]
    return max(keys, key=lambda k: len(k.split()), default=None)


@dataclass(frozen=True)
class CurlRequest:
    """A curl command line as the request it sends (the options the README uses)."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    data: str | None
    form: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, tokens: list[str] | tuple[str, ...]) -> CurlRequest:
        method, url, headers, data, form = None, None, [], None, []
        args = iter(tokens[1:])
        for token in args:
            if token in ("-H", "--header"):
                name, _, value = next(args).partition(":")
                headers.append((name.strip(), value.strip()))
            elif token in ("-d", "--data", "--data-raw"):
                data = next(args)
            elif token in ("-F", "--form"):
                name, _, value = next(args).partition("=")
                form.append((name, value))
            elif token in ("-X", "--request"):
                method = next(args)
            elif token.startswith("-"):
                raise ValueError(f"curl option {token} is not one this parser knows")
            else:
                url = token if "://" in token else f"http://{token}"
        if url is None:
            raise ValueError(f"no URL in {' '.join(tokens)}")
        method = method or ("POST" if data is not None or form else "GET")
        return cls(method, url, tuple(headers), data, tuple(form))

    def send(self, base_url: str, cwd: Path) -> httpx.Response:
        """Send it to `base_url` (instead of the README's host), `@file` read from `cwd`."""
        parts = urlsplit(self.url)
        url = base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        fields: dict[str, str] = {}
        files = []
        for name, value in self.form:
            if value.startswith("@"):
                path = cwd / value[1:]
                files.append((name, (path.name, path.read_bytes())))
            else:
                fields[name] = value
        content = self.data.encode() if self.data is not None else None
        return httpx.request(
            self.method,
            url,
            headers=dict(self.headers),
            content=content,
            data=fields or None,
            files=files or None,
            timeout=30,
        )


def readme_command(key: str) -> Command:
    """The README's command that COVERAGE's `key` covers (the first, if it is there twice)."""
    found = [c for c in readme_commands() if coverage_for(c) == key]
    assert found, f"README.md has no command {key!r}"
    return found[0]


def substitute(text: str, values: dict[str, str]) -> str:
    """`$NAME` placeholders replaced by real values; one left over is an error."""
    replaced = re.sub(r"\$(\w+)", lambda m: values.get(m.group(1), m.group(0)), text)
    assert "$" not in replaced, f"a placeholder in {text!r} has no value: {replaced!r}"
    return replaced


# -- the table against the README and the suite --------------------------------------------------


def test_the_parser_reads_the_shell_the_readme_writes() -> None:
    markdown = "\n".join(
        [
            "text",
            "```bash",
            "synth serve &                    # the API",
            "export SYNTH_MASTER_KEY=$(synth keys generate)   # only from the environment",
            "TOKEN=$(synth apikeys create ada --role owner|admin)  # also list, revoke",
            "curl -H 'content-type: application/json' localhost:8000/personas -d '{",
            '  "a": 1,',
            '  "b": "# not a comment"}\'',
            "curl localhost:8000/subjects \\",
            "     -F photos=@a.jpg … # or a zip",
            "synth tabular draft|show JOB --json > schema.json",
            "synth checks run [--select face_inventory:*]",
            'synth flux generate S "a photo of [trigger]|x" --n 2',
            "```",
            "```yaml",
            "not: shell",
            "```",
        ]
    )
    commands = readme_commands(markdown)
    assert [c.key for c in commands] == [
        "synth serve",
        "synth keys generate",
        "synth apikeys create ada --role owner",
        "synth apikeys create ada --role admin",
        "synth apikeys list",
        "synth apikeys revoke",
        "curl POST /personas",
        "curl POST /subjects",
        "synth tabular draft JOB --json",
        "synth tabular show JOB --json",
        "synth checks run",
        "synth checks run --select face_inventory:*",
        "synth flux generate S a photo of [trigger]|x --n 2",
    ]
    assert [c.line for c in commands][6:8] == [6, 9]
    body = CurlRequest.parse(shlex.split(commands[6].text)).data
    assert json.loads(body) == {"a": 1, "b": "# not a comment"}


def test_every_readme_command_is_run_by_a_test() -> None:
    commands = readme_commands()
    assert len(commands) > 30 and {"curl POST /personas", "make demo"} <= {
        coverage_for(c) for c in commands
    }
    uncovered = [
        f"README.md:{c.line}: {shlex.join(c.argv)}" for c in commands if coverage_for(c) is None
    ]
    assert not uncovered, (
        "README commands that no test runs (write one and name it in COVERAGE in "
        f"{HERE}):\n  " + "\n  ".join(uncovered)
    )


def test_every_coverage_entry_is_a_readme_command() -> None:
    used = {coverage_for(c) for c in readme_commands()}
    stale = sorted(set(COVERAGE) - used)
    assert not stale, f"COVERAGE names commands README.md does not show: {stale}"


def test_every_covering_test_exists() -> None:
    missing = []
    for key, tests in COVERAGE.items():
        if isinstance(tests, ByCI):
            assert tests.reason, key
            continue
        assert tests, f"COVERAGE[{key!r}] names no test"
        for node in tests:
            path, _, name = node.partition("::")
            module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
            function = getattr(module, name.split("[")[0], None)
            if not (callable(function) and name.startswith("test_")):
                missing.append(f"{key}: {node}")
    assert not missing, "COVERAGE names tests that do not exist:\n  " + "\n  ".join(missing)


def make_recipe(target: str) -> tuple[list[str], list[str]]:
    """(prerequisites, recipe lines without comments) of a Makefile target."""
    lines = MAKEFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"{target}:"):
            recipe = []
            for step in lines[i + 1 :]:
                if not step.startswith("\t"):
                    break
                if not step.strip().startswith("#"):
                    recipe.append(step.strip())
            return line.partition(":")[2].split(), recipe
    raise AssertionError(f"the Makefile has no target {target!r}")


def test_make_demo_is_synth_demo_on_the_local_instance() -> None:
    """`make demo` is `synth demo` (what the demo test invokes through the same Typer app) once
    the venv and the local instance's dagster.yaml are there."""
    prerequisites, recipe = make_recipe("demo")
    assert recipe == ["$(BIN)/synth demo"]
    assert prerequisites == ["install", "$(DAGSTER_HOME)/dagster.yaml"]
    assert re.search(r"^BIN := \$\(VENV\)/bin$", MAKEFILE.read_text(), re.M)
    assert 'synth = "synth_pipelines.cli:app"' in (REPO / "pyproject.toml").read_text()


def test_make_test_is_the_test_suite_and_what_ci_runs() -> None:
    _, recipe = make_recipe("test")
    assert recipe == ["$(BIN)/pytest $(PYTEST_ARGS)"]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert "make test" in [line.strip() for line in ci]


# -- the commands no other test runs -------------------------------------------------------------


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment a user's shell would have: no SYNTH_* of the test run's, this home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTH_")}
    env.update(
        SYNTH_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        HF_HUB_OFFLINE="1",
        PYTHONIOENCODING="utf-8",
        COLUMNS="200",  # rich's tables unwrapped
        **extra,
    )
    return env


def synth(command: str | tuple[str, ...], env: dict[str, str], cwd: Path):
    """A README `synth ...` command (a line, or a Command's argv), run through the installed
    console script; it must succeed."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    assert argv[0] == "synth", command
    result = subprocess.run(
        [SYNTH, *argv[1:]], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result


@dataclass
class Served:
    url: str
    env: dict[str, str]
    token: str
    cwd: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    """The persona block's first lines as written: a master key from `synth keys generate`, an
    owner's key from `synth apikeys create`, then `synth serve` (on a free port, not 8000)."""
    home = tmp_path_factory.mktemp("readme_home")
    cwd = tmp_path_factory.mktemp("readme_cwd")
    env = clean_env(home, SYNTH_PERSONA_BASE_MODEL="tiny-test")
    key = readme_command("synth keys generate")
    env["SYNTH_MASTER_KEY"] = synth(key.argv, env, cwd).stdout.strip()
    token = synth(readme_command("synth apikeys create --role owner").argv, env, cwd)
    serve = readme_command("synth serve")
    port = free_port()
    log = (home / "serve.log").open("w")  # a file, not a pipe nobody drains
    process = subprocess.Popen(
        [SYNTH, *serve.argv[1:], "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"synth serve exited: {(home / 'serve.log').read_text()}"
            try:
                if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "synth serve did not answer within 30 s"
            time.sleep(0.1)
        yield Served(url, env, token.stdout.strip(), cwd)
    finally:
        stop_process(process)
        log.close()


def test_synth_serve_answers_on_its_port(served: Served) -> None:
    docs = httpx.get(f"{served.url}/docs", timeout=10)
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    schema = httpx.get(f"{served.url}/openapi.json", timeout=10).json()
    assert {"/datasets", "/personas", "/subjects", "/tabular/jobs"} <= set(schema["paths"])
    # the admin endpoints are off without SYNTH_ADMIN_TOKEN, as the README says
    assert httpx.get(f"{served.url}/admin/metrics", timeout=10).status_code == 503


def test_synth_serve_workers_2_starts_two_and_answers(tmp_path) -> None:
    """`synth serve --workers 2` as the README writes it: two uvicorn worker processes, and
    the API answers through them (a dataset requested, then its status read many times)."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    serve = readme_command("synth serve --workers")
    port = free_port()
    log_path = home.parent / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [SYNTH, *serve.argv[1:], "--port", str(port)],
            env=clean_env(home),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while log_path.read_text().count("Application startup complete") < 2:
                assert process.poll() is None, f"synth serve exited: {log_path.read_text()}"
                assert time.monotonic() < deadline, f"not 2 workers in 60 s: {log_path.read_text()}"
                time.sleep(0.1)
            created = httpx.post(f"{url}/datasets", json={"buckets": {"female/adult": 2}})
            assert created.status_code == 202, created.text
            request_id = created.json()["id"]
            for _ in range(20):  # new connections: the kernel spreads them over both workers
                status = httpx.get(f"{url}/datasets/{request_id}", timeout=10)
                assert status.status_code == 200 and status.json()["status"] == "pending"
        finally:
            stop_process(process, grace=20)
    workers = set(re.findall(r"Started server process \[(\d+)\]", log_path.read_text()))
    assert len(workers) == 2, log_path.read_text()


def create_readme_persona(served: Served) -> httpx.Response:
    """The README's `curl ... /personas -d '{...}'`, its JSON exactly as written."""
    command = readme_command("curl POST /personas")
    request = CurlRequest.parse(shlex.split(substitute(command.text, {"TOKEN": served.token})))
    consent = json.loads(request.data)["consent"]
    if "expires_at" in consent:  # an example consent that has lapsed is a 403, not a persona
        assert consent["expires_at"] > time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), (
            f"README.md:{command.line}: the example consent has expired; move expires_at on"
        )
    return request.send(served.url, served.cwd)


def test_the_persona_curls_create_a_persona_and_upload_its_export(served: Served) -> None:
    from synth_pipelines.core.persona.demo_export import demo_whatsapp_export

    created = create_readme_persona(served)
    assert created.status_code == 201, created.text
    persona = created.json()
    assert persona["display_name"] == "Ada Quill"
    assert persona["consent"]["sources"] == ["whatsapp", "mbox"]

    upload = readme_command("curl POST /personas/$ID/sources")
    request = CurlRequest.parse(
        shlex.split(substitute(upload.text, {"TOKEN": served.token, "ID": persona["id"]}))
    )
    (export,) = [value[1:] for name, value in request.form if name == "file"]
    (served.cwd / export).write_bytes(demo_whatsapp_export(messages=60, seed=1))
    uploaded = request.send(served.url, served.cwd)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["format"] == "whatsapp"


def test_apikeys_create_an_admin_list_and_revoke(served: Served) -> None:
    create = readme_command("synth apikeys create --role admin").argv
    assert create == ("synth", "apikeys", "create", "USER", "--role", "admin")
    admin = synth(
        ("synth", "apikeys", "create", "grace", "--role", "admin"), served.env, served.cwd
    )
    admin = admin.stdout.strip()
    persona = create_readme_persona(served).json()
    seen = httpx.get(
        f"{served.url}/personas/{persona['id']}",
        headers={"Authorization": f"Bearer {admin}"},
        timeout=10,
    )
    assert seen.status_code == 200, seen.text  # admins see every persona

    listed = synth(readme_command("synth apikeys list").argv, served.env, served.cwd).stdout
    (row,) = [r for r in listed.splitlines() if " grace " in r]
    assert "admin" in row and admin.split("_")[-1][:10] not in listed
    key_id = row.strip("│ ").split()[0]
    assert readme_command("synth apikeys revoke").argv == ("synth", "apikeys", "revoke")
    revoked = synth(("synth", "apikeys", "revoke", key_id), served.env, served.cwd)
    assert f"revoked {key_id}" in revoked.stdout
    refused = httpx.get(
        f"{served.url}/personas/{persona['id']}",
        headers={"Authorization": f"Bearer {admin}"},
        timeout=10,
    )
    assert refused.status_code == 401


def test_the_subject_curl_creates_a_subject(served: Served) -> None:
    from synth_pipelines.core.flux.demo_photos import subject_photos

    command = readme_command("curl POST /subjects")
    # `…` stands for more photos (4-50): the README's two, then the other three
    photos = list(subject_photos().values())
    extra = " ".join(f"-F photos=@ada{i}.jpg" for i in range(3, len(photos) + 1))
    text = substitute(command.text.replace("…", extra), {"TOKEN": served.token})
    request = CurlRequest.parse(shlex.split(text))
    assert [v for n, v in request.form if n == "photos"][:2] == ["@ada1.jpg", "@ada2.jpg"]
    for i, data in enumerate(photos, 1):
        (served.cwd / f"ada{i}.jpg").write_bytes(data)
    created = request.send(served.url, served.cwd)
    assert created.status_code == 202, created.text
    subject = created.json()
    assert (subject["trigger"], subject["status"], subject["uploads"]) == ("sks_ada", "pending", 5)


def test_the_imagesets_curl_registers_a_set(served: Served) -> None:
    command = readme_command("curl POST /imagesets")
    request = CurlRequest.parse(shlex.split(substitute(command.text, {"TOKEN": served.token})))
    created = request.send(served.url, served.cwd)
    assert created.status_code == 202, created.text
    image_set = created.json()
    assert (image_set["source_kind"], image_set["status"]) == ("s3", "pending")
    assert image_set["params"]["count"] == json.loads(request.data)["count"]


@pytest.fixture(scope="module")
def stocked(tmp_path_factory) -> tuple[dict[str, str], Path]:
    """A home whose inventory holds two faces in male/teen, put there by a real refill run."""
    import dagster as dg

    from synth_pipelines.core.faces.buckets import Bucket
    from synth_pipelines.definitions import build_definitions
    from synth_pipelines.settings import Settings
    from tests.helpers import refill

    home = tmp_path_factory.mktemp("stocked_home")
    env = clean_env(home, SYNTH_FACE_SIZE="64")
    with pytest.MonkeyPatch.context() as patch:
        for name in [k for k in os.environ if k.startswith("SYNTH_")]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        settings = Settings.from_env()
        with dg.instance_for_test() as instance:
            refill(build_definitions(settings), instance, Bucket("male", "teen"), 2)
    return env, home


def test_synth_inventory_prints_levels_against_targets(stocked) -> None:
    env, home = stocked
    shown = synth(readme_command("synth inventory").argv, env, home).stdout
    rows = {line.split("│")[1].strip(): line for line in shown.splitlines() if "│" in line}
    assert rows["male/teen"].split("│")[2].strip() == "2"  # available
    assert rows["female/adult"].split("│")[2].strip() == "0"
    assert "total" in rows and "1000" in rows["total"]  # ten buckets of SYNTH_TARGET_PER_BUCKET


def test_synth_checks_run_runs_every_check(stocked) -> None:
    env, home = stocked
    command = readme_command("synth checks run")
    assert command.argv == ("synth", "checks", "run")
    result = synth(command.argv, env, home)
    flat = " ".join(result.stdout.split())
    for asset in ("face_inventory", "dataset_package", "tabular_dataset"):
        assert asset in flat
    assert re.search(r"\d+ passed, 0 failed, \d+ warned, \d+ skipped, 0 did not run", flat), flat


def test_synth_checks_run_select_runs_one_assets_checks(stocked) -> None:
    env, home = stocked
    command = readme_command("synth checks run --select")
    assert command.argv == ("synth", "checks", "run", "--select", "face_inventory:*")
    result = synth(command.argv, env, home)
    table = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assets = {line.split("│")[1].strip() for line in table} - {""}
    assert assets == {"face_inventory"}, result.stdout
    assert "near_duplicates" in result.stdout and "0 failed" in result.stdout


def test_synth_db_upgrade_migrates_to_the_head_revision(tmp_path) -> None:
    from synth_pipelines.core.storage.database import FactoryDatabase

    env = clean_env(tmp_path)
    db = FactoryDatabase(f"sqlite:///{tmp_path / 'factory.db'}")
    db.upgrade("0007_check_names")  # a factory DB one migration behind
    assert db.current_revision() == "0007_check_names"
    upgraded = synth(readme_command("synth db upgrade").argv, env, tmp_path).stdout
    head = db.head_revision()
    assert head != "0007_check_names" and f"at revision {head}" in upgraded
    assert db.current_revision() == head
    again = synth(("synth", "db", "upgrade"), env, tmp_path).stdout
    assert f"at revision {head}" in again
    db.dispose()


def test_the_contact_sheet_command_writes_the_readmes_faces_sheet(tmp_path) -> None:
    """`.venv/bin/python benchmarks/contact_sheet.py --out docs/faces_contact_sheet.png`, into a
    temporary path: a 10 x 4 sheet of 96-pixel tiles, small enough for the README, the same size
    as the committed one, and the same bytes when run again."""
    from PIL import Image

    argv = list(readme_command("python benchmarks/contact_sheet.py --out").argv)
    out = argv.index("--out") + 1
    committed = REPO / argv[out]
    sheets = []
    for name in ("sheet.png", "again.png"):
        argv[out] = str(tmp_path / name)
        result = subprocess.run(
            [sys.executable, *argv[1:]], cwd=REPO, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr
        sheets.append(Path(argv[out]).read_bytes())
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.size == (10 * 98, 4 * (98 + 14))
    assert len(sheets[0]) < 300_000 and sheets[0] == sheets[1]
    with Image.open(committed) as readme_sheet:
        assert readme_sheet.size == (10 * 98, 4 * (98 + 14))
    assert committed.stat().st_size < 300_000


def test_base_models_are_local_directories(tmp_path, monkeypatch) -> None:
    """`export SYNTH_PERSONA_BASE_MODEL=/models/...` and `SYNTH_FLUX_BASE_MODEL=/models/...`: a
    local model directory (here the tiny test models, saved where the README's would be) is
    what training and serving load; a directory with no model names the variable."""
    from transformers import AutoModelForCausalLM

    from synth_pipelines.core.errors import MissingCheckpointError
    from synth_pipelines.core.flux.pipeline import resolve_flux_model
    from synth_pipelines.core.flux.tiny_pipeline import build_tiny_flux_pipeline
    from synth_pipelines.core.persona.adapter_store import resolve_base_model
    from synth_pipelines.core.persona.tiny_model import build_tiny_causal_lm
    from synth_pipelines.settings import Settings

    models = tmp_path / "models"
    exports = {
        c.tokens[1].partition("=")[0]: c.tokens[1].partition("=")[2]
        for c in readme_commands()
        if c.tokens[0] == "export"
    }
    llm = Path(exports["SYNTH_PERSONA_BASE_MODEL"])
    flux = Path(exports["SYNTH_FLUX_BASE_MODEL"])
    assert llm.parent == flux.parent == Path("/models")
    build_tiny_causal_lm(models / llm.name, pretrain_steps=0)
    build_tiny_flux_pipeline(models / flux.name)
    for key in [k for k in os.environ if k.startswith("SYNTH_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SYNTH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SYNTH_PERSONA_BASE_MODEL", str(models / llm.name))
    monkeypatch.setenv("SYNTH_FLUX_BASE_MODEL", str(models / flux.name))
    settings = Settings.from_env()
    persona_model = resolve_base_model(settings.personas.base_model, settings.home)
    assert persona_model == models / llm.name
    assert AutoModelForCausalLM.from_pretrained(persona_model).config.model_type == "gpt2"
    assert resolve_flux_model(settings.flux.base_model, settings.home) == models / flux.name
    with pytest.raises(MissingCheckpointError, match=r"SYNTH_PERSONA_BASE_MODEL=.*config\.json"):
        resolve_base_model(str(tmp_path / "empty"), settings.home)
    with pytest.raises(MissingCheckpointError, match=r"SYNTH_FLUX_BASE_MODEL=.*model_index\.json"):
        resolve_flux_model(str(tmp_path / "empty"), settings.home)
