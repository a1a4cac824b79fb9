"""The package's layer order: a module imports only from its own layer or the ones below it.

From the bottom: names and helpers every layer uses; the data set specs, configs and provenance
records; the data (dumps, manifests, ground truth); models; the training core; the embedding and
detector back end; scoring and reporting; the systems; the ensembles; the entry points. A new
module or sub-package has to be placed in ``LAYERS`` (the test names any that is not).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "asd_tools"

LAYERS = (
    ("__init__", "utils", "constants", "audio", "artefacts"),
    ("datasets", "config", "provenance"),
    ("data",),
    ("models",),
    ("training",),
    ("backend",),
    ("scoring",),
    ("systems",),
    ("ensembles",),
    ("bin",),
)
LAYER = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def top_part(module: str) -> str:
    """``asd_tools.data.corpus`` -> ``data``."""
    return module.split(".")[1]


def submodule(name: str) -> str:
    """What ``from asd_tools import name`` imports: a module, or a name of the package's ``__init__``."""
    is_module = (PACKAGE / f"{name}.py").exists() or (PACKAGE / name).is_dir()
    return f"asd_tools.{name}" if is_module else "asd_tools.__init__"


def package_imports(path: Path):
    """(line, imported module) of every ``asd_tools`` import in ``path``, function-level ones included."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "asd_tools" else [submodule(a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        yield from ((node.lineno, n) for n in names if n.startswith("asd_tools."))


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_module_has_a_layer():
    unplaced = {top_part(".".join(("asd_tools", *p.relative_to(PACKAGE).with_suffix("").parts))) for p in modules()}
    assert unplaced - set(LAYER) == set(), "place these in LAYERS (tests/test_layers.py)"


def test_no_module_imports_from_a_layer_above_its_own():
    upward = []
    for path in modules():
        own = top_part(".".join(("asd_tools", *path.relative_to(PACKAGE).with_suffix("").parts)))
        for line, module in package_imports(path):
            if LAYER[top_part(module)] > LAYER[own]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({own}) imports {module}")
    assert upward == []


def test_the_check_sees_an_upward_import(tmp_path):
    """The walker finds imports inside functions too (where the old upward imports hid)."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from asd_tools.training.trainer import Trainer\n")
    assert list(package_imports(source)) == [(2, "asd_tools.training.trainer")]
