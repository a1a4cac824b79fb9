"""The README and docs/ point at things that exist: links, anchors, file paths, scripts and their options."""

import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

# one xdist worker for the whole module: each script's --help (a Python start) is then run once
pytestmark = pytest.mark.xdist_group("docs")

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
README_MAX_LINES = 300

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# a code span; one that cites the original code bases (fidelity.md: "recipe `local/x.py`") is not ours
CODE_SPAN = re.compile(r"(?<!recipe )(?<!DGMix )`([^`\n]+)`")
# a repository path named in running text: under one of the project's folders (scripts' own
# sub-folders are named as scripts/ names them), no placeholders or globs
REPO_PATH = re.compile(r"^(?:scripts|asd_tools|tools|tests|docs|\.ci|conf|local|utils)/[\w.\-/]*[\w]$")
PLACEHOLDER = re.compile(r"[<>*{}\[\]|]|\.\.\.|…")
COMMAND = re.compile(
    r"(?:^|[;&|]\s*|\s)(?P<cmd>\./[\w.]+\.sh|local/[\w.]+\.(?:sh|py)|tools/[\w.]+\.sh|python -m asd_tools\.bin\.\w+)"
)
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9_]*)")


def prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def bash_blocks(text: str) -> list:
    """The lines of every ```bash block, continuation lines joined."""
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)
    return [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]


def slug(header: str) -> str:
    """GitHub's anchor of a Markdown header."""
    text = re.sub(r"[^\w\- ]", "", header.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set:
    return {slug(h) for h in re.findall(r"^#+ (.+)$", prose(path.read_text()), flags=re.M)}


def doc_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move details to docs/"


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_every_link_and_anchor_exists(doc):
    missing = []
    for target in LINK.findall(prose(doc.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue  # a web address: not checked (no network here)
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        if not resolved.exists():
            missing.append(f"{target} (no file {resolved})")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            missing.append(f"{target} (no header with anchor #{anchor} in {resolved.name})")
    assert not missing, f"{doc_id(doc)}: broken links: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_every_file_path_named_exists(doc):
    named = {m for m in CODE_SPAN.findall(prose(doc.read_text())) if REPO_PATH.match(m) and not PLACEHOLDER.search(m)}
    missing = [p for p in sorted(named) if not ((ROOT / p).exists() or (SCRIPTS / p).exists())]
    assert not missing, f"{doc_id(doc)} names files that do not exist: {missing}"


@functools.cache
def help_text(command: str) -> str:
    """What ``command --help`` prints (run from scripts/, as the docs run it)."""
    if command.startswith("python -m "):
        argv = [sys.executable, "-m", command.split()[-1], "--help"]
    elif command.endswith(".py"):
        argv = [sys.executable, command, "--help"]
    else:
        argv = [str(SCRIPTS / command) if not command.startswith("tools/") else str(ROOT / command), "--help"]
    result = subprocess.run(argv, cwd=SCRIPTS, capture_output=True, text=True, timeout=120)
    return result.stdout + result.stderr


def command_options(line: str) -> list:
    """(command, its options) for every recipe command on one line of a bash block."""
    found = []
    code = line.split(" # ")[0]
    sourced = (".", "source")  # ". ./path.sh" reads a file into the shell: not a command with options
    matches = [m for m in COMMAND.finditer(code) if not code[: m.start("cmd")].rstrip().endswith(sourced)]
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(code)
        found.append((match["cmd"], OPTION.findall(code[match.end() : end])))
    return found


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_every_command_and_option_in_a_bash_block_exists(doc):
    problems = []
    for line in bash_blocks(doc.read_text()):
        for command, options in command_options(line):
            script = command.split()[-1]
            if not command.startswith("python -m"):
                path = ROOT / script if script.startswith("tools/") else SCRIPTS / script
                if not path.exists():
                    problems.append(f"{script}: no such script")
                    continue
            text = help_text(command)
            problems += [f"{script} {o}: not in its --help" for o in options if not re.search(rf"{o}\b", text)]
    assert not problems, f"{doc_id(doc)}: {sorted(set(problems))}"


def test_the_command_parser_finds_scripts_and_options():
    line = ". ./path.sh; ./job.sh --seeds '0 1' && python -m asd_tools.bin.compare a --output f  # --not_this"
    assert command_options(line) == [("./job.sh", ["--seeds"]), ("python -m asd_tools.bin.compare", ["--output"])]
